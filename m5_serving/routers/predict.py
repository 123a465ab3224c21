"""Point lookups: one item-store-day, or a batch of them."""

from __future__ import annotations

import dataclasses
import datetime as dt

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from m5_serving.deps import READ, Services, services, serving
from m5_serving.lookup import LookupFailed, blocks, item_of, predict
from m5_serving.schemas import KEYED, BatchRequest, BatchResponse, Prediction, PredictRequest, refusals
from m5_serving.state import Served

router = APIRouter(prefix="/predict", tags=["predict"], dependencies=[READ], responses=refusals(*KEYED, 413, 422))

# The hot path answers on the event loop from memory and returns its JSON directly: the answer
# is built from the snapshot's own types, so re-validating it through the response model would
# only add time. A lookup that may read an older partition, or asks Redis, goes to a worker thread.


@router.post(
    "",
    response_model=Prediction,
    summary="Forecast and interval of one item at one store on one day",
    responses=refusals(404),
)
async def predict_one(
    request: PredictRequest, served: Served = Depends(serving), svc: Services = Depends(services)
) -> JSONResponse:
    now = dt.datetime.now(dt.UTC)
    try:
        if blocks(served, request):
            return JSONResponse(await run_in_threadpool(predict, svc.state, served, request, now))
        return JSONResponse(predict(svc.state, served, request, now))
    except LookupFailed as failed:
        raise HTTPException(failed.status, failed.detail) from None


def _answer_batch(svc: Services, served: Served, batch: BatchRequest) -> dict:
    now, results = dt.datetime.now(dt.UTC), []
    # An online store answers the whole batch's series in one round trip.
    snapshot = served.snapshot.prefetched([(item_of(i.item_id, i.store_id), i.store_id) for i in batch.items])
    served = served if snapshot is served.snapshot else dataclasses.replace(served, snapshot=snapshot)
    for index, item in enumerate(batch.items):
        try:
            results.append({"index": index, "prediction": predict(svc.state, served, item, now)})
        except LookupFailed as failed:
            results.append({"index": index, "error": {"status": failed.status, "detail": failed.detail}})
    failures = sum(1 for r in results if "error" in r)
    return {"results": results, "succeeded": len(results) - failures, "failed": failures}


@router.post("/batch", response_model=BatchResponse, summary="Many lookups; a bad one fails only its own entry")
async def predict_batch(
    batch: BatchRequest, served: Served = Depends(serving), svc: Services = Depends(services)
) -> JSONResponse:
    limit = svc.settings.batch_limit
    if len(batch.items) > limit:
        raise HTTPException(422, f"a batch holds at most {limit} items; this one holds {len(batch.items)}")
    if any(blocks(served, item) for item in batch.items):
        return JSONResponse(await run_in_threadpool(_answer_batch, svc, served, batch))
    return JSONResponse(_answer_batch(svc, served, batch))
