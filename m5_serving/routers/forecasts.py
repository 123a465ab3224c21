"""Whole horizons: one series' 28 days, or an aggregation level's."""

from __future__ import annotations

import datetime as dt
import itertools

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse

from m5_assets.tables import LEVEL_NAMES
from m5_serving.deps import ITEM_ID, READ, STORE_ID, Services, services, serving
from m5_serving.lookup import LookupFailed, days_of, find_series, snapshot_for
from m5_serving.schemas import KEYED, LevelForecast, LevelKeys, SeriesForecast, refusals
from m5_serving.state import Served

router = APIRouter(prefix="/forecasts", tags=["forecasts"], dependencies=[READ], responses=refusals(*KEYED, 404, 422))


# Declared before /{store_id}/{item_id}, which would otherwise take "levels" for a store.
@router.get(
    "/levels/{level}/export.csv",
    response_class=StreamingResponse,
    summary="Every series of a level (12: item x store) of a stored forecast, as streamed CSV",
    responses={200: {"content": {"text/csv": {}}, "description": "header, then one row per series and day"}},
)
def level_export(
    level: int = Path(
        ge=1,
        le=12,
        description="1 total .. 11 item x state as in /forecasts/levels/{level}; 12 item x store (the bottom rows)",
        openapi_examples={"item x store": {"value": 12}, "stores": {"value": 3}},
    ),
    forecast_date: dt.date | None = Query(
        None,
        description="the stored forecast partition; the newest when left out",
        openapi_examples={"a stored date": {"value": "2016-05-23"}},
    ),
    svc: Services = Depends(services),
    served: Served = Depends(serving),
) -> StreamingResponse:
    day = forecast_date or served.snapshot.forecast_date
    chunks = svc.state.reader.level_csv(day, level)
    try:
        first = next(chunks)  # a missing partition is a 404 before any byte is sent
    except FileNotFoundError:
        stored = served.forecast_dates
        span = f"{stored[0]} .. {stored[-1]}" if stored else "none"
        raise HTTPException(404, f"no forecast issued on {day} (stored: {len(stored)}, {span})") from None
    except StopIteration:
        first = b""
    filename = f"forecast_{day}_level_{level}.csv"
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type="text/csv",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/levels/{level}",
    response_model=LevelForecast | LevelKeys,
    summary="An aggregation level's 28 days (with ?key=), or its keys (without)",
)
def level_forecast(
    level: int = Path(
        ge=1,
        le=11,
        description="1 total, 2 state, 3 store, 4 category, 5 department, 6 state x category, "
        "7 state x department, 8 store x category, 9 store x department, 10 item, 11 item x state",
        openapi_examples={"stores": {"value": 3}, "total": {"value": 1}},
    ),
    key: str | None = Query(
        None,
        max_length=80,
        description="the group, its key columns joined by '/': 'CA', 'CA_1/FOODS'; 'total' for level 1",
        openapi_examples={"one store (level 3)": {"value": "CA_1"}},
    ),
    served: Served = Depends(serving),
) -> LevelForecast | LevelKeys:
    snapshot = served.snapshot
    held = snapshot.level(level)
    if held is None:
        raise HTTPException(404, f"level {level} is not in the forecast of {snapshot.forecast_date}")
    keys, values = held
    if key is None:
        return LevelKeys(
            level=level, level_name=LEVEL_NAMES[level], forecast_date=snapshot.forecast_date, keys=sorted(keys)
        )
    row = keys.get(key)
    if row is None:
        examples = ", ".join(sorted(keys)[:5])
        raise HTTPException(404, f"unknown key '{key}' at level {level} ({LEVEL_NAMES[level]}); e.g. {examples}")
    return LevelForecast(
        level=level,
        level_name=LEVEL_NAMES[level],
        key=key,
        forecast_date=snapshot.forecast_date,
        model_version=snapshot.model_version,
        days=days_of(snapshot, values[row]),
    )


@router.get("/{store_id}/{item_id}", response_model=SeriesForecast, summary="One series' 28 days with every interval")
def series_forecast(
    store_id: str = STORE_ID,
    item_id: str = ITEM_ID,
    as_of: dt.date | None = Query(
        None,
        description="the forecast issued on this day (or the newest before it); the newest by default",
        openapi_examples={"an older forecast": {"value": "2016-04-25"}},
    ),
    served: Served = Depends(serving),
    svc: Services = Depends(services),
) -> SeriesForecast:
    try:
        snapshot = snapshot_for(svc.state, served, as_of or served.snapshot.forecast_date, as_of)
        series, days = find_series(snapshot, item_id, store_id)
    except LookupFailed as failed:
        raise HTTPException(failed.status, failed.detail) from None
    return SeriesForecast(
        **series.hierarchy(),
        forecast_date=snapshot.forecast_date,
        model_version=snapshot.model_version,
        days=days_of(snapshot, days),
    )
