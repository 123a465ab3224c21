"""Accuracy of scored forecasts, and the feature store: its catalog and the newest row of a series."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path

from m5_serving.deps import READ, serving
from m5_serving.lookup import LookupFailed, find_series
from m5_serving.state import Served, records

router = APIRouter(tags=["data"], dependencies=[READ])


@router.get("/accuracy", summary="Every scored forecast date: WRMSSE next to seasonal naive, coverage")
def accuracy(served: Served = Depends(serving)) -> dict:
    return {"scored": len(served.accuracy), "partitions": served.accuracy}


@router.get("/features", summary="The feature catalog")
def feature_catalog(served: Served = Depends(serving)) -> dict:
    return {"features": served.feature_catalog}


@router.get("/features/{store_id}/{item_id}", summary="The newest feature row of a series (the online view)")
def feature_row(store_id: str = Path(max_length=40), item_id: str = Path(max_length=80), served: Served = Depends(serving)) -> dict:
    try:
        series = find_series(served.snapshot, item_id, store_id)
    except LookupFailed as failed:
        raise HTTPException(failed.status, failed.detail) from None
    rows = served.feature_rows
    if rows.empty or series.id not in rows.index:
        raise HTTPException(404, f"no feature row of {series.id} on {served.snapshot.forecast_date}")
    (row,) = records(rows.loc[[series.id]])
    return {"id": series.id, "date": served.snapshot.forecast_date.isoformat(), "features": row}
