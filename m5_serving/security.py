"""API keys with scopes, and a per-key rate limit.

Keys come from ``M5_API_KEYS`` ("id:scope:secret,...") or a keys file (lines "id scope
sha256:<hex>", so the file holds no secret). Only SHA-256 digests are kept in memory, and a
presented key is compared with every digest in constant time. Scopes: ``read``; ``admin``, which
includes read.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCOPES = ("read", "admin")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    scope: str
    digest: bytes


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_keys(spec: str, keys_file: Path | None) -> list[ApiKey]:
    """Keys from the environment's spec and the keys file; a malformed entry is an error naming it."""
    keys = []
    for entry in (e.strip() for e in spec.split(",") if e.strip()):
        parts = entry.split(":", 2)
        if len(parts) != 3 or parts[1] not in SCOPES or not parts[2]:
            raise ValueError(f"M5_API_KEYS entry {parts[0]!r} must be id:scope:secret with scope read or admin")
        keys.append(ApiKey(parts[0], parts[1], _digest(parts[2])))
    if keys_file is not None:
        for number, line in enumerate(keys_file.read_text().splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 3 or parts[1] not in SCOPES or not parts[2].startswith("sha256:"):
                raise ValueError(f"{keys_file}, line {number}: must be 'id scope sha256:<hex digest of the key>'")
            keys.append(ApiKey(parts[0], parts[1], bytes.fromhex(parts[2].removeprefix("sha256:"))))
    return keys


class KeyRing:
    def __init__(self, keys: list[ApiKey]):
        self.keys = keys

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def identify(self, presented: str) -> ApiKey | None:
        """The key whose digest matches, checking every key so the time says nothing."""
        digest, found = _digest(presented), None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def allows(scope: str, needed: str) -> bool:
    return scope == "admin" or scope == needed


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests, refilled evenly. ``clock`` is injectable."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 if the request may go; otherwise the seconds until it may."""
        if self.capacity <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
