"""Monitoring: feature drift between the rows before a forecast and the serving model's training window (pure, Dagster-free)."""
