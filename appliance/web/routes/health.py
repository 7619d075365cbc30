"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from appliance.errors import ApplianceError
from appliance.store.schema import require_current
from appliance.web.deps import instance, monitoring, public

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers", dependencies=[Depends(public)])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database open and migrations current",
    response_model=None,
    dependencies=[Depends(public)],
)
def readyz(request: Request) -> Any:
    inst = instance(request)
    try:
        with inst.db.read() as conn:
            conn.execute("SELECT 1").fetchone()
        require_current(inst.db)
    except ApplianceError as exc:
        return JSONResponse({"status": "not_ready", "code": exc.code, "message": exc.message}, status_code=503)
    return {"status": "ready"}


@router.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(monitoring)])
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
