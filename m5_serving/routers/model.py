"""The model that issued the serving forecast, from its model card (no MLflow needed)."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, HTTPException

from m5_serving.deps import READ, serving
from m5_serving.schemas import KEYED, refusals
from m5_serving.state import Served

router = APIRouter(prefix="/model", tags=["model"], dependencies=[READ], responses=refusals(*KEYED, 404))


def _card(served: Served) -> dict:
    if served.model_card is None:
        raise HTTPException(
            404,
            f"no model card for version {served.snapshot.model_version} (run {served.snapshot.mlflow_run_id}): "
            "retrain its month with this release to write one",
        )
    return served.model_card


@router.get(
    "/info",
    summary="The model that issued the newest forecast",
    description="Its model card: cutoff, validation scores, how it issues, and `compared_with_version` (the "
    "version it was measured against when trained, null for the first) beside `version_serving_now`.",
)
def model_info(served: Served = Depends(serving)) -> dict:
    card = _card(served)
    # The card's serving_version is the version this model was compared with when it was trained;
    # what serves now is the snapshot's.
    hidden = ("feature_importance", "serving_version", "serving_wrmsse_same_window")
    return {k: v for k, v in card.items() if k not in hidden} | {
        "cutoff": card["cutoff"].isoformat(),
        "validation_start": str(card["validation_start"])[:10],
        "issued_forecast_date": served.snapshot.forecast_date.isoformat(),
        "compared_with_version": card["serving_version"] or None,
        # That version's score on this model's window (like for like with the card's wrmsse).
        "compared_with_wrmsse": _finite(card.get("serving_wrmsse_same_window")),
        "version_serving_now": served.snapshot.model_version,
    }


def _finite(value: object) -> float | None:
    """A score as JSON can hold it: None where there is none (NaN, or a card from before it)."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


@router.get("/features/importance", summary="Gain importance of each feature, largest first")
def importance(served: Served = Depends(serving)) -> dict:
    card = _card(served)
    total = sum(f["gain"] for f in card["feature_importance"]) or 1.0
    return {
        "model_version": card["model_version"],
        "features": [f | {"share": round(f["gain"] / total, 6)} for f in card["feature_importance"]],
    }
