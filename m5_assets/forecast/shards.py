"""Issuing and scoring by store group: how stores are split, and how the groups' work is combined.

A forecast row depends on its own series only (the booster scores a row, the issue rule scales it
by its series' level), so the groups' bottom levels put together equal the unsharded one; only
the levels need every series, which is why they are built after combining.

Scoring is combined the same way: each group sums its series into every level of the hierarchy
(``ScoreParts``). A level keyed by store lies wholly in one group, which reduces it to each
series' scale and error; the others (total, state, category, department, state x category,
state x department, item, item x state) keep their sums, and their history is summed once for
all of a run's days. The combining step
adds the groups' sums and scores the whole hierarchy, as the one-step scoring does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from m5_assets.features.build import FeatureInputs
from m5_assets.forecast.accuracy import ScoreParts, add_score_parts, row_of, score_parts
from m5_assets.forecast.issue import Forecast, levels_of
from m5_assets.metrics import LevelHistory, add_level_histories, level_histories
from m5_assets.model import registry
from m5_assets.model.forecaster import IssuingModel

T = TypeVar("T")


@dataclass(frozen=True)
class ServingPlan:
    """One store group's part of a sharded forecast run: its stores, and the run's model for each
    day, looked up once when the run is planned so every step issues with the same versions."""

    stores: list[str]
    chosen: dict[dt.date, registry.PromotedVersion]  # the promoted version that serves each day
    registered: list[registry.PromotedVersion]  # every registered one (for the challengers in shadow)
    folder: str = ""  # where the group's bottom levels are staged, once issued


@dataclass(frozen=True)
class DayGroup:
    """Some of a run's days, to combine and publish in one step: where every store group staged
    them, the version serving each, and the challenger issued in shadow on any."""

    days: list[dt.date]
    folders: list[str]
    chosen: dict[dt.date, registry.PromotedVersion]
    shadows: dict[dt.date, str]


def day_groups(
    shards: Sequence[ServingPlan], days: list[dt.date], shadows: dict[dt.date, str], groups: int
) -> list[DayGroup]:
    """The run's days in at most ``groups`` groups, each with what combining it needs."""
    chosen, folders = shards[0].chosen, [shard.folder for shard in shards]
    return [
        DayGroup(part, folders, {d: chosen[d] for d in part}, {d: shadows[d] for d in part if d in shadows})
        for part in split_evenly(days, groups)
    ]


def combined_forecasts(client: MlflowClient, group: DayGroup) -> Iterator[tuple[IssuingModel, dt.date, Forecast]]:
    """Each day of ``group`` put together from every store group, with its levels, and the model
    that issued it (each version loaded once)."""
    models: dict[registry.PromotedVersion, IssuingModel] = {}
    for day in group.days:
        version = group.chosen[day]
        if version not in models:
            models[version] = registry.load_issuing_model(client, version)
        bottom = combine_shards(group.folders, day)
        levels = levels_of(bottom, day, models[version].calibration)
        # An only group staged the day's bottom level as its partition file is, rows in order.
        staged = staged_path(Path(group.folders[0]), day) if len(group.folders) == 1 else None
        yield models[version], day, Forecast(bottom=bottom, levels=levels, bottom_file=staged)


def split_evenly(items: Sequence[T], groups: int) -> list[list[T]]:
    """``items`` in order, in at most ``groups`` contiguous runs of near-equal size (none empty)."""
    size, extra = divmod(len(items), max(1, min(groups, len(items))))
    runs, start = [], 0
    for number in range(min(groups, len(items))):
        end = start + size + (number < extra)
        runs.append(list(items[start:end]))
        start = end
    return runs


def store_groups_of(stores: list[str], groups: int) -> list[list[str]]:
    """The stores, sorted, in at most ``groups`` contiguous groups of near-equal size."""
    return split_evenly(sorted(map(str, set(stores))), groups)


def staged_path(folder: Path, day: dt.date) -> Path:
    """Where a group stages its bottom level of ``day`` (written as the partition's file is)."""
    return folder / f"forecast_date={day}.parquet"


def combine_shards(folders: list[str] | list[Path], day: dt.date) -> pd.DataFrame:
    """One day's bottom level from every group's folder, in the unsharded order (id, date).

    Each group's rows are already in (id, date) order and no id is in two groups, so a stable
    sort on the ids' ranks gives that order: a tenth of the time of sorting the id strings with
    the dates (0.9 s a day at full scale), the largest cost of combining."""
    frame = pa.concat_tables([pq.read_table(staged_path(Path(folder), day)) for folder in folders]).to_pandas()
    if len(folders) == 1:  # one group's rows are in that order already
        return frame
    ranks, _ = pd.factorize(frame["id"], sort=True)
    return frame.take(np.argsort(ranks, kind="stable")).reset_index(drop=True)


def within_a_store(keys: tuple[str, ...]) -> bool:
    """Whether a level's groups each lie in one store (so in one store group)."""
    return "store_id" in keys


@dataclass(frozen=True)
class GroupScores:
    """A store group's part of scoring a run's forecasts: each day's sums, and the history of the
    levels that span groups, once for every day (it is most of their size)."""

    histories: dict[int, LevelHistory]
    parts: dict[dt.date, ScoreParts]


def score_group(
    inputs: FeatureInputs,
    days: list[dt.date],
    read_bottom: Callable[[dt.date], pd.DataFrame],
    read_shadow: Callable[[dt.date], pd.DataFrame | None],
) -> GroupScores:
    """Score the group's series (``inputs``, loaded for its stores) for each of ``days``, from the
    day's rows each reader returns (only the group's series of them are scored)."""
    ids = set(inputs.series["id"].astype(str))

    def mine(rows: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if rows is None else rows[rows["id"].astype(str).isin(ids)].reset_index(drop=True)

    parts = {
        day: score_parts(
            inputs, day, mine(read_bottom(day)), mine(read_shadow(day)), within_a_store, keep_history=False
        )
        for day in days
    }
    longest = max(p.history_days for p in parts.values())
    histories = level_histories(inputs.series, inputs.units[:, :longest].astype(np.float64), within_a_store)
    return GroupScores(histories, parts)


def combine_group_parts(groups: Sequence[GroupScores]) -> dict[dt.date, ScoreParts]:
    """Each day's scoring parts over every group's series, as one."""
    histories = add_level_histories([g.histories for g in groups])
    return {day: add_score_parts([g.parts[day] for g in groups], histories) for day in groups[0].parts}


def combine_group_scores(
    groups: Sequence[GroupScores], read_levels: Callable[[dt.date], pd.DataFrame] | None = None
) -> dict[dt.date, dict]:
    """Each day's accuracy row over every group's series (with the levels' interval coverage from
    the day's ``forecast_levels`` rows ``read_levels`` returns, when given)."""
    return {day: row_of(parts, read_levels and read_levels(day)) for day, parts in combine_group_parts(groups).items()}
