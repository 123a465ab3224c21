"""REST API over the materialized forecasts: lookups from an in-memory snapshot, never recomputed.

It reads the warehouse through ``m5_assets.reader`` only and never imports Dagster.
"""

__version__ = "0.1.0"
