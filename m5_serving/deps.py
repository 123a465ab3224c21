"""What routes depend on: the services of this app, the serving snapshot, and the key check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from m5_serving.config import ServingSettings
from m5_serving.lookup import LookupFailed, find_series
from m5_serving.schemas import EXAMPLE_ITEM, EXAMPLE_STORE
from m5_serving.security import FailedAuthentication, KeyRing, Limiter, allows, retry_after
from m5_serving.snapshot import Series
from m5_serving.state import NotReady, Served, ServingState
from m5_serving.telemetry import Metrics

bearer = HTTPBearer(auto_error=False, description="an API key: Authorization: Bearer <key>")


@dataclass
class Services:
    settings: ServingSettings
    state: ServingState
    keys: KeyRing
    limiter: Limiter  # a RateLimiter, a FileRateLimiter, or the online store's SharedRateLimiter
    metrics: Metrics
    failed_auth: FailedAuthentication


# Dependencies are async: a sync one would run in a worker thread, a hop that costs more than
# the lookup itself.


async def services(request: Request) -> Services:
    return request.app.state.services


def require(scope: str) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[str]]:
    """A dependency that admits a key with ``scope`` (admin includes read) within its rate limit.
    With no key configured the service is open, bound to loopback, limited per client address.
    Failed authentications are limited per client address too (429 past the limit)."""

    async def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        svc: Services = request.app.state.services
        address = request.client.host if request.client else "unknown"
        client = f"address:{address}"
        if svc.keys.enabled:
            blocked = svc.failed_auth.blocked(address)
            if blocked:
                raise _too_many_failures(svc, blocked)
            key = svc.keys.identify(credentials.credentials) if credentials is not None else None
            if key is None:
                wait = svc.failed_auth.failed(address)
                if wait:
                    raise _too_many_failures(svc, wait)
                problem = (
                    "missing API key: send 'Authorization: Bearer <key>'" if credentials is None else "unknown API key"
                )
                raise HTTPException(401, problem, {"WWW-Authenticate": "Bearer"})
            if not allows(key.scope, scope):
                raise HTTPException(403, f"key '{key.key_id}' has scope '{key.scope}'; this needs '{scope}'")
            client = f"key:{key.key_id}"
            request.state.key_id = key.key_id
        wait = svc.limiter.take(client)
        if wait:
            raise HTTPException(
                429,
                f"rate limit of {int(svc.limiter.capacity)} requests a minute reached",
                {"Retry-After": retry_after(wait)},
            )
        return client

    return check


def _too_many_failures(svc: Services, wait: float) -> HTTPException:
    return HTTPException(
        429,
        f"more than {int(svc.limiter.capacity)} failed authentications a minute from this address; "
        "no key is checked until it may try again",
        {"Retry-After": retry_after(wait)},
    )


def open_or(scope: str) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[str | None]]:
    """Open by default; keyed like the rest when the setting says so (health and metrics)."""
    keyed = require(scope)

    async def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str | None:
        if request.app.state.services.settings.protect_health:
            return await keyed(request, credentials)
        return None

    return check


async def serving(request: Request) -> Served:
    try:
        return request.app.state.services.state.serving()
    except NotReady as error:
        raise HTTPException(503, f"not ready: {error}") from None


READ = Depends(require("read"))
ADMIN = Depends(require("admin"))


STORE_ID = Path(
    max_length=40,
    description="the store, as in the sales file: 'CA_1'",
    openapi_examples={"a store": {"value": EXAMPLE_STORE}},
)
ITEM_ID = Path(
    max_length=80,
    description="the item, as in the sales file ('FOODS_3_090'), or the series id without its suffix "
    "('FOODS_3_090_CA_1')",
    openapi_examples={"an item": {"value": EXAMPLE_ITEM}},
)


def path_series(store_id: str = STORE_ID, item_id: str = ITEM_ID, served: Served = Depends(serving)) -> Series:
    """The series a ``/{store_id}/{item_id}`` path names, in the serving snapshot; 404 naming the
    nearest ids when there is none."""
    try:
        return find_series(served.snapshot, item_id, store_id)[0]
    except LookupFailed as failed:
        raise HTTPException(failed.status, failed.detail) from None
