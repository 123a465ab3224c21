"""Metadata every asset shows in the UI: rows, schema, date range, file size, a preview."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa

from m5_assets.table_files import TableFiles
from m5_assets.warehouse import PartitionFacts, partition_facts

Describe = Callable[[str], str | None]  # a column's description, by its name


def readable_type(arrow_type: pa.DataType) -> str:
    """Column types as a user reads them: dictionary-encoded strings are categories."""
    if pa.types.is_dictionary(arrow_type):
        return f"category of {arrow_type.value_type}"
    if pa.types.is_date32(arrow_type):
        return "date"
    return str(arrow_type)


def column_schema(schema: pa.Schema, describe: Describe) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, readable_type(f.type), description=describe(f.name)) for f in schema]
    )


def table_metadata(
    con: duckdb.DuckDBPyConnection,
    path: Path | TableFiles,
    describe: Describe,
    preview_columns: int = 12,
) -> dict:
    """Standard metadata of a warehouse table read back from its Parquet file(s)."""
    files = TableFiles.of(path)
    scan = files.scan()
    preview = con.sql(f"SELECT * FROM {scan} LIMIT 5").df().iloc[:, :preview_columns]
    metadata = {
        "dagster/row_count": files.rows,
        "dagster/column_schema": column_schema(files.schema, describe),
        "path": dg.MetadataValue.path(str(files)),
        "size_mb": round(files.bytes / 2**20, 2),
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
    }
    if len(files.paths) > 1:
        metadata["files"] = len(files.paths)
    names = files.schema.names
    if "id" in names:
        metadata["series"] = con.sql(f"SELECT count(DISTINCT id) FROM {scan}").fetchall()[0][0]
    if "date" in names:
        first, last = con.sql(f"SELECT min(date), max(date) FROM {scan}").fetchall()[0]
        metadata["first_date"] = str(first)
        metadata["last_date"] = str(last)
    return metadata


def partition_metadata(path: Path, frame: pd.DataFrame, describe: Describe, preview_rows: int = 5) -> dict:
    """Metadata of one partition's file as published: rows, schema and size from its footer,
    series and dates from the frame that was written to it."""
    return facts_metadata(partition_facts(path, frame, preview_rows), describe)


def facts_metadata(facts: PartitionFacts, describe: Describe) -> dict:
    metadata = {
        "dagster/row_count": facts.rows,
        "dagster/column_schema": column_schema(facts.schema, describe),
        "path": dg.MetadataValue.path(str(facts.path)),
        "size_mb": round(facts.bytes / 2**20, 3),
        "preview": dg.MetadataValue.md(facts.preview.to_markdown(index=False)),
    }
    if facts.series is not None:
        metadata["series"] = facts.series
    if facts.first_date is not None:
        metadata["first_date"] = facts.first_date
        metadata["last_date"] = facts.last_date
    return metadata
