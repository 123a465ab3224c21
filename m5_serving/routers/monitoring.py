"""Feature drift and the inventory plan of the forecast that serves."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from m5_assets.monitoring.drift import FLAGGED
from m5_serving.deps import READ, path_series, serving
from m5_serving.schemas import KEYED, refusals
from m5_serving.snapshot import Series
from m5_serving.state import Served

router = APIRouter(tags=["monitoring"], dependencies=[READ], responses=refusals(*KEYED, 404, 422))


@router.get(
    "/drift",
    summary="Feature drift of the newest forecast date: PSI, KS and score per feature against the serving model's validation window",
)
def drift(served: Served = Depends(serving)) -> dict:
    day = served.snapshot.forecast_date.isoformat()
    if not served.drift:
        raise HTTPException(
            404, f"no feature_drift partition for {day}: materialize feature_drift (the issue_forecast job writes it)"
        )
    flagged = [row for row in served.drift if row["status"] in FLAGGED]
    return {"forecast_date": day, "features": served.drift, "flagged": [row["feature"] for row in flagged]}


@router.get(
    "/inventory/{store_id}/{item_id}",
    summary="The replenishment plan of one item at one store, from the newest forecast",
)
def inventory(series: Series = Depends(path_series), served: Served = Depends(serving)) -> dict:
    day = served.snapshot.forecast_date.isoformat()
    row = served.inventory_row(series.id)
    if row is None:
        raise HTTPException(
            404,
            f"no inventory plan of {series.id} for {day}: materialize inventory_plan (the issue_forecast job writes it)",
        )
    return {"forecast_date": day, **row}
