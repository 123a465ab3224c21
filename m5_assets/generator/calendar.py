"""The Kaggle ``calendar.csv``: Walmart weeks, US events and SNAP days, built by rule."""

from __future__ import annotations

import datetime as dt

import pandas as pd

# SNAP days of the month as they fall in the real M5 calendar, the same every month.
SNAP_DAYS_BY_STATE = {
    "CA": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    "TX": (1, 3, 5, 6, 7, 9, 11, 12, 13, 15),
    "WI": (2, 3, 5, 6, 8, 9, 11, 12, 14, 15),
}

CALENDAR_COLUMNS = [
    "date",
    "wm_yr_wk",
    "weekday",
    "wday",
    "month",
    "year",
    "d",
    "event_name_1",
    "event_type_1",
    "event_name_2",
    "event_type_2",
]


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th given weekday (Monday=0) of a month; n=-1 is the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> dt.date:
    """Western Easter Sunday (anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month = (h + el - 7 * m + 114) // 31
    day = (h + el - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


def events_for_year(year: int) -> list[tuple[dt.date, str, str]]:
    """The M5 event names and types that follow a fixed rule, as (date, name, type)."""
    mon, thu, sun = 0, 3, 6
    easter = _easter(year)
    nba_start = _nth_weekday(year, 6, thu, 1)
    return [
        (dt.date(year, 1, 1), "NewYear", "National"),
        (dt.date(year, 1, 7), "OrthodoxChristmas", "Religious"),
        (_nth_weekday(year, 1, mon, 3), "MartinLutherKingDay", "National"),
        (_nth_weekday(year, 2, sun, 1), "SuperBowl", "Sporting"),
        (dt.date(year, 2, 14), "ValentinesDay", "Cultural"),
        (_nth_weekday(year, 2, mon, 3), "PresidentsDay", "National"),
        (easter - dt.timedelta(days=46), "LentStart", "Religious"),
        (easter - dt.timedelta(days=39), "LentWeek2", "Religious"),
        (dt.date(year, 3, 17), "StPatricksDay", "Cultural"),
        (easter, "Easter", "Cultural"),
        (dt.date(year, 5, 5), "Cinco De Mayo", "Cultural"),
        (_nth_weekday(year, 5, sun, 2), "Mother's day", "Cultural"),
        (_nth_weekday(year, 5, mon, -1), "MemorialDay", "National"),
        (nba_start, "NBAFinalsStart", "Sporting"),
        (nba_start + dt.timedelta(days=14), "NBAFinalsEnd", "Sporting"),
        (_nth_weekday(year, 6, sun, 3), "Father's day", "Cultural"),
        (dt.date(year, 7, 4), "IndependenceDay", "National"),
        (_nth_weekday(year, 9, mon, 1), "LaborDay", "National"),
        (_nth_weekday(year, 10, mon, 2), "ColumbusDay", "National"),
        (dt.date(year, 10, 31), "Halloween", "Cultural"),
        (dt.date(year, 11, 11), "VeteransDay", "National"),
        (_nth_weekday(year, 11, thu, 4), "Thanksgiving", "National"),
        (dt.date(year, 12, 25), "Christmas", "National"),
    ]


def _fiscal_year_start(year: int) -> dt.date:
    """Walmart's fiscal year starts on the Saturday that falls between Jan 26 and Feb 1."""
    jan26 = dt.date(year, 1, 26)
    return jan26 + dt.timedelta(days=(5 - jan26.weekday()) % 7)


def walmart_week(day: dt.date) -> int:
    """The ``wm_yr_wk`` code of a day: 1, two-digit fiscal year, two-digit week (11101)."""
    year = day.year if day >= _fiscal_year_start(day.year) else day.year - 1
    week = (day - _fiscal_year_start(year)).days // 7 + 1
    return 10_000 + (year % 100) * 100 + week


def snap_days(state: str) -> tuple[int, ...]:
    """SNAP days of the month for a state; states M5 does not have borrow a real pattern."""
    if state in SNAP_DAYS_BY_STATE:
        return SNAP_DAYS_BY_STATE[state]
    patterns = list(SNAP_DAYS_BY_STATE.values())
    return patterns[sum(map(ord, state)) % len(patterns)]


def build_calendar(start: dt.date, n_days: int, states: list[str]) -> pd.DataFrame:
    """A Kaggle-shaped calendar of ``n_days`` days from ``start`` (``d_1`` is ``start``)."""
    dates = [start + dt.timedelta(days=k) for k in range(n_days)]
    events: dict[dt.date, list[tuple[str, str]]] = {}
    for year in range(dates[0].year, dates[-1].year + 1):
        for day, name, kind in events_for_year(year):
            events.setdefault(day, []).append((name, kind))
    rows = []
    for k, day in enumerate(dates, start=1):
        todays = events.get(day, [])
        first = todays[0] if todays else (None, None)
        second = todays[1] if len(todays) > 1 else (None, None)
        rows.append(
            {
                "date": day.isoformat(),
                "wm_yr_wk": walmart_week(day),
                "weekday": day.strftime("%A"),
                # Kaggle numbers the week from Saturday (1) to Friday (7).
                "wday": (day.weekday() + 2) % 7 + 1,
                "month": day.month,
                "year": day.year,
                "d": f"d_{k}",
                "event_name_1": first[0],
                "event_type_1": first[1],
                "event_name_2": second[0],
                "event_type_2": second[1],
            }
        )
    calendar = pd.DataFrame(rows, columns=CALENDAR_COLUMNS)
    # Kaggle's calendar has all three SNAP columns whichever states the sales hold; other states follow.
    for state in [*SNAP_DAYS_BY_STATE, *(s for s in states if s not in SNAP_DAYS_BY_STATE)]:
        calendar[f"snap_{state}"] = [int(d.day in snap_days(state)) for d in dates]
    return calendar
