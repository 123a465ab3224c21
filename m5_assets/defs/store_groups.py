"""The fan-out every step-by-store-group graph starts with: the data's stores, in N groups."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from m5_assets import tables
from m5_assets.defs.resources import M5Data
from m5_assets.forecast.shards import store_groups_of
from m5_assets.warehouse import scalar


def long_table_stores(m5_data: M5Data) -> list[str]:
    return scalar(
        m5_data.connect(), f"SELECT list(DISTINCT store_id) FROM read_parquet('{m5_data.table(tables.SALES_LONG)}')"
    )


def mapping_key(context: dg.OpExecutionContext) -> str:
    """The key of the dynamic output a mapped step runs for (every mapped step has one)."""
    key = context.get_mapping_key()
    if key is None:
        raise RuntimeError(f"step {context.op.name} is not mapped over store groups")
    return key


def group_folder(context: dg.OpExecutionContext, m5_data: M5Data, asset: str) -> Path:
    """Where this mapped step stages its group's part of ``asset`` (every group's step stages there)."""
    return m5_data.storage.shard_folder(context.run_id, asset, mapping_key(context))


def store_group_outputs(
    context: dg.OpExecutionContext, stores: list[str], groups: int, value: Callable[[list[str]], Any] = list
) -> Iterator[dg.DynamicOutput]:
    """One dynamic output per group of ``stores`` (sorted, contiguous), logged: ``value`` of the
    group's stores (the stores themselves by default)."""
    split = store_groups_of(stores, groups)
    context.log.info(f"{len(stores)} stores in {len(split)} groups: " + "; ".join(f"{g[0]} .. {g[-1]}" for g in split))
    for number, group in enumerate(split):
        yield dg.DynamicOutput(value(group), mapping_key=f"group_{number}")
