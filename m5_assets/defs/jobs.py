"""Jobs a user launches from the UI or ``m5 run``."""

from __future__ import annotations

import dagster as dg

from m5_assets.settings import load_settings


def step_executor(kind: str = "") -> dg.ExecutorDefinition:
    """Where every run's steps run (``M5_STEP_EXECUTOR``): the run's process; a process each (side
    by side, as many at a time as the run config's ``max_concurrent``, default the cores); or a
    Kubernetes Job each (Dagster's k8s_job_executor, from the run's pod). The same whatever the
    store-group count: a run's groups are steps of the same graph on any of them."""
    kind = kind or load_settings().executor
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    executors = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}
    if kind not in executors:
        raise ValueError(f"M5_STEP_EXECUTOR must be in_process, multiprocess or k8s, got {kind!r}")
    return executors[kind]


FEATURE_STORE_JOB = "build_feature_store"

feature_store_job = dg.define_asset_job(
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
