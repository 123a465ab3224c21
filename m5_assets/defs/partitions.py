"""Partitions that follow the data: model cutoffs are the first days of the months it covers."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from m5_assets.features.catalog import HORIZON, LAGS
from m5_assets.reader import forecast_date_after, sales_span
from m5_assets.settings import DataPaths, load_settings

# Data whose last sales day is at most this many days old when the code loads is taken to be
# kept up to date: its partitions grow with the clock. Older data (the Kaggle files) is fixed.
CURRENT_DATA_DAYS = 7


def _first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _first_cutoff(first: dt.date) -> dt.date:
    """The first month start with a year of lags and a validation window behind it."""
    earliest = first + dt.timedelta(days=max(LAGS) + 2 * HORIZON)
    return _first_of_month(earliest + dt.timedelta(days=31))


def is_current(last: dt.date, today: dt.date | None = None) -> bool:
    """Whether data whose last sales day is ``last`` is being kept up to date, judged at load."""
    today = today or dt.datetime.now(dt.UTC).date()
    return (today - last).days <= CURRENT_DATA_DAYS


def model_partitions(paths: DataPaths, today: dt.date | None = None) -> dg.MonthlyPartitionsDefinition:
    """Cutoffs from the first month with enough history to the last month whose 28 days before
    its first day all have sales; for current data, to the current month as the clock moves."""
    first, last = sales_span(paths)
    start = _first_cutoff(first)
    if is_current(last, today):
        # No end date: each new month appears without a code reload, as daily data arrives.
        return dg.MonthlyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)
    end = _first_of_month(last + dt.timedelta(days=1))  # the newest cutoff; its window ends on `last`
    end = max(end, start)
    exclusive_end = _first_of_month(end + dt.timedelta(days=31))
    # end_offset admits the current month when the data runs to yesterday; end_date still bounds it.
    return dg.MonthlyPartitionsDefinition(
        start_date=start.isoformat(), end_date=exclusive_end.isoformat(), end_offset=1
    )


def forecast_partitions(paths: DataPaths, today: dt.date | None = None) -> dg.DailyPartitionsDefinition:
    """Forecast dates from ``$M5_FORECAST_START`` (default: the first model cutoff, before which
    no model can exist) to the day after the last sales day: the genuinely future forecast.

    For current data (see ``is_current``) the range runs to today and grows with the clock, so a
    daily drop of new sales needs no code reload; which date to issue is still read from the data.
    """
    first, last = sales_span(paths)
    start = load_settings().forecast_start or _first_cutoff(first)
    newest = forecast_date_after(last)
    start = min(start, newest)
    if is_current(last, today):
        return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)
    # Today's partition has not ended yet; end_offset admits it, end_date still bounds the range.
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), end_date=(newest + dt.timedelta(days=1)).isoformat(), end_offset=1
    )
