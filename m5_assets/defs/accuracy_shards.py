"""The ``forecast_accuracy`` asset: a graph that scores by store group, at any number of groups
(the run's ``store_groups`` resource says how many; one by default).

1. ``accuracy_store_groups`` splits the long table's stores into N groups, one dynamic output each;
2. ``score_store_group`` (one step per group: in the run's process, or side by side on the
   multiprocess or k8s executor) loads its stores' sales, computes the scored baselines, sums its
   series into every level for each of the run's days and stages those sums under
   ``warehouse/_shards/<run>/``;
3. ``combine_store_group_scores`` adds the groups' sums, scores the whole hierarchy (WRMSSE needs
   every level) day by day against the partitions before, and publishes each partition and the
   check.
"""

# Dagster resolves the context and resource types from real annotations: none are postponed here.

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from m5_assets import reader, tables
from m5_assets.defs.forecasts import (
    ACCURACY_CHECK,
    ACCURACY_CHECK_SPEC,
    ACCURACY_DESCRIPTION,
    ACCURACY_INPUTS,
    BACKFILL_POLICY,
    publish_scores,
    refuse_unscorable,
    run_days,
)
from m5_assets.defs.resources import M5Data, StoreGroups
from m5_assets.defs.results import OpEvents
from m5_assets.defs.store_groups import group_folder, long_table_stores, store_group_outputs
from m5_assets.forecast.accuracy import row_of, score_in_order, series_figures
from m5_assets.forecast.publish import read_shadow_of
from m5_assets.forecast.shards import combine_group_parts, score_group

CHECK_OUTPUT = f"{tables.FORECAST_ACCURACY.name}_{ACCURACY_CHECK}"


def build_accuracy_asset(daily: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.op(ins={name: dg.In(dg.Nothing) for name in ACCURACY_INPUTS}, out=dg.DynamicOut(list))
    def accuracy_store_groups(
        context: dg.OpExecutionContext, m5_data: M5Data, store_groups: StoreGroups
    ) -> Iterator[dg.DynamicOutput]:
        yield from store_group_outputs(context, long_table_stores(m5_data), store_groups.count)

    @dg.op
    def score_store_group(context: dg.OpExecutionContext, m5_data: M5Data, stores: list) -> str:
        days = run_days(context)
        inputs = m5_data.feature_inputs(stores)
        refuse_unscorable(inputs, days)
        root = m5_data.paths.warehouse
        staged = score_group(
            inputs,
            days,
            lambda day: reader.read_partition(root, tables.FORECASTS, day, stores),
            read_shadow_of(root, stores),
        )
        # Read back only by this run's combining step (or its re-execution), with the same code.
        path = group_folder(context, m5_data, tables.FORECAST_ACCURACY.name) / "scores.pickle"
        m5_data.storage.write_with(
            path, lambda partial: partial.write_bytes(pickle.dumps(staged, protocol=pickle.HIGHEST_PROTOCOL))
        )
        context.log.info(
            f"stores {stores[0]} .. {stores[-1]}: sums of {len(inputs.series)} series over {len(days)} days staged in {path}"
        )
        return str(path)

    @dg.op(out={tables.FORECAST_ACCURACY.name: dg.Out(dg.Nothing), CHECK_OUTPUT: dg.Out(dg.Nothing)})
    def combine_store_group_scores(context: dg.AssetExecutionContext, m5_data: M5Data, staged: list[str]) -> OpEvents:
        days = run_days(context)
        root = m5_data.paths.warehouse
        parts = combine_group_parts([pickle.loads(Path(path).read_bytes()) for path in sorted(staged)])
        level_rows = {day: reader.read_partition(root, tables.FORECAST_LEVELS, day) for day in parts}
        series = {day: series_figures(day_parts, level_rows[day]) for day, day_parts in parts.items()}
        # Each series' figures first: a partition of forecast_accuracy is never there without them.
        for day, frame in series.items():
            tables.SERIES_ACCURACY.write_partition(m5_data.storage, day, frame)
        rows_by_day = {day: row_of(day_parts, series[day]) for day, day_parts in parts.items()}
        rows, problems = score_in_order(days, rows_by_day.__getitem__, reader.read_accuracy(root))
        check = publish_scores(context, m5_data, days, rows, problems)
        yield dg.Output(None, tables.FORECAST_ACCURACY.name)
        yield check
        m5_data.storage.drop_shard_runs(Path(path) for path in staged)

    @dg.graph_multi_asset(
        name=tables.FORECAST_ACCURACY.name,
        group_name="forecasts",  # graph assets take the group here; an AssetOut's group is ignored
        outs={
            tables.FORECAST_ACCURACY.name: dg.AssetOut(kinds={"pandas", "parquet"}, description=ACCURACY_DESCRIPTION)
        },
        ins={name: dg.AssetIn(name, dagster_type=dg.Nothing) for name in ACCURACY_INPUTS},
        partitions_def=daily,
        backfill_policy=BACKFILL_POLICY,
        check_specs=[ACCURACY_CHECK_SPEC],
    )
    # **inputs, not named parameters: Dagster reads named ones into a set, so the job snapshot's input
    # order, and with it the snapshot id the UI compares on re-execution, changed from process to process.
    def forecast_accuracy(**inputs: Any) -> Any:  # op outputs
        groups_of_stores = accuracy_store_groups(**inputs)
        accuracy, check = combine_store_group_scores(groups_of_stores.map(score_store_group).collect())
        return {tables.FORECAST_ACCURACY.name: accuracy, CHECK_OUTPUT: check}

    return forecast_accuracy
