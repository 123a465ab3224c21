"""The FastAPI application: ``create_app()`` for a server, ``create_app(settings, ...)`` for tests."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from m5_assets.reader import WarehouseReader
from m5_serving import __version__, online_store
from m5_serving.config import ServingSettings
from m5_serving.deps import Services
from m5_serving.docs import add_offline_docs
from m5_serving.routers import admin, data, forecasts, model, monitoring, predict, service
from m5_serving.security import FailedAuthentication, FileRateLimiter, KeyRing, Limiter, RateLimiter, parse_keys
from m5_serving.state import ServingState
from m5_serving.telemetry import Metrics, ServiceLayer

log = logging.getLogger("m5_serving")


def create_app(
    settings: ServingSettings | None = None, clock: Callable[[], float] | None = None, watch: bool = True
) -> FastAPI:
    settings = settings or ServingSettings.from_env()
    if not log.handlers:
        # JSON lines on stdout, under uvicorn and gunicorn alike.
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    metrics = Metrics()
    online = None
    limiter: Limiter
    if settings.redis_url:
        client = online_store.connect(settings.redis_url)
        online = online_store.OnlineStore(client, settings.redis_prefix)
        limiter = online_store.SharedRateLimiter(client, settings.rate_limit_per_minute, settings.redis_prefix)
    elif settings.rate_limit_file is not None:  # several workers on one host, without Redis
        limiter = FileRateLimiter(settings.rate_limit_file, settings.rate_limit_per_minute, *([clock] if clock else []))
    else:
        limiter = RateLimiter(settings.rate_limit_per_minute, *([clock] if clock else []))
    state = ServingState(
        WarehouseReader(settings.paths), settings.older_partitions_cached, metrics.on_state_event, online
    )
    failed_auth = FailedAuthentication(limiter, *([clock] if clock else []))
    svc = Services(
        settings, state, KeyRing(parse_keys(settings.keys, settings.keys_file)), limiter, metrics, failed_auth
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            outcome = state.reload()
        except redis.exceptions.RedisError as error:  # the watcher retries; /health says why meanwhile
            state.not_ready_reason = f"the online store (Redis) is unreachable: {error}"
            outcome = {"status": "not_ready"}
        log.info(
            f'{{"event": "startup", "warehouse": "{settings.paths.warehouse}", "snapshot": "{outcome["status"]}", '
            f'"auth": "{"api keys" if svc.keys.enabled else "none"}"}}'
        )
        if watch:
            state.start_watching(settings.reload_seconds)
        yield
        state.stop()

    app = FastAPI(
        title="m5-forecasting API",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by add_offline_docs, from the package instead of a CDN
        redoc_url=None,
        description="Stored demand forecasts (28 days, 50/80/95 % intervals) for every item and store, their "
        "aggregation levels, accuracy, the issuing model and the feature store, served from memory.",
    )
    app.state.services = svc
    add_offline_docs(app)
    for router in (
        service.router,
        predict.router,
        forecasts.router,
        model.router,
        data.router,
        monitoring.router,
        admin.router,
    ):
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each error's input, and a NaN or an infinity (JSON that
        # Python's parser accepts) cannot be written back as JSON: it became a 500.
        return JSONResponse({"detail": json_safe(jsonable_encoder(error.errors()))}, 422)

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def online_store_down(request: Request, error: Exception) -> JSONResponse:
        log.error(f'{{"event": "online_store_unreachable", "route": "{request.url.path}", "reason": {str(error)!r}}}')
        return JSONResponse(
            {"detail": "the online store (Redis) is unreachable; retry shortly"}, 503, {"Retry-After": "5"}
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception(f'{{"event": "unhandled", "route": "{request.url.path}"}}')
        return JSONResponse({"detail": "internal error; see the server log for this request id"}, 500)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(ServiceLayer, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    return app


def json_safe(value: object) -> object:
    """``value`` with every non-finite number written as text ("NaN", "Infinity", "-Infinity"),
    which strict JSON cannot hold as a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
