"""The ``features`` asset: a graph that computes the feature store by store group, at any number
of groups (the run's ``store_groups`` resource says how many; one by default).

1. ``feature_store_groups`` names the run's new generation of the feature store and splits the
   long table's stores into N groups, one dynamic output each (dynamic, as for forecast issuing:
   the stores are the data's, and N is the run's);
2. ``compute_feature_group`` (one step per group: in the run's process, or side by side on the
   multiprocess or k8s executor) writes its stores' files of that generation, which no reader
   sees yet, and holds them to the catalog's rules (a rule is row by row: each group checks its
   own rows);
3. ``combine_feature_groups`` checks that the groups fit together, passes or refuses the
   generation on what they found, and publishes it by writing the table's manifest
   (``table_files``): no row is rewritten.

Nothing is published before step 3, so a group killed mid-write changes nothing, and
re-executing the run from failure reruns that group only, into the same generation.
"""

# Dagster resolves the context and resource types from real annotations: none are postponed here.

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from m5_assets import tables
from m5_assets.defs.checks import FEATURE_CHECKS, publish_checked_files
from m5_assets.defs.features import (
    FEATURE_CHECK_SPECS,
    FEATURE_INPUTS,
    FEATURES_DESCRIPTION,
    FeatureBuild,
    describe_features,
)
from m5_assets.defs.resources import M5Data, StoreGroups
from m5_assets.defs.results import OpEvents
from m5_assets.defs.store_groups import group_folder, long_table_stores, store_group_outputs
from m5_assets.features import shards as feature_shards
from m5_assets.features.catalog import FEATURES
from m5_assets.features.shards import FeatureGroup, StagedGroup, build_feature_group
from m5_assets.table_files import new_generation
from m5_assets.validation import feature_rules
from m5_assets.validation.violations import Violation, merged


@dataclass(frozen=True)
class CheckedGroup:
    """A group's part of the generation, and the catalog-rule violations in the files it wrote."""

    staged: StagedGroup
    violations: list[Violation]


def build_features_asset() -> dg.AssetsDefinition:
    @dg.op(ins={name: dg.In(dg.Nothing) for name in FEATURE_INPUTS}, out=dg.DynamicOut(FeatureGroup))
    def feature_store_groups(
        context: dg.OpExecutionContext, m5_data: M5Data, store_groups: StoreGroups
    ) -> Iterator[dg.DynamicOutput]:
        generation = new_generation(context.run_id)
        context.log.info(f"writing generation {generation} of the feature store")
        stores = long_table_stores(m5_data)
        yield from store_group_outputs(
            context, stores, store_groups.count, lambda g: FeatureGroup(generation, tuple(g))
        )

    @dg.op
    def compute_feature_group(context: dg.OpExecutionContext, m5_data: M5Data, group: FeatureGroup) -> CheckedGroup:
        files = tables.FEATURES.new_store_files(m5_data.paths.warehouse, group.generation, group.stores)
        try:
            staged = build_feature_group(
                m5_data.connect(),
                *m5_data.feature_input_paths(),
                files,
                group_folder(context, m5_data, tables.FEATURES.name),
                m5_data.paths.genuine_days,
                storage=m5_data.storage,
            )
        except ValueError as error:  # a known-genuine-days file that names no day of the data
            raise dg.Failure(description=str(error)) from error
        violations = feature_rules.catalog_violations(m5_data.connect(), files, FEATURES)
        context.log.info(
            f"stores {group.stores[0]} .. {group.stores[-1]}: {staged.rows:,} feature rows written, "
            f"{len(violations)} catalog rule(s) broken"
        )
        return CheckedGroup(staged, violations)

    # The check results are outputs of the op that computes them, named as the graph asset expects.
    check_outs = {spec.get_python_identifier(): dg.Out(dg.Nothing, is_required=False) for spec in FEATURE_CHECK_SPECS}

    @dg.op(out={tables.FEATURES.name: dg.Out(dg.Nothing), **check_outs})
    def combine_feature_groups(
        context: dg.OpExecutionContext, m5_data: M5Data, checked: list[CheckedGroup]
    ) -> OpEvents:
        staged = [part.staged for part in checked]
        # The generation must hold every store of the long table, once: named from the long table,
        # not from the groups, so a group missing or repeated is refused rather than published.
        files = tables.FEATURES.new_store_files(
            m5_data.paths.warehouse, staged[0].generation, long_table_stores(m5_data)
        )
        stats = feature_shards.combine_feature_groups(staged, files)
        build = FeatureBuild(stats, merged(part.violations for part in checked))
        metadata = yield from publish_checked_files(
            context, m5_data, tables.FEATURES, files, build, FEATURE_CHECKS, describe_features
        )
        m5_data.storage.drop_shard_runs(Path(part.capped) for part in staged)
        yield dg.Output(None, output_name=tables.FEATURES.name, metadata=metadata | {"store_groups": len(staged)})

    @dg.graph_multi_asset(
        name=tables.FEATURES.name,
        group_name="features",  # graph assets take the group here; an AssetOut's group is ignored
        outs={tables.FEATURES.name: dg.AssetOut(kinds={"numpy", "parquet"}, description=FEATURES_DESCRIPTION)},
        ins={name: dg.AssetIn(name, dagster_type=dg.Nothing) for name in FEATURE_INPUTS},
        check_specs=FEATURE_CHECK_SPECS,
    )
    # **inputs, not named parameters: Dagster reads named ones into a set, so the job snapshot's input
    # order, and with it the snapshot id the UI compares on re-execution, changed from process to process.
    def features(**inputs: Any) -> Any:  # op outputs
        groups_of_stores = feature_store_groups(**inputs)
        return combine_feature_groups(groups_of_stores.map(compute_feature_group).collect())

    return features
