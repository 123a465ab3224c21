import datetime as dt

import dagster as dg
import pytest

from m5_assets.defs import partitions
from m5_assets.settings import DataPaths

TODAY = dt.date(2026, 11, 23)


def _last_key(partitions_def, day: dt.date) -> str:
    """The last partition key as Dagster sees it at noon UTC on ``day``."""
    with dg.partition_loading_context(effective_dt=dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC)):
        return partitions_def.get_last_partition_key()


@pytest.fixture
def span(monkeypatch):
    def set_span(first: dt.date, last: dt.date) -> None:
        monkeypatch.setattr(partitions, "sales_span", lambda paths: (first, last))

    monkeypatch.delenv("M5_FORECAST_START", raising=False)
    return set_span


def test_current_data_grows_its_partitions_with_the_clock_without_a_reload(span, tmp_path):
    span(dt.date(2021, 7, 31), TODAY - dt.timedelta(days=1))  # the demo data: sales to yesterday
    daily = partitions.forecast_partitions(DataPaths(tmp_path), today=TODAY)
    monthly = partitions.model_partitions(DataPaths(tmp_path), today=TODAY)
    assert _last_key(daily, TODAY) == "2026-11-23"
    # Three days later, with no code reload, those days' partitions exist.
    assert _last_key(daily, TODAY + dt.timedelta(days=3)) == "2026-11-26"
    assert _last_key(monthly, TODAY) == "2026-11-01"
    assert _last_key(monthly, dt.date(2026, 12, 2)) == "2026-12-01"
    assert daily.get_first_partition_key() == monthly.get_first_partition_key() == "2022-10-01"


def test_old_data_keeps_its_range_whatever_the_clock_says(span, tmp_path):
    span(dt.date(2011, 1, 29), dt.date(2016, 5, 22))  # the Kaggle files
    daily = partitions.forecast_partitions(DataPaths(tmp_path), today=TODAY)
    monthly = partitions.model_partitions(DataPaths(tmp_path), today=TODAY)
    for now in (TODAY, TODAY + dt.timedelta(days=40)):
        assert _last_key(daily, now) == "2016-05-23"  # the day after the last sale
        assert _last_key(monthly, now) == "2016-05-01"


@pytest.mark.parametrize(
    ("age", "current"),
    [(0, True), (1, True), (partitions.CURRENT_DATA_DAYS, True), (partitions.CURRENT_DATA_DAYS + 1, False)],
)
def test_data_counts_as_current_while_its_last_day_is_recent(age, current):
    assert partitions.is_current(TODAY - dt.timedelta(days=age), TODAY) is current
