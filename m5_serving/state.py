"""The serving state: the current snapshot, swapped whole when a newer partition is published.

A request takes ``state.current`` once and answers from that object only, so a reload that
lands mid-request never mixes two partitions. A reload builds the next snapshot aside; if it is
refused, the old one keeps serving and the refusal is logged and counted.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd
import redis
from redis.lock import Lock

from m5_assets import tables
from m5_assets.reader import WarehouseReader
from m5_serving.snapshot import HORIZON, Snapshot, SnapshotRefused, build_snapshot

log = logging.getLogger("m5_serving")


class OnlineStore(Protocol):
    """What serving needs of the online store (``online_store.OnlineStore`` is one; it imports
    this module, so the dependency is stated here instead of imported)."""

    client: redis.Redis

    def current_token(self) -> str | None: ...

    def published(self) -> tuple[dt.date, float] | None: ...

    def publish(self, served: Served) -> str: ...

    def lock(self, seconds: int = 300) -> Lock: ...

    def load(self, token: str) -> Served | None: ...


@dataclass
class Served:
    """Everything a request may read, loaded together."""

    snapshot: Snapshot
    forecast_dates: list[dt.date]
    model_card: dict | None
    # Newest feature rows, one per series id: a frame, not 30,000 dicts (a million small objects
    # would slow every request that allocates, through the collector).
    feature_rows: pd.DataFrame
    feature_catalog: list[dict]
    accuracy: list[dict]
    # The newest forecast date's inventory plan (one row per series id) and feature drift, when
    # the pipeline wrote them; empty otherwise.
    inventory: pd.DataFrame = field(default_factory=pd.DataFrame)
    drift: list[dict] = field(default_factory=list)
    loaded: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def feature_row(self, series_id: str) -> dict | None:
        """The newest feature row of a series as JSON values, or None."""
        return _row(self.feature_rows, series_id)

    def inventory_row(self, series_id: str) -> dict | None:
        """The series' replenishment plan as JSON values, or None."""
        return _row(self.inventory, series_id)


def _row(frame: pd.DataFrame, series_id: str) -> dict | None:
    if frame.empty or series_id not in frame.index:
        return None
    (row,) = records(frame.loc[[series_id]])
    return row


class NotReady(RuntimeError):
    """No snapshot can serve yet; the message says why and what to do."""


class StateEvents(Protocol):
    """Told of each snapshot loaded (``"loaded", snapshot=``) and partition refused (``"refused", reason=``)."""

    def __call__(self, kind: str, *, snapshot: Snapshot | None = ..., reason: str | None = ...) -> None: ...


class ServingState:
    def __init__(
        self,
        reader: WarehouseReader,
        older_cached: int = 8,
        on_event: StateEvents | None = None,
        online: OnlineStore | None = None,
    ) -> None:
        self.reader = reader
        self.online = online  # None: the snapshot lives in this process
        self.current: Served | None = None
        self.not_ready_reason = "no snapshot loaded yet"
        self._lock = threading.Lock()
        self._older: OrderedDict[dt.date, Snapshot] = OrderedDict()
        self._older_cached = older_cached
        self._on_event: StateEvents = on_event or (lambda kind, **details: None)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # --- loading ------------------------------------------------------------------------------

    def reload(self, force: bool = False) -> dict:
        """Load the newest published partition if it differs from the one serving; say what happened.
        With an online store, the partition is published there first (by one process) and every
        process switches to what the store serves."""
        with self._lock:
            self.reader.sync(force=force)  # the object store's newest files, when it has one
            days = self.reader.forecast_dates()
            if not days and self.online is None:
                self.not_ready_reason = self._nothing_issued()
                return {"status": "not_ready", "reason": self.not_ready_reason}
            if self.online is not None:
                return self._reload_online(days, force)
            day = days[-1]
            mtime = tables.FORECASTS.path(self.reader.root, day).stat().st_mtime
            current = self.current
            if (
                not force
                and current
                and (current.snapshot.forecast_date, current.snapshot.source_mtime) == (day, mtime)
            ):
                return {"status": "unchanged", "forecast_date": day.isoformat()}
            try:
                served = self._build(days)
            except SnapshotRefused as error:
                return self._refused(day, error)
            return self._serve(served)

    def _reload_online(self, days: list[dt.date], force: bool) -> dict:
        online, refusal = self.online, None
        assert online is not None  # reload() comes here only with an online store
        if days:
            newest = (days[-1], tables.FORECASTS.path(self.reader.root, days[-1]).stat().st_mtime)
            # One process publishes; one that finds another publishing does not wait (it would hold
            # this state's lock meanwhile) and switches on a later look.
            lock = online.lock()
            if (force or online.published() != newest) and lock.acquire(blocking=False):
                try:
                    if force or online.published() != newest:  # published while this one looked?
                        online.publish(self._build(days))
                except SnapshotRefused as error:
                    refusal = self._refused(days[-1], error)
                finally:
                    lock.release()
        token = online.current_token()
        current = self.current
        if token is None:
            if refusal is None:
                self.not_ready_reason = self._nothing_issued()
            return refusal or {"status": "not_ready", "reason": self.not_ready_reason}
        if current is not None and getattr(current, "token", None) == token:
            return refusal or {"status": "unchanged", "forecast_date": current.snapshot.forecast_date.isoformat()}
        served = online.load(token)
        if served is None:  # switched again and expired in between: the next look finds the newest
            return {
                "status": "unchanged",
                "forecast_date": current.snapshot.forecast_date.isoformat() if current else None,
            }
        outcome = self._serve(served)
        return refusal | {"serving": outcome["forecast_date"]} if refusal else outcome

    def _nothing_issued(self) -> str:
        return (
            f"no forecast partition in {self._public(str(tables.FORECASTS.folder(self.reader.root)))}: run `make run` "
            "(or materialize `forecasts` in the Dagster UI) first"
        )

    def _public(self, text: str) -> str:
        """``text`` with the data folder's absolute path cut: what clients read (an open /health
        among them) names files relative to the data folder; the server's log keeps the full path."""
        return text.replace(f"{self.reader.paths.root}/", "").replace(str(self.reader.paths.root), "the data folder")

    def _refused(self, day: dt.date, error: SnapshotRefused) -> dict:
        current, reason = self.current, self._public(str(error))
        log.error(f'{{"event": "snapshot_refused", "forecast_date": "{day}", "reason": {str(error)!r}}}')
        self._on_event("refused", reason=reason)
        if current is None:
            self.not_ready_reason = f"the newest partition ({day}) was refused: {reason}"
        return {
            "status": "refused",
            "forecast_date": day.isoformat(),
            "reason": reason,
            "serving": current.snapshot.forecast_date.isoformat() if current else None,
        }

    def _serve(self, served: Served) -> dict:
        self.current = served
        self._older.clear()
        # A snapshot's objects live until the next swap: freezing them keeps the collector's
        # full passes (tens of ms over 30,000 series) out of request latencies.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        snapshot = served.snapshot
        self._on_event("loaded", snapshot=snapshot)
        log.info(
            f'{{"event": "snapshot_loaded", "forecast_date": "{snapshot.forecast_date}", "rows": {snapshot.rows}, '
            f'"seconds": {snapshot.load_seconds:.2f}}}'
        )
        return {
            "status": "loaded",
            "forecast_date": snapshot.forecast_date.isoformat(),
            "rows": snapshot.rows,
            "seconds": round(snapshot.load_seconds, 3),
        }

    def _build(self, days: list[dt.date]) -> Served:
        """The newest of the published ``days`` loaded, with what requests read beside it."""
        day = days[-1]
        snapshot = build_snapshot(self.reader, day)
        card = self.reader.model_card(snapshot.model_version)
        try:
            rows = self.reader.feature_rows(day)
        except Exception as error:  # the feature store is an extra; forecasts still serve without it
            log.warning(f'{{"event": "feature_rows_unavailable", "reason": {str(error)!r}}}')
            rows = pd.DataFrame()
        features = rows.set_index(rows["id"].astype(str), drop=False) if not rows.empty else rows
        try:
            catalog = records(self.reader.feature_catalog())
        except FileNotFoundError:
            catalog = []
        inventory = _optional(self.reader.inventory_plan, day)
        inventory = inventory.set_index(inventory["id"].astype(str), drop=False) if not inventory.empty else inventory
        drift = records(
            _optional(self.reader.feature_drift, day).drop(
                columns=[tables.FEATURE_DRIFT.partition_column], errors="ignore"
            )
        )
        return Served(snapshot, days, card, features, catalog, records(self.reader.accuracy()), inventory, drift)

    # --- older partitions (audits): read from disk once, cached ---------------------------------

    def partition_for(self, served: Served, day: dt.date, as_of: dt.date | None) -> Snapshot | None:
        """The newest partition issued on or before ``day`` (and ``as_of``) whose 28 days cover it;
        SnapshotRefused (its reason fit for a client) when that partition must not serve."""
        latest_issue = min(day, as_of) if as_of else day
        candidates = [d for d in served.forecast_dates if d <= latest_issue and day < d + dt.timedelta(days=HORIZON)]
        if not candidates:
            return None
        chosen = candidates[-1]
        if chosen == served.snapshot.forecast_date:
            return served.snapshot
        with self._lock:
            if chosen in self._older:
                self._older.move_to_end(chosen)
                return self._older[chosen]
        try:
            older = build_snapshot(self.reader, chosen)
        except SnapshotRefused as error:
            log.error(f'{{"event": "snapshot_refused", "forecast_date": "{chosen}", "reason": {str(error)!r}}}')
            raise SnapshotRefused(self._public(str(error))) from None
        with self._lock:
            self._older[chosen] = older
            while len(self._older) > self._older_cached:
                self._older.popitem(last=False)
        return older

    def online_store_problem(self) -> str | None:
        """Why the online store cannot answer (a ping), or None: always None without one."""
        if self.online is None:
            return None
        try:
            self.online.client.ping()
        except Exception as error:  # any failure to answer is the reason, not a crash of /health
            return f"the online store (Redis) is unreachable: {error}"
        return None

    def serving(self) -> Served:
        served = self.current
        if served is None:
            raise NotReady(self.not_ready_reason)
        return served

    # --- the watcher ----------------------------------------------------------------------------

    def start_watching(self, every_seconds: float) -> None:
        if every_seconds <= 0 or self._watcher is not None:
            return

        def watch() -> None:
            while not self._stop.wait(every_seconds):
                try:
                    self.reload()
                except Exception as error:  # the watcher must outlive one bad look at the disk
                    log.error(f'{{"event": "watcher_error", "reason": {str(error)!r}}}')

        self._watcher = threading.Thread(target=watch, name="m5-snapshot-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        # What the last load froze may be collected again (a process that goes on, as a test run).
        gc.unfreeze()


def _optional(read: Callable[[dt.date], pd.DataFrame], day: dt.date) -> pd.DataFrame:
    """A partition written beside the forecasts (drift, inventory), or an empty frame when the
    pipeline has not written one for ``day``."""
    try:
        return read(day)
    except FileNotFoundError:
        return pd.DataFrame()


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain JSON values: dates as ISO days, NaN as null, numpy numbers as Python ones."""
    if frame.empty:
        return []
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].dt.strftime("%Y-%m-%d")
        elif frame[column].dtype == object and isinstance(
            frame[column].dropna().iloc[0] if frame[column].notna().any() else None, dt.date
        ):
            frame[column] = frame[column].map(lambda v: v.isoformat() if isinstance(v, dt.date) else v)
    return json.loads(frame.to_json(orient="records"))
