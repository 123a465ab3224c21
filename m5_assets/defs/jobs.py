"""Jobs a user launches from the UI or ``m5 run``."""

from __future__ import annotations

import dagster as dg

FEATURE_STORE_JOB = "build_feature_store"

build_feature_store = dg.define_asset_job(
    FEATURE_STORE_JOB,
    selection=dg.AssetSelection.groups("raw", "sales", "features"),
    description="Raw files to validated long table to offline feature store, with every check.",
)

TRAIN_MODEL_JOB = "train_model"

train_model = dg.define_asset_job(
    TRAIN_MODEL_JOB,
    selection=dg.AssetSelection.assets("demand_model"),
    description="Train, score, log and register the demand model for one monthly cutoff.",
)
