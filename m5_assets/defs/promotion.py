"""Promote a version by hand: the champion alias moves to it, with the reason recorded."""
# Dagster resolves the context, config and resource types from real annotations: none are postponed here.

import dagster as dg

from m5_assets import reader, tables
from m5_assets.defs.mlflow import MlflowTracking
from m5_assets.defs.resources import M5Data
from m5_assets.model import registry

PROMOTE_MODEL_JOB = "promote_model"


class PromoteConfig(dg.Config):
    """Which registered version of m5-demand to promote, and why (recorded with it)."""

    version: str
    reason: str


@dg.op(description="Promote a registered version and give it the champion alias, recording the reason")
def promote_version(
    context: dg.OpExecutionContext, config: PromoteConfig, m5_data: M5Data, mlflow_tracking: MlflowTracking
) -> None:
    client = mlflow_tracking.client()
    try:
        promoted = registry.promote_by_hand(client, config.version, config.reason)
    except ValueError as error:
        raise dg.Failure(str(error)) from error
    root = m5_data.paths.warehouse
    # The model card is what the API and the dashboard read: it says so too.
    card = reader.read_partition(root, tables.MODEL_CARDS, promoted.version).drop(
        columns=tables.MODEL_CARDS.partition_column
    )
    card = card.assign(promoted=True, promotion_decision=f"promoted by hand: {config.reason.strip()}")
    tables.MODEL_CARDS.write_partition(m5_data.storage, promoted.version, card)
    context.log.info(
        f"version {promoted.version} (cutoff {promoted.cutoff}) is now promoted and the champion: {config.reason}"
    )


@dg.job(
    name=PROMOTE_MODEL_JOB,
    description="Promote one model version by hand (for example a challenger that did better in shadow): it serves "
    "forecast dates from its cutoff on and takes the champion alias; the reason goes into the registry and its model card.",
)
def promote_model() -> None:
    promote_version()
