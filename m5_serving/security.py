"""API keys with scopes, a per-key rate limit, and a limit on failed authentications per address.

Keys come from ``M5_API_KEYS`` ("id:scope:secret,...") or a keys file (lines "id scope
sha256:<hex>", so the file holds no secret). Only SHA-256 digests are kept in memory, and a
presented key is compared with every digest in constant time. Scopes: ``read``; ``admin``, which
includes read.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
    def __init__(self, keys: list[ApiKey]) -> None:
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


def refill(held: tuple[float, float] | None, now: float, capacity: float, rate: float) -> tuple[float, float]:
    """A token bucket's next state and the wait of one request: ``held`` is its (tokens, time) or
    None when new; returns (tokens left, seconds to wait, 0 when admitted). A clock that went
    back refills nothing."""
    tokens, then = held if held is not None else (capacity, now)
    tokens = min(capacity, tokens + max(0.0, now - then) * rate)
    if tokens >= 1:
        return tokens - 1, 0.0
    return tokens, (1 - tokens) / rate


class Limiter(Protocol):
    """The RateLimiter's contract, which FileRateLimiter and online_store.SharedRateLimiter keep too."""

    capacity: float

    def take(self, client: str) -> float: ...


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests, refilled evenly, held in this process.
    ``clock`` is injectable."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
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
            tokens, wait = refill(self._buckets.get(client), now, self.capacity, self.rate)
            self._buckets[client] = (tokens, now)
            return wait


BUSY_SECONDS = 10


def open_bucket_file(path: Path) -> sqlite3.Connection:
    """Open (creating if need be) the shared bucket file.

    Switching a file to WAL takes an exclusive lock, and SQLite answers "database is locked" at once
    to a second connection switching it at the same moment (the busy timeout does not cover it): two
    gunicorn workers booting together did exactly that. So the server's master prepares the file
    before it forks any worker, the switch is made only when the file is not in WAL yet (the mode is
    stored in the file), and a switch that meets another one waits its turn like any other lock."""
    db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + BUSY_SECONDS
    while db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE IF NOT EXISTS buckets (client TEXT PRIMARY KEY, tokens REAL NOT NULL, at REAL NOT NULL)")
    return db


class FileRateLimiter:
    """The RateLimiter's contract over one SQLite file that every worker of a server opens, so
    that gunicorn's workers (which share no memory) share each client's bucket. A take is one
    short write transaction; the file holds nothing worth keeping (no fsync)."""

    def __init__(self, path: Path, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock  # wall time: every process, and a restart, reads the same one
        self._lock = threading.Lock()
        self._db = open_bucket_file(path)

    def take(self, client: str) -> float:
        if self.capacity <= 0:
            return 0.0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # the write lock first: no other worker reads in between
            try:
                now = self.clock()
                held = self._db.execute("SELECT tokens, at FROM buckets WHERE client = ?", (client,)).fetchone()
                tokens, wait = refill(held, now, self.capacity, self.rate)
                self._db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?)", (client, tokens, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return wait


class FailedAuthentication:
    """Failed authentications limited per client address, with the request limit's buckets.

    Once an address is over its limit, it gets 429 for any key, the right one included, until its
    bucket refills: otherwise a guesser would tell a right key (200) from wrong ones (429) at any
    rate. The refusal is remembered in this process, so a request with a good key costs no second
    trip to a shared bucket; another worker learns it at that address's next failure there."""

    def __init__(self, limiter: Limiter, clock: Callable[[], float] = time.monotonic) -> None:
        self.limiter, self.clock = limiter, clock
        self._blocked: dict[str, float] = {}  # address -> until when (this process's clock)

    def blocked(self, address: str) -> float:
        """Seconds until ``address`` may try a key again; 0 if it may now."""
        until = self._blocked.get(address)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            self._blocked.pop(address, None)
            return 0.0
        return left

    def failed(self, address: str) -> float:
        """Count one failure of ``address``: 0 while within the limit, else the seconds to wait."""
        wait = self.limiter.take(f"failed-auth:{address}")
        if wait:
            self._blocked[address] = self.clock() + wait
        return wait


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
