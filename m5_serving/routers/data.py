"""Accuracy of scored forecasts, and the feature store: its catalog and the newest row of a series."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from m5_serving.deps import READ, path_series, serving
from m5_serving.schemas import KEYED, refusals
from m5_serving.snapshot import Series
from m5_serving.state import Served

router = APIRouter(tags=["data"], dependencies=[READ], responses=refusals(*KEYED, 404, 422))


@router.get("/accuracy", summary="Every scored forecast date: WRMSSE next to seasonal naive, coverage")
def accuracy(served: Served = Depends(serving)) -> dict:
    return {"scored": len(served.accuracy), "partitions": served.accuracy}


@router.get("/features", summary="The feature catalog")
def feature_catalog(served: Served = Depends(serving)) -> dict:
    return {"features": served.feature_catalog}


@router.get("/features/{store_id}/{item_id}", summary="The newest feature row of a series (the online view)")
def feature_row(series: Series = Depends(path_series), served: Served = Depends(serving)) -> dict:
    row = served.feature_row(series.id)
    if row is None:
        raise HTTPException(404, f"no feature row of {series.id} on {served.snapshot.forecast_date}")
    return {"id": series.id, "date": served.snapshot.forecast_date.isoformat(), "features": row}
