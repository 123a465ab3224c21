"""Operations that need the admin scope."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from m5_serving.deps import ADMIN, Services, services
from m5_serving.schemas import KEYED, ReloadResult, refusals

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[ADMIN], responses=refusals(*KEYED))


@router.post("/reload", response_model=ReloadResult, summary="Load the newest published partition now")
async def reload(svc: Services = Depends(services)) -> dict:
    return await run_in_threadpool(svc.state.reload)
