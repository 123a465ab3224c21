"""m5-forecasting's pipeline: pure modules below, Dagster definitions (``defs``) above."""
