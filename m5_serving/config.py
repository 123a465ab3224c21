"""Serving settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from m5_assets.settings import DataPaths, data_paths

RATE_LIMIT_FILE = "M5_API_RATE_LIMIT_FILE"


def _flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ServingSettings:
    """Every knob of the API. ``from_env`` reads ``M5_API_*`` and ``M5_DATA_DIR``."""

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
    def from_env(cls, **overrides) -> ServingSettings:
        env = os.environ
        values = dict(
            paths=data_paths(env.get("M5_DATA_DIR")),
            keys=env.get("M5_API_KEYS", ""),
            keys_file=Path(env["M5_API_KEYS_FILE"]) if env.get("M5_API_KEYS_FILE") else None,
            rate_limit_per_minute=int(env.get("M5_API_RATE_LIMIT", "100")),
            batch_limit=int(env.get("M5_API_BATCH_LIMIT", "1000")),
            cors_origins=tuple(o.strip() for o in env.get("M5_API_CORS_ORIGINS", "").split(",") if o.strip()),
            max_body_bytes=int(env.get("M5_API_MAX_BODY_BYTES", str(1 << 20))),
            protect_health=_flag("M5_API_PROTECT_HEALTH"),
            reload_seconds=float(env.get("M5_API_RELOAD_SECONDS", "10")),
            redis_url=env.get("M5_API_REDIS_URL", ""),
            redis_prefix=env.get("M5_API_REDIS_PREFIX", "m5"),
            rate_limit_file=Path(env[RATE_LIMIT_FILE]) if env.get(RATE_LIMIT_FILE) else None,
        )
        values.update(overrides)
        return cls(**values)
