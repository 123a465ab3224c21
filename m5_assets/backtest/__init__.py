"""Rolling-origin backtest on genuine M5 series: the product's model beside its peers (no Dagster here)."""
