"""Series-days far outside their history: a broken value warns, genuine promotions do not."""

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_M5
from forecasting import run_pipeline
from m5_assets.features.catalog import MIN_LAG, WINDOWS
from m5_assets.validation.outliers import MULTIPLE, far_outside_history, history_ratios
from m5_assets.warehouse import table_path

SPIKE = 1_000_000_000


def test_a_day_is_judged_against_its_blocks_90th_percentile_plus_one():
    units = np.array([[0] * 9 + [3], [2] * 9 + [500]])
    ratios, levels = history_ratios(units, block_days=10)
    # Row 0: the 90th percentile of nine 0s and a 3 is 0.3, so 3 / 1.3. Row 1: nine 2s and 500 -> 2 + 0.1 x 498.
    np.testing.assert_allclose(ratios[:, -1], [3 / 1.3, 500 / (2 + 0.1 * 498 + 1)])
    assert levels[0, 0] == pytest.approx(0.3)


def test_a_last_short_block_joins_the_one_before_it():
    units = np.zeros((1, 25))
    units[0, 24] = 1000  # alone in a 5-day block it would be its own percentile
    ratios, _ = history_ratios(units, block_days=10)
    assert ratios[0, 24] == 1000


def _genuine(name: str) -> pd.DataFrame:
    path = SHARED_M5 / name
    if not path.is_file():
        pytest.skip(f"genuine M5 files not found at {SHARED_M5} (the shared folder is absent)")
    return pd.read_csv(path)


def test_no_genuine_m5_series_day_is_flagged_though_real_jumps_are_large():
    history = _genuine("real_subset/sales_train_validation.csv")
    recent = _genuine("sales_test_validation_d1914-1941.csv")
    for frame in (history, recent):
        units = frame.filter(like="d_").to_numpy()
        ids = frame["item_id"] + "_" + frame["store_id"]
        assert far_outside_history(units, ids, pd.date_range("2011-01-29", periods=units.shape[1])).empty
    # Real demand does jump: a 28-day window holds days at 30x their usual high.
    assert history_ratios(recent.filter(like="d_").to_numpy())[0].max() > 20


def test_a_spike_is_flagged_with_its_series_and_day():
    units = np.random.default_rng(1).poisson(2.0, size=(3, 400))
    units[2, 123] = SPIKE
    found = far_outside_history(units, ["a", "b", "c"], pd.date_range("2015-01-01", periods=400))
    assert found[["id", "date", "units"]].values.tolist() == [["c", pd.Timestamp("2015-05-04").date(), SPIKE]]
    assert found["ratio"].iloc[0] > MULTIPLE


def _set_units(raw, row: int, day: str, value: int) -> None:
    path = raw / "sales_train_evaluation.csv"
    lines = path.read_text().splitlines()
    header, cells = lines[0].split(","), lines[row].split(",")
    cells[header.index(day)] = str(value)
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def test_a_spike_warns_on_sales_long_and_leaves_the_rolling_spread_intact(data_dir):
    _set_units(data_dir / "raw", 5, "d_200", SPIKE)
    result = run_pipeline(data_dir)

    assert result.success  # a warning: the run goes on
    (warning,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "units_within_history"]
    assert not warning.passed and warning.severity.value == "WARN"
    long = pd.read_parquet(table_path(data_dir / "warehouse", "sales_long"), columns=["id", "date", "units"])
    spiked = long[long["units"] == SPIKE].iloc[0]
    assert f"{spiked['id']} on {spiked['date']} (1,000,000,000 units)" in warning.description

    features = pd.read_parquet(table_path(data_dir / "warehouse", "features"))
    series = features[features["id"] == spiked["id"]].sort_values("date").reset_index(drop=True)
    units = series["units"].to_numpy(np.float64)
    spike_day = int(np.flatnonzero(units == SPIKE)[0])
    for w in WINDOWS:
        first_clean = spike_day + MIN_LAG + w
        last = int(np.flatnonzero(~np.isnan(units))[-1]) + 1
        for day in range(first_clean, last):
            window = units[day - MIN_LAG - w + 1 : day - MIN_LAG + 1]
            assert series.loc[day, f"roll_std_{w}"] == pytest.approx(np.std(window, ddof=1), rel=1e-4, abs=1e-5)
