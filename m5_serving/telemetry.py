"""Prometheus metrics, JSON access logs, request ids and the request body limit, in one ASGI layer."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m5_assets import library_env

if TYPE_CHECKING:
    from m5_serving.snapshot import Snapshot

access_log = logging.getLogger("m5_serving.access")


class Metrics:
    """The service's own registry (several apps in one process, as in tests, never collide).
    A gauge's ``multiprocess_mode`` says how workers' values combine under gunicorn."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "m5_api_requests",
            "Requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "m5_api_request_seconds",
            "Request latency by route",
            ["route"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.snapshot_age = Gauge(
            "m5_api_snapshot_age_seconds",
            "Seconds since the serving snapshot was loaded (under several workers: the scraped ones')",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        # One sample per live worker (a pid label), 0 until the worker has loaded one: the oldest
        # snapshot served is min(... > 0) over them.
        self.snapshot_loaded_at = Gauge(
            "m5_api_snapshot_loaded_timestamp_seconds",
            "Unix time the serving snapshot was loaded (0: none yet)",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.snapshot_rows = Gauge(
            "m5_api_snapshot_rows",
            "Forecast rows (bottom and levels) in the serving snapshot",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.snapshot_load = Gauge(
            "m5_api_snapshot_load_seconds",
            "Seconds the serving snapshot took to load",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.snapshot_loads = Counter("m5_api_snapshot_loads", "Snapshots loaded", registry=self.registry)
        self.snapshot_refusals = Counter(
            "m5_api_snapshot_refusals", "Partitions refused by validation", registry=self.registry
        )

    def on_state_event(self, kind: str, snapshot: Snapshot | None = None, reason: str | None = None) -> None:
        if kind == "loaded":
            assert snapshot is not None  # ServingState sends "loaded" with the snapshot it loaded
            self.snapshot_loads.inc()
            self.snapshot_rows.set(snapshot.rows)
            self.snapshot_loaded_at.set(snapshot.loaded_at)
            self.snapshot_load.set(snapshot.load_seconds)
        elif kind == "refused":
            self.snapshot_refusals.inc()

    def exposition(self) -> bytes:
        """The text a scrape gets: this process's registry, or every worker's samples combined.

        ``python -m m5_serving --workers N`` (N > 1) names a folder where each gunicorn worker
        writes its samples, so a scrape that lands on any worker sees the whole service."""
        if library_env.prometheus_multiproc_dir():
            combined = CollectorRegistry()
            MultiProcessCollector(combined)
            return generate_latest(combined)
        return generate_latest(self.registry)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class ServiceLayer:
    """Gives each request an id, refuses bodies over the limit (413), then counts, times and logs
    it. Pure ASGI: no per-request task or body copy, which a BaseHTTPMiddleware would add."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode("latin-1")))
            await send(message)

        try:
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await _reply(send_with_id, 413, {"detail": f"request body over {self.max_body_bytes} bytes"})
            else:
                received = {"bytes": 0}

                async def limited_receive() -> Message:
                    message = await receive()
                    if message["type"] == "http.request":
                        received["bytes"] += len(message.get("body", b""))
                        if received["bytes"] > self.max_body_bytes:
                            raise _BodyTooLarge(413, f"request body over {self.max_body_bytes} bytes")
                    return message

                try:
                    await self.app(scope, limited_receive, send_with_id)
                except _BodyTooLarge as error:  # read outside FastAPI's body parsing, which answers it itself
                    await _reply(send_with_id, 413, {"detail": error.detail})
        finally:
            # Counted and logged whatever happened, a crash (already answered 500) included.
            seconds = time.perf_counter() - started
            route = _route_of(scope)
            self.metrics.requests.labels(route, scope["method"], str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(seconds)
            access_log.info(
                json.dumps(
                    {
                        "request_id": request_id,
                        "key_id": scope["state"].get("key_id"),
                        "method": scope["method"],
                        "route": route,
                        "status": status["code"],
                        "latency_ms": round(1000 * seconds, 3),
                    }
                )
            )


class _BodyTooLarge(HTTPException):
    """A body without a declared length (chunked) that grows past the limit. An HTTPException,
    because FastAPI turns any other exception raised while it reads a body into a 400."""


async def _reply(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
