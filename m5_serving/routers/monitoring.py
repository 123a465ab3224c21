"""Feature drift and the inventory plan of the forecast that serves."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path

from m5_serving.deps import READ, serving
from m5_serving.lookup import LookupFailed, find_series
from m5_serving.state import Served, records

router = APIRouter(tags=["monitoring"], dependencies=[READ])


@router.get("/drift", summary="Feature drift of the newest forecast date: PSI and KS per feature against the serving model's training window")
def drift(served: Served = Depends(serving)) -> dict:
    day = served.snapshot.forecast_date.isoformat()
    if not served.drift:
        raise HTTPException(404, f"no feature_drift partition for {day}: materialize feature_drift (the issue_forecast job writes it)")
    flagged = [row for row in served.drift if row["status"] != "ok"]
    return {"forecast_date": day, "features": served.drift, "flagged": [row["feature"] for row in flagged]}


@router.get("/inventory/{store_id}/{item_id}", summary="The replenishment plan of one item at one store, from the newest forecast")
def inventory(store_id: str = Path(max_length=40), item_id: str = Path(max_length=80), served: Served = Depends(serving)) -> dict:
    try:
        series = find_series(served.snapshot, item_id, store_id)
    except LookupFailed as failed:
        raise HTTPException(failed.status, failed.detail) from None
    day = served.snapshot.forecast_date.isoformat()
    plan = served.inventory
    if plan.empty or series.id not in plan.index:
        raise HTTPException(404, f"no inventory plan of {series.id} for {day}: materialize inventory_plan (the issue_forecast job writes it)")
    (row,) = records(plan.loc[[series.id]])
    return {"forecast_date": day, **row}
