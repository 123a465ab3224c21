"""Partitions that follow the data: model cutoffs are the first days of the months it covers."""

from __future__ import annotations

import csv
import datetime as dt

import dagster as dg

from m5_assets import ingest
from m5_assets.features.catalog import HORIZON, LAGS
from m5_assets.settings import DataPaths

# Without raw files (a fresh clone before `make run`), show the months of the M5 data.
DEFAULT_SPAN = (dt.date(2011, 1, 29), dt.date(2016, 5, 22))


def sales_span(paths: DataPaths) -> tuple[dt.date, dt.date]:
    """First and last sales day, from the calendar and the sales file's header line only."""
    try:
        files = ingest.locate_raw_files(paths.raw)
    except FileNotFoundError:
        return DEFAULT_SPAN
    days = [c for c in ingest.read_header(files.sales) if ingest.DAY_COLUMN.match(c)]
    wanted = {days[0], days[-1]}
    with open(files.calendar, newline="", encoding="utf-8-sig") as handle:
        dates = {row["d"]: dt.date.fromisoformat(row["date"]) for row in csv.DictReader(handle) if row["d"] in wanted}
    if len(dates) != len(wanted):
        return DEFAULT_SPAN  # the raw checks will say what is wrong with these files
    return dates[days[0]], dates[days[-1]]


def _first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def model_partitions(paths: DataPaths) -> dg.MonthlyPartitionsDefinition:
    """Cutoffs from the first month with a year of lags and a validation window behind it, to
    the last month whose 28 days before its first day all have sales."""
    first, last = sales_span(paths)
    earliest = first + dt.timedelta(days=max(LAGS) + 2 * HORIZON)
    start = _first_of_month(earliest + dt.timedelta(days=31))
    end = _first_of_month(last + dt.timedelta(days=1))  # the newest cutoff; its window ends on `last`
    end = max(end, start)
    exclusive_end = _first_of_month(end + dt.timedelta(days=31))
    return dg.MonthlyPartitionsDefinition(start_date=start.isoformat(), end_date=exclusive_end.isoformat())
