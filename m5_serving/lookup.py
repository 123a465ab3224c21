"""Answering a lookup from a snapshot: which partition, which series, which day. No I/O here but
for an older partition, which ``ServingState.partition_for`` reads once and caches."""

from __future__ import annotations

import datetime as dt
import difflib

import numpy as np

from m5_serving.schemas import UNITS_DECIMALS, ForecastDay, PredictRequest
from m5_serving.snapshot import HORIZON, INTERVALS, VALUE_COLUMNS, Series, Snapshot, SnapshotRefused
from m5_serving.state import Served, ServingState

_BOUNDS = {level: (VALUE_COLUMNS.index(f"lo_{level}"), VALUE_COLUMNS.index(f"hi_{level}")) for level in INTERVALS}


class LookupFailed(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def item_of(item_id: str, store_id: str) -> str:
    """'FOODS_1_001', 'FOODS_1_001_CA_1' and 'FOODS_1_001_CA_1_evaluation' all mean FOODS_1_001 at CA_1."""
    for suffix in ("_validation", "_evaluation"):
        item_id = item_id.removesuffix(suffix)
    return item_id.removesuffix(f"_{store_id}")


def find_series(snapshot: Snapshot, item_id: str, store_id: str) -> tuple[Series, np.ndarray]:
    """The series and its 28 days; LookupFailed (404) naming the nearest known ids otherwise."""
    item = item_of(item_id, store_id)
    found = snapshot.lookup(item, store_id)
    if found is not None:
        return found
    if store_id not in snapshot.stores:
        raise LookupFailed(404, f"unknown store '{store_id}'; stores: {', '.join(snapshot.stores)}")
    nearest = difflib.get_close_matches(item, snapshot.items, n=3, cutoff=0.6)
    hint = f"nearest known item ids: {', '.join(nearest)}" if nearest else "no similar item id"
    raise LookupFailed(404, f"unknown item '{item}' at store '{store_id}'; {hint}")


def covered_range(served: Served) -> str:
    first, last = served.forecast_dates[0], served.forecast_dates[-1] + dt.timedelta(days=HORIZON - 1)
    return f"{first} .. {last}"


def snapshot_for(state: ServingState, served: Served, day: dt.date, as_of: dt.date | None) -> Snapshot:
    if as_of is None and served.snapshot.covers(day):
        return served.snapshot  # the hot path: no disk, no search
    try:
        found = state.partition_for(served, day, as_of)
    except SnapshotRefused as refused:  # the server's data is at fault, not the request: say what
        raise LookupFailed(500, f"the forecast that covers {day} cannot serve: {refused}") from None
    if found is None:
        issued = f" issued on or before {as_of}" if as_of else ""
        raise LookupFailed(404, f"no forecast{issued} covers {day}; the issued forecasts cover {covered_range(served)}")
    return found


def blocks(served: Served, request: PredictRequest) -> bool:
    """Whether answering waits on I/O (then it runs off the event loop): an older partition read
    from disk, or a snapshot held in the online store."""
    return served.snapshot.remote or request.as_of is not None or not served.snapshot.covers(request.date)


def predict(state: ServingState, served: Served, request: PredictRequest, now: dt.datetime) -> dict:
    """The answer as JSON-ready values (dates as ISO text)."""
    snapshot = snapshot_for(state, served, request.date, request.as_of)
    series, days = find_series(snapshot, request.item_id, request.store_id)
    horizon = (request.date - snapshot.forecast_date).days
    values = days[horizon]
    lo, hi = _BOUNDS[request.interval]
    return {
        "id": series.id,
        "item_id": series.item_id,
        "store_id": series.store_id,
        "date": request.date.isoformat(),
        "predicted_sales": units(values[0]),
        "prediction_interval": {"lower": units(values[lo]), "upper": units(values[hi]), "level": request.interval},
        "model_version": snapshot.model_version,
        "forecast_date": snapshot.forecast_date.isoformat(),
        "horizon": horizon + 1,
        "timestamp": now.isoformat(),
    }


def units(value: float) -> float:
    """Units as served: rounded to ``UNITS_DECIMALS``."""
    return round(float(value), UNITS_DECIMALS)


def days_of(snapshot: Snapshot, values: np.ndarray) -> list[ForecastDay]:
    return [
        ForecastDay(
            date=snapshot.forecast_date + dt.timedelta(days=h),
            horizon=h + 1,
            **{name: units(v) for name, v in zip(VALUE_COLUMNS, values[h], strict=True)},
        )
        for h in range(HORIZON)
    ]
