"""The model that issued the serving forecast, from its model card (no MLflow needed)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from m5_serving.deps import READ, serving
from m5_serving.state import Served

router = APIRouter(prefix="/model", tags=["model"], dependencies=[READ])


def _card(served: Served) -> dict:
    if served.model_card is None:
        raise HTTPException(
            404,
            f"no model card for version {served.snapshot.model_version} (run {served.snapshot.mlflow_run_id}): "
            "retrain its month with this release to write one",
        )
    return served.model_card


@router.get("/info", summary="The model that issued the newest forecast")
def model_info(served: Served = Depends(serving)) -> dict:
    card = _card(served)
    return {k: v for k, v in card.items() if k != "feature_importance"} | {
        "cutoff": card["cutoff"].isoformat(),
        "validation_start": str(card["validation_start"])[:10],
        "issued_forecast_date": served.snapshot.forecast_date.isoformat(),
    }


@router.get("/features/importance", summary="Gain importance of each feature, largest first")
def importance(served: Served = Depends(serving)) -> dict:
    card = _card(served)
    total = sum(f["gain"] for f in card["feature_importance"]) or 1.0
    return {
        "model_version": card["model_version"],
        "features": [f | {"share": round(f["gain"] / total, 6)} for f in card["feature_importance"]],
    }
