"""A model card: what serving needs to know about a trained model, kept beside the forecasts.

MLflow stays the system of record; the card lets the API and the dashboard answer "which model,
how good, why promoted" without an MLflow store.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from m5_assets.model.evaluation import MODEL
from m5_assets.tables import MODEL_CARDS


def model_card(
    *,
    cutoff: dt.date,
    run_id: str,
    validation_start: dt.date,
    promoted: bool,
    decision: str,
    champion: bool,
    serving_version: str | None,
    serving_wrmsse: float | None,
    scores: pd.DataFrame,
    params: dict,
    importance: pd.DataFrame,
    issue_rule: dict,
    trained_at: dt.datetime | None = None,
) -> pd.DataFrame:
    """One card row. ``scores``: one row per method (the issued forecast, the model alone, the
    demand level and the baselines) with wrmsse, rmse, mae and bias; ``importance``: feature,
    gain, largest first; ``issue_rule``: how forecasts are issued and why."""
    card = {
        "cutoff": cutoff,
        "mlflow_run_id": run_id,
        "trained_at": (trained_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "validation_start": validation_start,
        "promoted": bool(promoted),
        "promotion_decision": decision,
        "champion_at_training": bool(champion),
        "serving_version": serving_version or "",
        # The like-for-like comparison: the version it was compared with, on this model's own window.
        "serving_wrmsse_same_window": float("nan") if serving_wrmsse is None else float(serving_wrmsse),
        "wrmsse": float(scores.loc[MODEL, "wrmsse"]),
        "seasonal_naive_wrmsse": float(scores.loc["seasonal_naive", "wrmsse"]),
        "params": json.dumps(params, default=str),
        "validation_scores": json.dumps({m: {k: float(v) for k, v in row.items()} for m, row in scores.iterrows()}),
        "issue_rule": json.dumps(issue_rule),
        "feature_importance": json.dumps(
            [{"feature": f, "gain": float(g)} for f, g in zip(importance["feature"], importance["gain"], strict=True)]
        ),
    }
    return pd.DataFrame([card], columns=list(MODEL_CARDS.columns))
