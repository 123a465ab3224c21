"""Redis as the API's online store (``M5_API_REDIS_URL``): one snapshot that every worker and
replica serves, and one rate limit they share.

Layout, under the root prefix (``M5_API_REDIS_PREFIX``, default ``m5``):
- ``{root}:snap:{token}:series``    hash, "item_id|store_id" -> hierarchy ids, NUL, 28 x 7 float64
- ``{root}:snap:{token}:features``  hash, series id -> the newest feature row (JSON)
- ``{root}:snap:{token}:inventory`` hash, series id -> the replenishment plan row (JSON)
- ``{root}:snap:{token}:levels``    hash, level -> its keys x 28 x 7 float64
- ``{root}:snap:{token}:meta``      JSON: forecast date, model, level keys, card, catalog, ...
- ``{root}:snap:{token}:source``    JSON: the partition's date and file time (what every look reads)
- ``{root}:current``                the token that serves: set last, in one command
- ``{root}:ratelimit:{client}``     a token bucket, updated by one Lua script; ``client`` is
                                    ``key:<id>``, ``address:<ip>`` or ``failed-auth:<ip>``

A partition is written under a new token and switched to by setting ``current``: a reader sees
the old snapshot or the new one, never a mix. The previous token's keys expire after
``GRACE_SECONDS``, which outlasts a replica's polling interval, so a request that started on it
finishes on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd
import redis
from redis.lock import Lock
from redis.typing import EncodableT, FieldT

from m5_assets import tables
from m5_serving.snapshot import HORIZON, VALUE_COLUMNS, Series, Snapshot
from m5_serving.state import Served, records

GRACE_SECONDS = 300
PARTS = ("series", "features", "inventory", "levels", "meta", "source")
SEP = "|"
_SHAPE = (HORIZON, len(VALUE_COLUMNS))


# The client is made without decode_responses, so every reply is bytes: redis-py's annotations say
# ``bytes | str`` for either setting, hence the casts to bytes where replies are read.
def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)


# --- JSON that keeps dates ---------------------------------------------------------------------


def _default(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return {"__timestamp__": value.isoformat()}
    if isinstance(value, dt.date):
        return {"__date__": value.isoformat()}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in the online store")


def _hook(obj: dict[str, Any]) -> dt.date | pd.Timestamp | dict[str, Any]:
    if len(obj) == 1:
        if "__date__" in obj:
            return dt.date.fromisoformat(obj["__date__"])
        if "__timestamp__" in obj:
            return pd.Timestamp(obj["__timestamp__"])
    return obj


def dumps(value: object) -> bytes:
    return json.dumps(value, default=_default, allow_nan=True).encode()


def loads(data: bytes) -> Any:
    return json.loads(data, object_hook=_hook)


# --- publishing ----------------------------------------------------------------------------------


class OnlineStore:
    def __init__(self, client: redis.Redis, root: str = "m5") -> None:
        self.client, self.root = client, root

    def key(self, token: str, part: str) -> str:
        return f"{self.root}:snap:{token}:{part}"

    def current_token(self) -> str | None:
        token = cast(bytes | None, self.client.get(f"{self.root}:current"))
        return token.decode() if token else None

    def published(self) -> tuple[dt.date, float] | None:
        """The forecast date and source file time of the snapshot that serves, or None. Asked by
        every process at every look, so it reads a key of its own, not the whole meta."""
        token = self.current_token()
        source = cast(bytes | None, self.client.get(self.key(token, "source"))) if token else None
        if source is None:
            return None
        source = loads(source)
        return source["forecast_date"], source["source_mtime"]

    def publish(self, served: Served) -> str:
        """Write ``served`` under a new token, then make it the one that serves; its token."""
        token = uuid.uuid4().hex
        snapshot = served.snapshot
        pipe = self.client.pipeline(transaction=False)
        series = {f"{s.item_id}{SEP}{s.store_id}": _pack(s, snapshot.values[s.row]) for s in snapshot.series.values()}
        for chunk in _chunks(series):
            pipe.hset(self.key(token, "series"), mapping=chunk)
        for part, frame in (("features", served.feature_rows), ("inventory", served.inventory)):
            rows = {str(row["id"]): dumps(row) for row in records(frame)} if not frame.empty else {}
            for chunk in _chunks(rows):
                pipe.hset(self.key(token, part), mapping=chunk)
        if snapshot.level_values:
            pipe.hset(
                self.key(token, "levels"),
                mapping={str(k): v.astype(np.float64).tobytes() for k, v in snapshot.level_values.items()},
            )
        meta = {
            "forecast_date": snapshot.forecast_date,
            "model_version": snapshot.model_version,
            "mlflow_run_id": snapshot.mlflow_run_id,
            "rows": snapshot.rows,
            "source_mtime": snapshot.source_mtime,
            "published_at": time.time(),
            "load_seconds": snapshot.load_seconds,
            "items": list(snapshot.items),
            "stores": list(snapshot.stores),
            "level_keys": {str(k): v for k, v in snapshot.level_keys.items()},
            "forecast_dates": served.forecast_dates,
            "model_card": served.model_card,
            "feature_catalog": served.feature_catalog,
            "accuracy": served.accuracy,
            "drift": served.drift,
        }
        pipe.set(self.key(token, "meta"), dumps(meta))
        pipe.set(
            self.key(token, "source"),
            dumps({"forecast_date": snapshot.forecast_date, "source_mtime": snapshot.source_mtime}),
        )
        pipe.execute()
        previous = self.current_token()
        # The switch: one SET. Readers that hold the previous token finish on it before it expires.
        self.client.set(f"{self.root}:current", token)
        if previous and previous != token:
            expiring = self.client.pipeline(transaction=False)
            for part in PARTS:
                expiring.expire(self.key(previous, part), GRACE_SECONDS)
            expiring.execute()
        return token

    def lock(self, seconds: int = 300) -> Lock:
        """Held by the one process that publishes a partition; it expires after ``seconds`` should
        that process die mid-publish (a full-scale publish takes seconds)."""
        return self.client.lock(f"{self.root}:publish-lock", timeout=seconds)

    def load(self, token: str) -> RedisServed | None:
        """The snapshot under ``token``, its per-series parts left in Redis; None if it is gone."""
        meta = cast(bytes | None, self.client.get(self.key(token, "meta")))
        if meta is None:
            return None
        meta = loads(meta)
        level_keys = {int(k): v for k, v in meta["level_keys"].items()}
        stored = cast(dict[bytes, bytes], self.client.hgetall(self.key(token, "levels")))
        level_values = {
            int(k): np.frombuffer(v, np.float64).reshape(len(level_keys[int(k)]), *_SHAPE) for k, v in stored.items()
        }
        snapshot = RedisSnapshot(
            forecast_date=meta["forecast_date"],
            model_version=meta["model_version"],
            mlflow_run_id=meta["mlflow_run_id"],
            values=np.empty((0, *_SHAPE)),
            series={},
            level_values=level_values,
            level_keys=level_keys,
            rows=meta["rows"],
            loaded_at=meta["published_at"],
            load_seconds=meta["load_seconds"],
            source_mtime=meta["source_mtime"],
            items=tuple(meta["items"]),
            stores=tuple(meta["stores"]),
            store=self,
            token=token,
        )
        return RedisServed(
            snapshot=snapshot,
            forecast_dates=meta["forecast_dates"],
            model_card=meta["model_card"],
            feature_rows=pd.DataFrame(),
            feature_catalog=meta["feature_catalog"],
            accuracy=meta["accuracy"],
            drift=meta["drift"],
            store=self,
            token=token,
        )


def _pack(series: Series, days: np.ndarray) -> bytes:
    ids = "\x1f".join(series.hierarchy().values())
    return ids.encode() + b"\x00" + np.ascontiguousarray(days, np.float64).tobytes()


def _unpack(data: bytes) -> tuple[Series, np.ndarray]:
    ids, _, values = data.partition(b"\x00")
    series = Series(row=-1, **dict(zip(tables.SERIES_COLUMNS, ids.decode().split("\x1f"), strict=True)))
    return series, np.frombuffer(values, np.float64).reshape(_SHAPE)


def _chunks(mapping: dict[str, bytes], size: int = 2000) -> Iterator[dict[FieldT, EncodableT]]:
    # Chunks typed as HSET's own mapping: a dict[str, bytes] is not one, a dict's key type being invariant.
    items = list(mapping.items())
    for start in range(0, len(items), size):
        yield dict(items[start : start + size])


# --- reading -----------------------------------------------------------------------------------


@dataclass
class RedisSnapshot(Snapshot):
    """A snapshot whose series live in Redis: a lookup is one HGET under its token."""

    store: OnlineStore | None = None
    token: str = ""
    fetched: dict[str, bytes | None] | None = None  # a batch's series, fetched in one round trip
    remote: ClassVar[bool] = True

    def lookup(self, item_id: str, store_id: str) -> tuple[Series, np.ndarray] | None:
        field = f"{item_id}{SEP}{store_id}"
        if self.fetched is not None and field in self.fetched:
            data = self.fetched[field]
        else:
            assert self.store is not None  # set by OnlineStore.load, which makes every RedisSnapshot
            data = cast(bytes | None, self.store.client.hget(self.store.key(self.token, "series"), field))
        return None if data is None else _unpack(data)

    def prefetched(self, pairs: list[tuple[str, str]]) -> RedisSnapshot:
        """A copy that answers ``pairs`` from one HMGET instead of one HGET each."""
        fields = list(dict.fromkeys(f"{item_id}{SEP}{store_id}" for item_id, store_id in pairs))
        if not fields:
            return self
        assert self.store is not None  # set by OnlineStore.load, which makes every RedisSnapshot
        values = cast(list[bytes | None], self.store.client.hmget(self.store.key(self.token, "series"), fields))
        return dataclasses.replace(self, fetched=dict(zip(fields, values, strict=True)))


@dataclass
class RedisServed(Served):
    store: OnlineStore | None = None
    token: str = ""

    def feature_row(self, series_id: str) -> dict | None:
        return self._row("features", series_id)

    def inventory_row(self, series_id: str) -> dict | None:
        return self._row("inventory", series_id)

    def _row(self, part: str, series_id: str) -> dict | None:
        assert self.store is not None  # set by OnlineStore.load, which makes every RedisServed
        data = cast(bytes | None, self.store.client.hget(self.store.key(self.token, part), series_id))
        return None if data is None else loads(data)


# --- one rate limit for every worker and replica ---------------------------------------------

# A token bucket per client in one hash, refilled by Redis's own clock so that every replica
# agrees; returns the seconds to wait (0: admitted), as text to keep its fraction.
_TAKE = """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(held[1]) or capacity, tonumber(held[2]) or now
tokens = math.min(capacity, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class SharedRateLimiter:
    """The RateLimiter's contract (``take``, ``capacity``) over one bucket per client in Redis."""

    def __init__(self, client: redis.Redis, per_minute: int, root: str = "m5") -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.root = root
        self._take = client.register_script(_TAKE)

    def take(self, client: str) -> float:
        if self.capacity <= 0:
            return 0.0
        return float(self._take(keys=[f"{self.root}:ratelimit:{client}"], args=[self.capacity, self.rate]))
