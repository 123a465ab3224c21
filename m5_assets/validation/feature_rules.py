"""Feature values held to the rules of the feature catalog, in one scan of the feature store."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from m5_assets import tables
from m5_assets.features.catalog import FeatureSpec
from m5_assets.table_files import TableFiles, TableSource
from m5_assets.validation.violations import Violation

FEATURES_FILE = tables.FEATURES.name


def _broken_when(spec: FeatureSpec) -> str | None:
    """SQL condition true on rows that break the feature's rule (None: nothing to check)."""
    parts = []
    if spec.min_value is not None:
        parts.append(f'"{spec.name}" < {spec.min_value}')
    if spec.max_value is not None:
        parts.append(f'"{spec.name}" > {spec.max_value}')
    if spec.dtype == "float32":
        parts.append(f'isnan("{spec.name}")')
    if not spec.nullable:
        parts.append(f'"{spec.name}" IS NULL')
    return " OR ".join(parts) or None


def catalog_violations(
    con: duckdb.DuckDBPyConnection, features: TableSource, specs: Iterable[FeatureSpec]
) -> list[Violation]:
    """One violation per feature whose values break its rule, missing columns included."""
    scan = TableFiles.of(features).scan()
    present = set(con.sql(f"SELECT * FROM {scan} LIMIT 0").columns)
    found, conditions = [], {}
    for spec in specs:
        if spec.name not in present:
            found.append(Violation(FEATURES_FILE, spec.name, "catalog feature is missing from the store", 0))
        elif (condition := _broken_when(spec)) is not None:
            conditions[spec.name] = condition
    if not conditions:
        return found
    counts = con.sql(
        "SELECT " + ", ".join(f'count(*) FILTER (WHERE {c}) AS "{n}"' for n, c in conditions.items()) + f" FROM {scan}"
    ).fetchall()[0]
    by_name = {spec.name: spec for spec in specs}
    for (name, condition), count in zip(conditions.items(), counts, strict=True):
        if count:
            examples = con.sql(f'SELECT id, date, "{name}" FROM {scan} WHERE {condition} LIMIT 5').df()
            found.append(
                Violation(FEATURES_FILE, name, f"values must satisfy: {by_name[name].rule}", int(count), examples)
            )
    return found
