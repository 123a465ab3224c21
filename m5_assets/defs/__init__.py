"""Dagster definitions, one module per concern; ``m5_assets.definitions`` assembles them."""
