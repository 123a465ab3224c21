"""Jobs a user launches from the UI or ``m5 run``."""

from __future__ import annotations

import dagster as dg

from m5_assets.settings import load_settings


def group_executor(store_groups: int, kind: str = "") -> dg.ExecutorDefinition:
    """Where the store groups' steps run: processes of this machine, or with
    ``M5_STEP_EXECUTOR=k8s`` a Kubernetes Job each (Dagster's k8s_job_executor, from the run's pod)."""
    kind = kind or load_settings().step_executor
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured({"max_concurrent": store_groups})
    if kind != "multiprocess":
        raise ValueError(f"M5_STEP_EXECUTOR must be multiprocess or k8s, got {kind!r}")
    return dg.multiprocess_executor.configured({"max_concurrent": store_groups})


FEATURE_STORE_JOB = "build_feature_store"


def feature_store_job(store_groups: int = 1) -> dg.UnresolvedAssetJobDefinition:
    # Store groups run as parallel steps; one group keeps the location's in-process executor.
    return dg.define_asset_job(
        FEATURE_STORE_JOB,
        selection=dg.AssetSelection.groups("raw", "sales", "features"),
        description="Raw files to validated long table to offline feature store, with every check.",
        executor_def=group_executor(store_groups) if store_groups > 1 else None,
    )


TRAIN_MODEL_JOB = "train_model"

train_model = dg.define_asset_job(
    TRAIN_MODEL_JOB,
    selection=dg.AssetSelection.assets("demand_model"),
    description="Train, score, log and register the demand model for one monthly cutoff.",
)
