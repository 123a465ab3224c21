"""The service itself: what it is, whether it can answer, its metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from m5_serving import __version__
from m5_serving.deps import READ, Services, open_or, services
from m5_serving.schemas import KEYED, Health, refusals

router = APIRouter(tags=["service"])


@router.get("/", summary="Name, version and links")
def root() -> dict:
    return {
        "name": "m5-forecasting API",
        "version": __version__,
        "links": {
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": "/health",
            "predict": "/predict",
            "forecasts": "/forecasts/{store_id}/{item_id}",
            "levels": "/forecasts/levels/{level}",
            "accuracy": "/accuracy",
            "model": "/model/info",
            "features": "/features",
            "metrics": "/metrics",
        },
    }


@router.get(
    "/health",
    response_model=Health,
    summary="Live, and ready once a snapshot serves (503 until then)",
    responses={503: {"model": Health}},
    dependencies=[Depends(open_or("read"))],
)
async def health(svc: Services = Depends(services)) -> Health | JSONResponse:
    served = svc.state.current
    reason = svc.state.not_ready_reason if served is None else svc.state.online_store_problem()
    if reason:
        return JSONResponse(Health(live=True, ready=False, reason=reason).model_dump(mode="json"), 503)
    assert served is not None  # without a snapshot, not_ready_reason (never empty) was answered above
    snapshot = served.snapshot
    return Health(
        live=True,
        ready=True,
        forecast_date=snapshot.forecast_date,
        model_version=snapshot.model_version,
        snapshot_age_seconds=round(snapshot.age_seconds(), 1),
    )


# Keyed like the data: it tells how the service is set up. It names no filesystem path.
@router.get(
    "/info",
    summary="What is serving and how the service is set up",
    dependencies=[READ],
    responses=refusals(*KEYED),
)
def info(svc: Services = Depends(services)) -> dict:
    served, settings = svc.state.current, svc.settings
    return {
        "version": __version__,
        "ready": served is not None,
        "forecast_date": served.snapshot.forecast_date.isoformat() if served else None,
        "covered_days": f"{served.snapshot.forecast_date} .. {served.snapshot.last_date}" if served else None,
        "issued_partitions": len(served.forecast_dates) if served else 0,
        "model_version": served.snapshot.model_version if served else None,
        "series": len(served.snapshot.series) if served else 0,
        "auth": "api keys" if svc.keys.enabled else "none (loopback only)",
        "online_store": "redis" if settings.redis_url else "memory (this process)",
        "rate_limit_per_minute": settings.rate_limit_per_minute,
        "batch_limit": settings.batch_limit,
        "reload_seconds": settings.reload_seconds,
    }


@router.get("/metrics", summary="Prometheus metrics", response_class=Response, dependencies=[Depends(open_or("read"))])
def metrics(svc: Services = Depends(services)) -> Response:
    served = svc.state.current
    if served is not None:
        svc.metrics.snapshot_age.set(served.snapshot.age_seconds())
    return Response(svc.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
