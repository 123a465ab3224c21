"""Demand model: baselines, LightGBM training, promotion (no Dagster here)."""
