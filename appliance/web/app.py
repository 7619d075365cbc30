"""The FastAPI application. Routes parse, call one domain function and shape the reply; errors become JSON with a
stable `code` and a human `message` in the one handler below."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from appliance.errors import ApplianceError, RateLimited
from appliance.instance import Instance
from appliance.metrics import HttpMetrics
from appliance.tasks import Tasks
from appliance.web.hub import Hub
from appliance.web.middleware import BodySizeLimit, RequestLog, VisitorCors
from appliance.web.ratelimit import RateLimiter
from appliance.console import routes as console_routes
from appliance.console.knowledge_import import IMPORT_PATH as CONSOLE_IMPORT_PATH
from appliance.widget import routes as widget_routes
from appliance.web.routes import analytics, answers, apikeys, audit, auth, conversations, escalation, health, knowledge, retrieval, routing, settings, team, webhooks, widget

log = logging.getLogger("appliance.web")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated", 403: "forbidden"}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApplianceError)
    async def appliance_error(request: Request, exc: ApplianceError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if exc.status >= 500:
            log.warning("request failed", extra={"fields": {"code": exc.code, "status": exc.status}})
        extra = {"details": exc.details} if exc.details is not None else {}
        return _error(exc.status, exc.code, exc.message, headers, retryable=exc.retryable, **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "malformed_json", "the request body is not valid JSON")
        # Report where and what, never the submitted value (it may be a password).
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in errors]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return _error(422, "invalid_request", f"{where}: {first['msg']}", errors=details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=(type(exc), exc, None))
        return _error(500, "internal", "internal error")


def create_app(inst: Instance, tasks: Tasks | None = None) -> FastAPI:
    """tasks: the background queue; by default tasks run in the request's thread as they are enqueued."""
    tasks = tasks or Tasks(inst, immediate=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.hub.loop = asyncio.get_running_loop()
        tasks.start()
        try:
            yield
        finally:
            tasks.stop()

    app = FastAPI(
        title="Support appliance",
        version="0.1.0",
        description="Self-hosted AI customer support. Every model runs on this box.",
        lifespan=lifespan,
    )
    app.state.instance = inst
    app.state.tasks = tasks
    app.state.metrics = HttpMetrics()
    app.state.hub = Hub(app.state.metrics)
    app.state.rate_limiter = RateLimiter(inst.settings.rate_limit_per_minute)
    app.state.metrics_networks = [
        ipaddress.ip_network(n, strict=False) for n in inst.settings.metrics_allowed_networks
    ]
    _install_error_handlers(app)
    app.include_router(widget_routes.router)
    for console_router in console_routes.ROUTERS:
        app.include_router(console_router)
    for module in (health, auth, team, apikeys, settings, audit, answers, knowledge, retrieval, webhooks, conversations, routing, widget, escalation, analytics):  # answers first: /api/knowledge/gaps
        app.include_router(module.router)
    # The middleware added last runs first: the log line must also see the 413s the size limit sends.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=inst.settings.max_body_bytes,
        streamed={knowledge.IMPORT_PATH: inst.settings.import_max_bytes,
                  CONSOLE_IMPORT_PATH: inst.settings.import_max_bytes},
    )
    app.add_middleware(VisitorCors)
    app.add_middleware(RequestLog, metrics=app.state.metrics)
    return app
