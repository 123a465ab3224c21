"""Point lookups: one item-store-day, or a batch of them."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, HTTPException

from m5_serving.deps import READ, Services, serving, services
from m5_serving.lookup import LookupFailed, predict
from m5_serving.schemas import BatchRequest, BatchResponse, Prediction, PredictRequest
from m5_serving.state import Served

router = APIRouter(prefix="/predict", tags=["predict"], dependencies=[READ])


@router.post("", response_model=Prediction, summary="Forecast and interval of one item at one store on one day",
             responses={404: {"description": "unknown item or store, or a day no forecast covers"}})  # fmt: skip
def predict_one(request: PredictRequest, served: Served = Depends(serving), svc: Services = Depends(services)):
    try:
        return predict(svc.state, served, request, dt.datetime.now(dt.timezone.utc))
    except LookupFailed as failed:
        raise HTTPException(failed.status, failed.detail) from None


@router.post("/batch", response_model=BatchResponse, summary="Many lookups; a bad one fails only its own entry")
def predict_batch(batch: BatchRequest, served: Served = Depends(serving), svc: Services = Depends(services)):
    limit = svc.settings.batch_limit
    if len(batch.items) > limit:
        raise HTTPException(422, f"a batch holds at most {limit} items; this one holds {len(batch.items)}")
    now, results = dt.datetime.now(dt.timezone.utc), []
    for index, item in enumerate(batch.items):
        try:
            results.append({"index": index, "prediction": predict(svc.state, served, item, now)})
        except LookupFailed as failed:
            results.append({"index": index, "error": {"status": failed.status, "detail": failed.detail}})
    failed = sum(1 for r in results if "error" in r)
    return {"results": results, "succeeded": len(results) - failed, "failed": failed}
