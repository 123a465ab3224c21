"""Dagster code location for the m5-forecasting platform."""
