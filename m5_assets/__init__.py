"""m5-forecasting's pipeline: pure modules below, Dagster definitions (``defs``) above."""

from m5_assets.library_env import arrow_returns_freed_memory

# Before anything allocates through Arrow, which picks its allocator once (library_env).
arrow_returns_freed_memory()
