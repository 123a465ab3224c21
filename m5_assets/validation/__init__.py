"""Data-quality rules for the raw files and the tables built from them (no Dagster here)."""
