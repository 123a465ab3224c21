"""The offline feature store and its catalog; the store is published only once its checks pass."""

from dataclasses import dataclass

import dagster as dg
import duckdb

from m5_assets import tables
from m5_assets.defs.checks import FEATURE_CHECKS
from m5_assets.defs.metadata import table_metadata
from m5_assets.defs.resources import M5Data
from m5_assets.features.build import FeatureStats
from m5_assets.features.catalog import (
    CATALOG_VERSION,
    FEATURES,
    HORIZON,
    KEY_COLUMNS,
    LABEL_COLUMN,
    MIN_LAG,
    STOCKED_OUT_COLUMN,
    STOCKED_OUT_DESCRIPTION,
    catalog_frame,
)
from m5_assets.table_files import TableFiles
from m5_assets.validation.violations import Violation

_DESCRIPTIONS = {spec.name: f"[{spec.family}] {spec.description} ({spec.rule})" for spec in FEATURES}
_DESCRIPTIONS |= {
    "id": "series id (key)",
    "date": "day (key)",
    LABEL_COLUMN: "label: units sold that day; null for the days after the data",
    STOCKED_OUT_COLUMN: STOCKED_OUT_DESCRIPTION,
}


@dg.asset(
    group_name="features",
    kinds={"pandas", "parquet"},
    description=tables.FEATURE_CATALOG.description,
)
def feature_catalog(m5_data: M5Data) -> dg.MaterializeResult:
    frame = catalog_frame()
    target = m5_data.table(tables.FEATURE_CATALOG)
    m5_data.storage.write_with(target, lambda partial: frame.to_parquet(partial, index=False))
    return dg.MaterializeResult(
        metadata=table_metadata(m5_data.connect(), target, tables.FEATURE_CATALOG.describe)
        | {
            "catalog_version": CATALOG_VERSION,
            "features_per_family": dg.MetadataValue.md(
                frame.groupby("family").size().to_frame("features").to_markdown()
            ),
            "catalog": dg.MetadataValue.md(
                frame[["name", "family", "dtype", "rule", "description"]].to_markdown(index=False)
            ),
        }
    )


FEATURES_DESCRIPTION = (
    f"Offline feature store: one row per series and day, keys {KEY_COLUMNS}, label "
    f"'{LABEL_COLUMN}', and every catalog feature. Units enter only lagged by at least "
    f"{MIN_LAG} days, so the rows of a forecast issued on day D (D .. D+{HORIZON - 1}) use no "
    f"sale dated on or after D. Runs {HORIZON} days past the last sales day. A day far outside "
    "its series' history is read capped (metadata 'capped_days'); list known genuine days in "
    "known_genuine_days.csv in the data folder to keep them as sold."
)
CAPPED_SHOWN = 20
FEATURE_INPUTS = (
    tables.SALES_LONG.name,
    tables.RAW_CALENDAR.name,
    tables.RAW_SELL_PRICES.name,
    feature_catalog.key.path[-1],
)


@dataclass(frozen=True)
class FeatureBuild:
    """A new generation of the feature store as its blocking checks and the UI see it: what the
    groups' builds found, and the catalog-rule violations each group found in the files it wrote
    (the rule holds row by row, so each group checks its own rows, side by side)."""

    stats: FeatureStats
    catalog_violations: list[Violation]


def describe_features(con: duckdb.DuckDBPyConnection, files: TableFiles, build: FeatureBuild) -> dict:
    """What the UI shows of the feature store, read back from its files as checked."""
    stats = build.stats
    metadata = table_metadata(con, files, _DESCRIPTIONS.get, preview_columns=16)
    stocked_out_days, series_hit = con.sql(
        f"SELECT count(*) FILTER (WHERE {STOCKED_OUT_COLUMN} = 1), count(DISTINCT id) FILTER (WHERE {STOCKED_OUT_COLUMN} = 1) "
        f"FROM {files.scan()}"
    ).fetchall()[0]
    return metadata | {
        "features": len(FEATURES),
        "last_sales_date": str(stats.last_sales_date.date()),
        "future_days": (stats.last_date - stats.last_sales_date).days,
        "catalog_version": CATALOG_VERSION,
        "stocked_out_days": int(stocked_out_days),  # skipped by training
        "series_with_stock_outs": int(series_hit),
        # Outliers for modelling: the features and the label read these days capped.
        "capped_days": len(stats.capped),
        "capped_series": int(stats.capped["id"].nunique()),
        "capped_largest": dg.MetadataValue.md(
            stats.capped.assign(ratio=stats.capped["units"] / stats.capped["capped_to"].clip(lower=1))
            .nlargest(CAPPED_SHOWN, "ratio")
            .drop(columns="ratio")
            .to_markdown(index=False)
            if len(stats.capped)
            else "none"
        ),
    }


FEATURE_CHECK_SPECS = [check.spec(tables.FEATURES.name) for check in FEATURE_CHECKS]
