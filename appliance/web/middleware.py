"""Plain ASGI middleware: the request-body size limit, and one structured log line plus metrics per request.

Plain ASGI rather than BaseHTTPMiddleware: the size limit must stop reading a chunked body as soon as it passes
the limit, which needs the receive channel itself.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance.errors import PayloadTooLarge
from appliance.metrics import HttpMetrics

log = logging.getLogger("appliance.web")


async def send_json_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _answers_as_page(path: str, streamed: dict[str, int]) -> bool:
    """A console upload is refused by its page (a JSON body would be no answer to a form, and htmx swaps nothing on
    a 413): it is only counted here, and the PayloadTooLarge raised past the limit reaches the page's handler."""
    return path in streamed and path.startswith("/console/")


def _counted(receive: Receive, max_bytes: int, message: str) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        msg = await receive()
        if msg["type"] == "http.request":
            size += len(msg.get("body", b""))
            if size > max_bytes:
                raise PayloadTooLarge(message)
        return msg

    return counted


class BodySizeLimit:
    """Refuses bodies over max_bytes with 413 before the app sees them. The body is read here in full (it is at
    most max_bytes) and replayed, because frameworks turn errors raised while they read a body into a 400.

    `streamed` maps the paths of routes that read their own body as a stream (uploads, written to a file) to their
    own larger limit. Those bodies are counted as they pass instead of held here: going past the limit raises
    PayloadTooLarge inside the route, which the error handler answers with the same 413."""

    def __init__(self, app: ASGIApp, max_bytes: int, streamed: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.streamed.get(scope["path"], self.max_bytes)
        message = f"request body larger than {max_bytes} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_json_error(send, 400, "bad_input", "malformed Content-Length header")
                    return
                if declared > max_bytes and not _answers_as_page(scope["path"], self.streamed):
                    await send_json_error(send, 413, "payload_too_large", message)
                    return
        if scope["path"] in self.streamed:
            await self.app(scope, _counted(receive, max_bytes, message), send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # the client went away before sending its body
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_json_error(send, 413, "payload_too_large", message)
                return
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestLog:
    """One JSON log line and one metrics observation per request. Never logs bodies, query strings or headers:
    they may carry customer text or secrets."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id

        async def capture(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
                msg.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(msg)

        try:
            await self.app(scope, receive, capture)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status, elapsed)
            state: dict[str, Any] = scope.get("state", {})
            principal = state.get("principal")
            log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": scope["method"],
                        "route": template,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                        "org_id": getattr(principal, "org_id", None),
                        "actor": getattr(principal, "actor", None),
                    }
                },
            )


_VISITOR_PATHS = re.compile(r"^/api/(?:widget/session|chat/.+|conversations/\d+/(?:csat|resolve))$")
_VISITOR_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, POST"),
    (b"access-control-allow-headers", b"content-type, x-visitor-session"),
    (b"access-control-max-age", b"600"),
]


class VisitorCors:
    """Cross-origin access for the widget's calls only (the session, the chat, CSAT): they authenticate with the
    X-Visitor-Session header, never a cookie, so any intranet page may make them. Every other route gets no CORS
    headers, and a browser keeps other origins out of it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _VISITOR_PATHS.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": _VISITOR_CORS})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_VISITOR_CORS[:1]]}
            await send(message)

        await self.app(scope, receive, with_cors)
