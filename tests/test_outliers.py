"""Days far outside their series' history: a data error is refused with its line and column; an
outlier for modelling is read capped by features and training, never by the long table."""

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_M5
from forecasting import feature_rows, run_pipeline

from m5_assets import tables
from m5_assets.features.catalog import MIN_LAG, WINDOWS
from m5_assets.features.outliers import (
    ABSURD_UNITS,
    CAP_MIN_HISTORY,
    CAP_MULTIPLE,
    absurd_days,
    cap_outliers,
    read_genuine_days,
)
from m5_assets.table_files import MANIFEST
from m5_assets.warehouse import table_path

SPIKE = 1_000_000_000


def _genuine(name: str) -> pd.DataFrame:
    path = SHARED_M5 / name
    if not path.is_file():
        pytest.skip(f"genuine M5 files not found at {SHARED_M5} (the shared folder is absent)")
    return pd.read_csv(path)


def test_a_day_is_a_data_error_only_beyond_ten_thousand_units_and_a_thousand_times_its_series_p99():
    rng = np.random.default_rng(3)
    units = rng.poisson(20.0, size=(3, 400)).astype(float)
    units[0, 100] = SPIKE  # far beyond both bounds
    units[1, 100] = 9_000  # 450 x its usual 20, but below 10,000 units: an outlier, not an error
    units[2] *= 1_000  # a wholesale series: 20,000 a day is its normal
    rows, days, bounds = absurd_days(units)
    assert rows.tolist() == [0] and days.tolist() == [100]
    # Its own 99th percentile of ordinary days (about 31 for Poisson(20)) sets the bound, not the spike.
    assert ABSURD_UNITS < bounds[0] < 50_000


def test_a_series_of_few_sales_days_cannot_raise_its_own_bound():
    units = np.zeros((1, 200))
    units[0, [10, 50, 90]] = [2, 3, SPIKE]  # three non-zero days: the spike is its own 99th percentile
    rows, days, _ = absurd_days(units)
    assert days.tolist() == [90]


def test_no_genuine_m5_day_is_a_data_error_and_almost_none_is_capped():
    for name in (
        "real_280/sales_train_evaluation.csv",
        "real_subset/sales_train_validation.csv",
        "sales_test_validation_d1914-1941.csv",
    ):
        units = _genuine(name).filter(like="d_").to_numpy().astype(float)
        assert len(absurd_days(units)[0]) == 0, name
        _, capped = cap_outliers(units)
        # 5 of 543,480 series-days of real_280 (see features/outliers.py); none elsewhere.
        assert capped.sum() <= 1e-5 * capped.size, (name, int(capped.sum()))


def test_a_genuine_day_set_to_ten_thousand_times_its_series_p90_is_a_data_error():
    history = _genuine("real_280/sales_train_evaluation.csv").filter(like="d_").to_numpy().astype(float)
    p90 = np.quantile(history, 0.9, axis=1)
    busy = np.flatnonzero(p90 >= 2)  # below, 10**4 x p90 is at most the 10,000-unit floor itself
    assert len(busy) > 100
    broken = history.copy()
    broken[busy, 1000 + busy % 500] = 10_000 * p90[busy]
    rows, days, _ = absurd_days(broken)
    assert sorted(zip(rows.tolist(), days.tolist(), strict=True)) == sorted(
        zip(busy.tolist(), (1000 + busy % 500).tolist(), strict=True)
    )


def test_an_outlier_is_capped_at_a_multiple_of_the_year_before_it():
    units = np.full((1, 200), 2.0)
    units[0, 150] = 5_000
    capped, was = cap_outliers(units)
    assert was.sum() == 1 and was[0, 150]
    assert capped[0, 150] == np.floor(CAP_MULTIPLE * (2.0 + 1.0))
    assert (capped[0, :150] == 2).all() and (capped[0, 151:] == 2).all()


def test_capping_waits_for_a_history_and_spares_known_genuine_days():
    units = np.full((1, 200), 1.0)
    units[0, :50] = 0  # not yet released
    units[0, 50 + CAP_MIN_HISTORY - 2] = 900  # too early in its history to judge
    units[0, 150] = 900
    _, was = cap_outliers(units)
    assert np.flatnonzero(was[0]).tolist() == [150]
    keep = np.zeros(units.shape, dtype=bool)
    keep[0, 150] = True
    assert not cap_outliers(units, keep)[1].any()


def test_a_cap_never_depends_on_a_later_day():
    rng = np.random.default_rng(5)
    units = rng.poisson(3.0, size=(20, 500)).astype(float)
    units[4, 300] = 4_000
    later = units.copy()
    later[:, 400:] = later[:, 400:] * 50 + 7_000  # every day from 400 on changes wildly
    np.testing.assert_array_equal(cap_outliers(units)[0][:, :400], cap_outliers(later)[0][:, :400])


def test_known_genuine_days_name_the_line_that_matches_nothing(tmp_path):
    series = pd.DataFrame({"item_id": ["A_1_001", "A_1_002"], "store_id": ["CA_1", "CA_1"]})
    dates = pd.date_range("2016-01-01", periods=10)
    path = tmp_path / "known_genuine_days.csv"
    path.write_text("item_id,store_id,date\nA_1_002,CA_1,2016-01-03\n")
    mask = read_genuine_days(path, series, dates)
    assert np.argwhere(mask).tolist() == [[1, 2]]
    path.write_text(
        "item_id,store_id,date\nA_1_002,CA_1,2016-01-03\nA_1_009,CA_1,2016-01-03\nA_1_001,CA_1,2017-01-01\n"
    )
    with pytest.raises(ValueError) as error:
        read_genuine_days(path, series, dates)
    assert "line 3, columns 'item_id', 'store_id': no series 'A_1_009'" in str(error.value)
    assert "line 4, column 'date': '2017-01-01'" in str(error.value)


def _set_units(raw, row: int, day: str, value: int) -> None:
    path = raw / "sales_train_evaluation.csv"
    lines = path.read_text().splitlines()
    header, cells = lines[0].split(","), lines[row].split(",")
    cells[header.index(day)] = str(value)
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def test_a_billion_unit_day_is_refused_naming_file_line_column_and_value(data_dir):
    _set_units(data_dir / "raw", 5, "d_200", SPIKE)
    result = run_pipeline(data_dir)

    assert not result.success
    (refused,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "units_plausible"]
    assert not refused.passed and refused.severity.value == "ERROR"
    assert "sales_train_evaluation.csv, line 6, column 'd_200'" in refused.description  # row 5 after the header
    assert "1000000000" in refused.description.replace(",", "")
    # Nothing downstream was built from it.
    assert not (tables.FEATURES.folder(data_dir / "warehouse") / MANIFEST).exists()


def _steady_series_row(raw) -> int:
    """The file row (0: header) of a series that sold on most of the 199 days before d_200."""
    sales = pd.read_csv(raw / "sales_train_evaluation.csv")
    days = sales[[f"d_{k}" for k in range(1, 200)]]
    return int(np.flatnonzero(((days > 0).mean(axis=1) > 0.5) & (days.mean(axis=1) < 20))[0]) + 1


def test_an_outlier_below_the_error_bound_is_capped_in_features_and_kept_in_the_long_table(data_dir):
    _set_units(data_dir / "raw", _steady_series_row(data_dir / "raw"), "d_200", 9_999)
    result = run_pipeline(data_dir)
    assert result.success
    assert not [e for e in result.get_asset_check_evaluations() if not e.passed]  # no warning either

    long = pd.read_parquet(table_path(data_dir / "warehouse", "sales_long"), columns=["id", "date", "units"])
    sold = long[long["units"] == 9_999].iloc[0]
    features = feature_rows(data_dir / "warehouse")
    series = features[features["id"] == sold["id"]].sort_values("date").reset_index(drop=True)
    day = int(np.flatnonzero(pd.to_datetime(series["date"]) == pd.Timestamp(sold["date"]))[0])
    assert 0 < series.loc[day, "units"] < 9_999  # the label is read capped
    assert series.loc[day + MIN_LAG, "units_lag_28"] == series.loc[day, "units"]  # and so are the lags
    (materialization,) = [m for m in result.asset_materializations_for_node("features")]
    metadata = materialization.metadata
    assert metadata["capped_days"].value >= 1 and sold["id"] in metadata["capped_largest"].value


def test_a_late_outlier_leaves_every_earlier_rolling_spread_as_it_was():
    """A feature dated before a value must not depend on it, rolling spreads included: one late
    10**9 day once switched its whole row to another variance formula, back to 2011."""
    from m5_assets.features.windows import lagged_rolling_mean_std

    rng = np.random.default_rng(9)
    # Erratic, as genuine series are, and float32, as the feature builder holds units.
    units = np.floor(rng.gamma(0.5, 8.0, size=(6, 1000))).astype(np.float32)
    late = units.copy()
    late[2, 850] = SPIKE
    before, after = lagged_rolling_mean_std(units, WINDOWS, MIN_LAG), lagged_rolling_mean_std(late, WINDOWS, MIN_LAG)
    for w in WINDOWS:
        # Windows ending before day 850 are the rows' days up to 850 + MIN_LAG - 1.
        np.testing.assert_array_equal(before[w][1][:, : 850 + MIN_LAG], after[w][1][:, : 850 + MIN_LAG])
        # After it, the spread is still right (the running sums are no longer exact there).
        day = 850 + MIN_LAG + w // 2
        window = late[2, day - MIN_LAG - w + 1 : day - MIN_LAG + 1]
        assert after[w][1][2, day] == pytest.approx(np.std(window.astype(np.float64), ddof=1), rel=1e-6)
