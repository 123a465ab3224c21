"""The API's settings: its view of the project's settings (``m5_assets.settings``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m5_assets.settings import DataPaths, Settings, load_settings


@dataclass(frozen=True)
class ServingSettings:
    """Every knob of the API; ``from_env`` takes them from ``M5_API_*`` and ``M5_DATA_DIR``."""

    paths: DataPaths
    keys: str = ""  # "id:scope:secret,..." (scope read or admin)
    keys_file: Path | None = None  # lines "id scope sha256:<hex digest of the secret>"
    rate_limit_per_minute: int = 100  # per key (per address without keys), and failed authentications per address
    batch_limit: int = 1000
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1 << 20
    protect_health: bool = False  # key /health and /metrics too
    reload_seconds: float = 10.0  # how often the watcher looks for a newer partition (0: never)
    older_partitions_cached: int = 8
    # The online store: with a Redis URL every worker and replica serves the snapshot published
    # there and shares one rate limit; without, each process holds its own snapshot (the default).
    redis_url: str = ""
    redis_prefix: str = "m5"
    # Without Redis, the rate limit's buckets: in this process (None), or in a SQLite file every
    # worker of one server opens (`python -m m5_serving --workers N` makes a fresh one).
    rate_limit_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ServingSettings:
        served = cls(
            paths=settings.paths,
            keys=settings.api_keys,
            keys_file=settings.api_keys_file,
            rate_limit_per_minute=settings.api_rate_limit,
            batch_limit=settings.api_batch_limit,
            cors_origins=settings.api_cors_origins,
            max_body_bytes=settings.api_max_body_bytes,
            protect_health=settings.api_protect_health,
            reload_seconds=settings.api_reload_seconds,
            redis_url=settings.api_redis_url,
            redis_prefix=settings.api_redis_prefix,
            rate_limit_file=settings.api_rate_limit_file,
        )
        return dataclasses.replace(served, **overrides)

    @classmethod
    def from_env(cls, **overrides: object) -> ServingSettings:
        return cls.from_settings(load_settings(), **overrides)
