"""One cell of a genuine file changed at random: the run either refuses it, naming a file and a
line, or issues forecasts within the data-error bound of every series' own history.

Property-based (hypothesis), with a fixed number of examples and a deadline: each example runs
the feature-store job on a copy of ``real_subset`` and, when that passes, issues the newest
forecast with the model trained once on the unchanged files. Hypothesis prints the mutation that
broke the property.
"""

import datetime as dt
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from forecasting import QUICK, issue, run_pipeline, train
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from m5_assets import reader, tables
from m5_assets.features.outliers import ABSURD_UNITS, data_error_bound

FILES = ("sales_train_validation.csv", "sell_prices.csv", "calendar.csv")
NEWEST = dt.date(2016, 4, 25)  # the day after real_subset's last sales day
NAMED_LINE = re.compile(r"\.csv, line \d+")

VALUES = st.one_of(
    st.integers(min_value=-5, max_value=10**12).map(str),
    st.sampled_from(
        ["", " ", "nan", "inf", "-0", "1.5", "3e9", "abc", "0.0", "99999", "1000000000", "2016-13-01", '"1"', "1 "]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, real_subset):
    """The genuine 10 series with their feature store and a model serving the newest date."""
    data_dir = tmp_path_factory.mktemp("mutations-base")
    shutil.copytree(real_subset, data_dir / "raw")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        assert run_pipeline(data_dir).success
        train(data_dir, "2016-04-01", QUICK)
    return data_dir


def _mutate(raw, file: str, line_pick: int, column_pick: int, value: str) -> tuple[int, str, str]:
    """Set one cell of ``file``; returns the file line (1: the header), the column and the old value."""
    path = raw / file
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    line = 2 + line_pick % (len(lines) - 1)
    cells = lines[line - 1].split(",")
    column = column_pick % len(header)
    old, cells[column] = cells[column], value
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return line, header[column], old


def _data_error_bounds(sales_long: pd.DataFrame) -> pd.Series:
    """Rule 1's bound per series, from its history."""
    return sales_long.groupby("id", observed=True)["units"].agg(lambda units: data_error_bound(units.to_numpy()))


@settings(
    max_examples=25,
    deadline=dt.timedelta(seconds=180),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(file=st.sampled_from(FILES), line_pick=st.integers(0, 10**6), column_pick=st.integers(0, 10**4), value=VALUES)
def test_one_changed_cell_is_refused_with_its_line_or_forecast_within_bounds(
    trained, tmp_path_factory, monkeypatch, file, line_pick, column_pick, value
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data_dir = tmp_path_factory.mktemp("mutated")
    for part in ("raw", "warehouse", "mlflow"):
        shutil.copytree(trained / part, data_dir / part)
    line, column, old = _mutate(data_dir / "raw", file, line_pick, column_pick, value)
    note(f"{file}, line {line}, column {column!r}: {old!r} -> {value!r}")

    built = run_pipeline(data_dir)
    if not built.success:
        refused = [e for e in built.get_asset_check_evaluations() if not e.passed and e.severity.value == "ERROR"]
        assert refused, "the feature store failed without a failed check saying why"
        assert any(NAMED_LINE.search(e.description or "") for e in refused), [e.description for e in refused]
        return

    issued = issue(data_dir, NEWEST.isoformat(), raise_on_error=False)
    if not issued.success:  # only a blocking check may stop it, and it names the series
        refused = [e for e in issued.get_asset_check_evaluations() if not e.passed]
        assert refused and all(e.description for e in refused), "the forecast failed without a failed check saying why"
        return
    root = data_dir / "warehouse"
    forecasts = reader.read_partition(root, tables.FORECASTS, NEWEST)
    history = reader.read_parquet(tables.SALES_LONG.path(root))
    bounds = _data_error_bounds(history[pd.to_datetime(history["date"]).dt.date < NEWEST])
    highest = forecasts.groupby("id")["forecast"].max()
    assert np.isfinite(forecasts["forecast"]).all() and (forecasts["forecast"] >= 0).all()
    beyond = highest[highest > bounds.reindex(highest.index).fillna(ABSURD_UNITS)]
    assert beyond.empty, beyond.head().to_dict()
