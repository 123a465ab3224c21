"""The heavy assets at the code location's store-group count: built in one step, or by store group
in parallel steps (``feature_shards``, ``forecast_shards``, ``accuracy_shards``) with the same
result. The choice lives here, above both builders, so neither imports the other."""

from __future__ import annotations

import dagster as dg

from m5_assets import tables
from m5_assets.defs.accuracy_shards import build_sharded_accuracy
from m5_assets.defs.beta import known_beta_apis
from m5_assets.defs.feature_shards import build_sharded_features
from m5_assets.defs.features import feature_catalog, unsharded_features
from m5_assets.defs.forecast_shards import build_sharded_forecasts
from m5_assets.defs.forecasts import (
    CHECK_SPECS,
    FORECASTS_DESCRIPTION,
    LEVELS_DESCRIPTION,
    unsharded_accuracy,
    unsharded_forecasts,
)


def build_feature_assets(store_groups: int = 1) -> list[dg.AssetsDefinition]:
    """The catalog and the feature store."""
    if store_groups > 1:
        return [feature_catalog, build_sharded_features(store_groups)]
    return [feature_catalog, unsharded_features()]


def build_forecast_assets(daily: dg.DailyPartitionsDefinition, store_groups: int = 1) -> list[dg.AssetsDefinition]:
    """The forecasts (with their levels) and their scores."""
    with known_beta_apis():
        if store_groups == 1:
            return [unsharded_forecasts(daily), unsharded_accuracy(daily)]
        outs = {
            tables.FORECASTS.name: dg.AssetOut(kinds={"lightgbm", "parquet"}, description=FORECASTS_DESCRIPTION),
            tables.FORECAST_LEVELS.name: dg.AssetOut(kinds={"pandas", "parquet"}, description=LEVELS_DESCRIPTION),
        }
        return [
            build_sharded_forecasts(daily, outs, CHECK_SPECS, store_groups),
            build_sharded_accuracy(daily, store_groups),
        ]
