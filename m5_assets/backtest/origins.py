"""Which dates a rolling-origin backtest issues forecasts on, and which model each would use.

The product issues a forecast every day with the newest model whose cutoff (the first of a
month: training partitions are monthly) is not after that day. The backtest replays that: a
forecast every 7 days over the 52 weeks whose forecasts end on the last known day, each with the
model of its month.
"""

from __future__ import annotations

import datetime as dt

from m5_assets.features.catalog import HORIZON

WEEKS = 52
STEP_DAYS = 7
# Design choices are made on the origins before this date; the later ones report how they hold.
DESIGN_ORIGINS_BEFORE = dt.date(2015, 11, 1)


def backtest_origins(last_sales_day: dt.date, weeks: int = WEEKS) -> list[dt.date]:
    """Every 7th day over ``weeks`` weeks, the last one the newest whose 28 days all have actuals."""
    last = last_sales_day - dt.timedelta(days=HORIZON - 1)
    return [last - dt.timedelta(days=STEP_DAYS * k) for k in reversed(range(weeks + 1))]


def model_cutoff(origin: dt.date) -> dt.date:
    """The cutoff of the monthly model that serves a forecast issued on ``origin``."""
    return origin.replace(day=1)


def by_cutoff(origins: list[dt.date]) -> dict[dt.date, list[dt.date]]:
    """The origins each monthly model issues, in date order."""
    out: dict[dt.date, list[dt.date]] = {}
    for origin in sorted(origins):
        out.setdefault(model_cutoff(origin), []).append(origin)
    return out
