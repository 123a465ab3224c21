"""Calendar and event features of each day (the same for every series)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from m5_assets.features.catalog import EVENT_REACH, EVENT_TYPE_CODES, OTHER_EVENT_TYPE


def calendar_features(dates: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Day of week (Monday 0), day of month, ISO week, month, quarter and boundary flags."""
    return {
        "day_of_week": dates.dayofweek.to_numpy(np.int8),
        "day_of_month": dates.day.to_numpy(np.int8),
        "week_of_year": dates.isocalendar().week.to_numpy(np.int8),
        "month": dates.month.to_numpy(np.int8),
        "quarter": dates.quarter.to_numpy(np.int8),
        "is_weekend": (dates.dayofweek >= 5).astype(np.int8),
        "is_month_start": dates.is_month_start.astype(np.int8),
        "is_month_end": dates.is_month_end.astype(np.int8),
    }


def _days_since(has_event: np.ndarray) -> np.ndarray:
    """Days since the latest event on or before each day, at most ``EVENT_REACH``. Before the
    first event it is unknown (NaN), unless the day is so far into the calendar that any earlier
    event would be at least that far."""
    index = np.arange(len(has_event), dtype=np.float64)
    last = np.where(has_event, index, np.nan)
    last = pd.Series(last).ffill().to_numpy()
    since = index - last
    return np.where(np.isnan(since) & (index + 1 >= EVENT_REACH), EVENT_REACH, np.minimum(since, EVENT_REACH))


def event_features(event_type_1: pd.Series) -> dict[str, np.ndarray]:
    """Event flag, type code and distance to the nearest event before and after (up to
    ``EVENT_REACH`` days), per day.

    ``event_type_1`` is one entry per consecutive calendar day (None where there is no event);
    pass the whole calendar, not only the sales days, so that distances near the ends see the
    events beyond them.
    """
    types = event_type_1.to_numpy(dtype=object)
    has_event = pd.notna(types)
    codes = np.array([EVENT_TYPE_CODES.get(t, OTHER_EVENT_TYPE) if pd.notna(t) else 0 for t in types], dtype=np.int8)
    return {
        "has_event": has_event.astype(np.int8),
        "event_type_code": codes,
        "days_to_next_event": _days_since(has_event[::-1])[::-1],
        "days_since_last_event": _days_since(has_event),
    }
