"""Monitoring: feature drift between the rows a forecast reads and the serving model's validation window (pure, Dagster-free)."""
