"""The ``forecasts`` and ``forecast_levels`` assets: a graph that issues by store group, at any
number of groups (the run's ``store_groups`` resource says how many; one by default).

1. ``forecast_store_groups`` looks up the model that serves each day, once for the run, and
   splits the long table's stores into N groups, one dynamic output each (dynamic rather than a
   static store partition: the stores are the data's, and a partition per store would multiply
   every daily partition by the number of stores in the UI);
2. ``issue_store_group`` (one step per group: in the run's process, or side by side on the
   multiprocess or k8s executor) reads its stores' feature rows, predicts and stages each day's
   bottom level under ``warehouse/_shards/<run>/<group>/``;
3. ``plan_publishing`` issues any challenger in shadow and splits the run's days into N groups;
4. ``publish_day_group`` (one step per group of days: days are independent) combines every store
   group's rows per day, builds the levels over the whole hierarchy, publishes each partition
   whose levels add up and judges it against its series' history;
5. ``publish_store_groups`` puts each partition's metadata on it and records the checks.

Nothing is published before step 4, so a shard killed mid-write leaves no partial partition, and
re-executing the run from failure reruns that shard only (the others' staged files are reused).
A forecast's rows depend on their own series only, so any number of groups gives the same rows.
"""

# Dagster resolves the context and resource types from real annotations: none are postponed here.

import dataclasses
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg

from m5_assets import tables
from m5_assets.defs.forecasts import (
    BACKFILL_POLICY,
    CHECK_SPECS,
    FORECASTS_DESCRIPTION,
    LEVELS_ADD_UP,
    LEVELS_DESCRIPTION,
    WITHIN_HISTORY,
    attach,
    band_check,
    levels_check,
    log_issued,
    log_shadows,
    run_days,
    serving_for,
)
from m5_assets.defs.mlflow import MlflowTracking
from m5_assets.defs.resources import M5Data, StoreGroups
from m5_assets.defs.results import OpEvents
from m5_assets.defs.store_groups import group_folder, long_table_stores, store_group_outputs
from m5_assets.forecast.plausibility import history_highs
from m5_assets.forecast.publish import Published, issue_shadows, issued_bottoms, publish_days
from m5_assets.forecast.shards import DayGroup, ServingPlan, combined_forecasts, day_groups, staged_path

# Each check's output, named as Dagster names a check spec's: <asset>_<check>.
LEVELS_OUTPUT = f"{tables.FORECAST_LEVELS.name}_{LEVELS_ADD_UP}"
BAND_OUTPUT = f"{tables.FORECASTS.name}_{WITHIN_HISTORY}"


def build_forecasts_asset(daily: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    outs = {
        tables.FORECASTS.name: dg.AssetOut(kinds={"lightgbm", "parquet"}, description=FORECASTS_DESCRIPTION),
        tables.FORECAST_LEVELS.name: dg.AssetOut(kinds={"pandas", "parquet"}, description=LEVELS_DESCRIPTION),
    }

    @dg.op(ins={"features": dg.In(dg.Nothing), "demand_model": dg.In(dg.Nothing)}, out=dg.DynamicOut(ServingPlan))
    def forecast_store_groups(
        context: dg.OpExecutionContext, m5_data: M5Data, mlflow_tracking: MlflowTracking, store_groups: StoreGroups
    ) -> Iterator[dg.DynamicOutput]:
        """Which model serves each day is looked up here, once for the run, and handed to every
        later step: a promotion while the run goes on never mixes versions within it."""
        registered, chosen = serving_for(mlflow_tracking.client(), run_days(context))
        for group in store_group_outputs(context, long_table_stores(m5_data), store_groups.count):
            plan = ServingPlan(group.value, chosen, registered)
            yield dg.DynamicOutput(plan, mapping_key=group.mapping_key)

    @dg.op
    def issue_store_group(
        context: dg.OpExecutionContext, m5_data: M5Data, mlflow_tracking: MlflowTracking, plan: ServingPlan
    ) -> ServingPlan:
        client, stores = mlflow_tracking.client(), plan.stores
        folder = group_folder(context, m5_data, tables.FORECASTS.name)
        rows = 0
        for _, day, bottom in issued_bottoms(client, m5_data.files(tables.FEATURES), plan.chosen, stores):
            m5_data.storage.write_with(staged_path(folder, day), partial(tables.FORECASTS.write_partition_file, bottom))
            rows += len(bottom)
        context.log.info(f"stores {stores[0]} .. {stores[-1]}: {rows} rows over {len(plan.chosen)} days in {folder}")
        return dataclasses.replace(plan, folder=str(folder))

    @dg.op(out=dg.DynamicOut(DayGroup))
    def plan_publishing(
        context: dg.OpExecutionContext,
        m5_data: M5Data,
        mlflow_tracking: MlflowTracking,
        store_groups: StoreGroups,
        shards: list[ServingPlan],
    ) -> Iterator[dg.DynamicOutput]:
        """Challengers in shadow first (their partitions beside the champion's), then the run's days
        in groups: days are independent, so they are combined and published side by side too."""
        days, client = run_days(context), mlflow_tracking.client()
        plan, features = shards[0], m5_data.files(tables.FEATURES)
        shadows = issue_shadows(client, features, m5_data.storage, plan.registered, plan.chosen, days)
        log_shadows(context, shadows)
        for number, group in enumerate(day_groups(shards, days, shadows, store_groups.count)):
            yield dg.DynamicOutput(group, mapping_key=f"days_{number}")

    @dg.op
    def publish_day_group(
        context: dg.OpExecutionContext, m5_data: M5Data, mlflow_tracking: MlflowTracking, group: DayGroup
    ) -> Published:
        highs = history_highs(m5_data.connect(), m5_data.files(tables.FEATURES), group.days)
        return publish_days(m5_data.storage, combined_forecasts(mlflow_tracking.client(), group), group.shadows, highs)

    @dg.op(
        out={
            **{name: dg.Out(dg.Nothing) for name in outs},
            LEVELS_OUTPUT: dg.Out(dg.Nothing),
            BAND_OUTPUT: dg.Out(dg.Nothing),
        }
    )
    def publish_store_groups(
        context: dg.AssetExecutionContext, m5_data: M5Data, published: list[Published], shards: list[ServingPlan]
    ) -> OpEvents:
        days = run_days(context)
        done = Published()
        for part in published:
            done.add(part)
        attach(context, done)
        check = levels_check(m5_data, context, days, done.problems)
        within = band_check(m5_data, context, days, done.band)
        log_issued(context, done.summary, done.problems)
        for name in outs:
            yield dg.Output(None, name)
        yield check
        yield within
        m5_data.storage.drop_shard_runs(Path(shard.folder) for shard in shards)

    @dg.graph_multi_asset(
        name="forecasts",
        group_name="forecasts",  # graph assets take the group here; an AssetOut's group is ignored
        outs=outs,
        ins={
            "features": dg.AssetIn(tables.FEATURES.name, dagster_type=dg.Nothing),
            "demand_model": dg.AssetIn(
                "demand_model",
                dagster_type=dg.Nothing,
                partition_mapping=dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True),
            ),
        },
        partitions_def=daily,
        backfill_policy=BACKFILL_POLICY,
        check_specs=CHECK_SPECS,
    )
    # **inputs, not named parameters: Dagster reads named ones into a set, so the job snapshot's input
    # order, and with it the snapshot id the UI compares on re-execution, changed from process to process.
    def forecasts(**inputs: Any) -> Any:  # op outputs
        shards = forecast_store_groups(**inputs).map(issue_store_group).collect()
        published = plan_publishing(shards).map(publish_day_group).collect()
        *assets, levels, within = publish_store_groups(published, shards)
        return {**dict(zip(outs, assets, strict=True)), LEVELS_OUTPUT: levels, BAND_OUTPUT: within}

    return forecasts
