"""Issuing and publishing forecast partitions: which promoted model serves each day, each day's
forecast issued by it (every version loaded once), challengers' forecasts in shadow beside it, and
each day published whole, levels first, only if its levels add up, then judged against history.

``defs/forecasts.py`` (and the store-group steps) run these and show the report; nothing here needs
Dagster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from m5_assets import reader, tables
from m5_assets.features.catalog import CATALOG_VERSION, HORIZON
from m5_assets.forecast.issue import Forecast, issue_bottom, levels_of, read_forecast_rows
from m5_assets.forecast.plausibility import band
from m5_assets.hierarchy import level_sum_problems
from m5_assets.model import prediction, registry
from m5_assets.model.forecaster import IssuingModel
from m5_assets.table_files import TableSource
from m5_assets.warehouse import PartitionFacts, Warehouse, partition_facts

BAND_SHOWN = 10  # series beyond the band kept per day, and the farthest out shown
NOT_RECORDED = "not recorded"
# Read-only, so a dict of versions that are never None is one too.
Versions = Mapping[dt.date, registry.PromotedVersion | None]


def serving_for(client: MlflowClient, days: list[dt.date]) -> tuple[list, dict[dt.date, registry.PromotedVersion]]:
    """Every registered version, and the promoted one that serves each day (``LookupError`` for a
    day no promoted model serves)."""
    registered = registry.registered_versions(client)
    return registered, registry.serving_versions([v for v in registered if v.promoted], days)


@dataclass
class Published:
    """What publishing some days left: level-sum problems, a summary row per day, the facts of
    each published partition (asset name -> partition key -> facts and what issued it) and, per
    published day, its series beyond their history's band and the farthest out (``band``'s rows
    with forecast_date)."""

    problems: list[str] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    partitions: dict[str, dict[str, tuple[PartitionFacts, dict]]] = field(
        default_factory=lambda: {tables.FORECASTS.name: {}, tables.FORECAST_LEVELS.name: {}}
    )
    band: list[pd.DataFrame] = field(default_factory=list)

    def add(self, other: Published) -> Published:
        self.problems += other.problems
        self.summary += other.summary
        self.band += other.band
        for asset, partitions in other.partitions.items():
            self.partitions[asset].update(partitions)
        self.summary.sort(key=lambda row: row["forecast_date"])
        return self


def issue_shadows(
    client: MlflowClient,
    features: TableSource,
    storage: Warehouse,
    registered: list,
    chosen: dict[dt.date, registry.PromotedVersion],
    days: list[dt.date],
) -> dict[dt.date, str]:
    """A challenger's forecast goes beside the champion's partition, never over it; the version
    issued in shadow on each day that has one."""
    shadows = {}
    for model, day, forecast in issued(
        client, features, {d: registry.shadow_version(registered, chosen[d], d) for d in days}
    ):
        tables.FORECASTS_SHADOW.write_partition(storage, day, forecast.bottom)
        shadows[day] = model.version
    return shadows


def publish_days(
    storage: Warehouse,
    issued_days: Iterable[tuple[IssuingModel, dt.date, Forecast]],
    shadows: dict[dt.date, str],
    highs: dict[dt.date, pd.DataFrame],
) -> Published:
    """Publish each day's whole forecast (every series): levels first, the bottom level last, and
    only if the levels add up; then judge it against its series' history (``highs``, by day)."""
    done = Published()
    for model, day, forecast in issued_days:
        off = level_sum_problems(forecast.bottom, forecast.levels)
        if off:
            # Checked before publishing: levels that do not add up are never served.
            done.problems += [f"{day}: {p}" for p in off]
            continue
        # The bottom file is what marks a partition as published, so it is written last.
        levels_path = tables.FORECAST_LEVELS.write_partition(storage, day, forecast.levels)
        bottom_path = (
            tables.FORECASTS.write_partition(storage, day, forecast.bottom)
            if forecast.bottom_file is None
            else tables.FORECASTS.publish_partition_file(storage, day, forecast.bottom_file)
        )
        total = float(forecast.levels.loc[forecast.levels["level"] == 1, "forecast"].sum())
        about = {
            "model_version": model.version,
            "model_cutoff": model.cutoff.isoformat(),
            "total_units_28d": round(total, 1),
            "shadow_model_version": shadows.get(day, "none"),
            "model_feature_catalog": model.feature_catalog or NOT_RECORDED,
        }
        key = day.isoformat()
        levels = forecast.levels
        shape = {"groups": int(len(levels) // HORIZON), "levels": int(levels["level"].nunique())}
        done.partitions[tables.FORECASTS.name][key] = (partition_facts(bottom_path, forecast.bottom), about)
        done.partitions[tables.FORECAST_LEVELS.name][key] = (partition_facts(levels_path, levels), shape | about)
        series = int(forecast.bottom["id"].nunique())
        done.summary.append({"forecast_date": key, "rows": len(forecast.bottom), "series": series} | about)
        judged = band(forecast.bottom, highs[day])
        # Only what the check reports is kept: a backfill's days need not all stay in memory.
        done.band.append(judged[judged["beyond"] | (judged.index < BAND_SHOWN)].assign(forecast_date=day))
    return done


def issued(
    client: MlflowClient, features: TableSource, versions: Versions
) -> Iterator[tuple[IssuingModel, dt.date, Forecast]]:
    """Each day's forecast by its version (days mapped to None are skipped): every version is
    loaded once, and its days' feature rows are read and predicted in one pass."""
    for model, day, bottom in issued_bottoms(client, features, versions):
        yield model, day, Forecast(bottom=bottom, levels=levels_of(bottom, day, model.calibration))


def issued_bottoms(
    client: MlflowClient, features: TableSource, versions: Versions, stores: list[str] | None = None
) -> Iterator[tuple[IssuingModel, dt.date, pd.DataFrame]]:
    """Each day's bottom level (of ``stores`` only, for a shard), as ``issued``."""
    for version in sorted({v for v in versions.values() if v is not None}, key=lambda v: (v.cutoff, int(v.version))):
        model = registry.load_issuing_model(client, version)
        its_days = sorted(d for d, v in versions.items() if v == version)
        rows = read_forecast_rows(features, its_days[0], its_days[-1], model, stores)
        predictions = prediction.predict(model.booster, rows.matrix)
        for day in its_days:
            yield model, day, issue_bottom(features, day, model, rows, predictions)


def catalog_warnings(summary: list[dict]) -> list[str]:
    """One warning per model version in ``summary`` (``Published.summary``) that learned on
    another feature catalog than the feature store's: its trees split on features defined
    otherwise (event distances were uncapped before version 4), a skew between training and
    serving until its cutoff is trained again."""
    seen = {(row["model_version"], row["model_cutoff"], row["model_feature_catalog"]) for row in summary}
    return [
        f"model version {version} (cutoff {cutoff}) learned on feature catalog {catalog}, the feature store is at version "
        f"{CATALOG_VERSION}: its forecasts read features defined otherwise than those it learned on; materialize demand_model "
        f"for {cutoff} again"
        for version, cutoff, catalog in sorted(seen)
        if catalog != CATALOG_VERSION
    ]


def read_shadow_of(root: Path, stores: list[str] | None = None) -> Callable[[dt.date], pd.DataFrame | None]:
    """A reader of a day's challenger forecast (rows of ``stores`` only, if given); None without one."""

    def shadow(day: dt.date) -> pd.DataFrame | None:
        if not tables.FORECASTS_SHADOW.path(root, day).exists():
            return None
        return reader.read_partition(root, tables.FORECASTS_SHADOW, day, stores)

    return shadow
