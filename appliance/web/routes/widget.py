"""The widget's side: widget keys (admins), visitor sessions, the visitor's REST calls, and the two WebSockets of
the real-time hub (`/ws/widget` for customers, `/ws/console` for staff).

WebSocket protocol (JSON text frames). Widget → server, first: {"type": "hello", "session": SESSION} (answered
with {"type": "ready"}, or an error and close code 4401); then:
  {"type": "message", "client_id": "...", "text": "...", "conversation_id": N | null}
  {"type": "resume", "conversation_id": N, "after": LAST_SEEN_MESSAGE_ID}
  {"type": "human", "conversation_id": N}        {"type": "typing", "conversation_id": N}
  {"type": "feedback", "message_id": N, "value": "up" | "down"}                    {"type": "ping"}
Server → widget: ack {client_id, message_id, conversation_id, duplicate, reply_id, text: the message as stored,
card numbers and identifiers masked, answer: whether the assistant will look at it} (sent only after the message is
committed), history {messages after `after`, status, agent}, delta {conversation_id, text} (streamed answer),
message, status, agent_joined, agent_left, typing, no_reply {conversation_id, reply_to, reason: person | waiting}
(no reply is coming for that message: the widget clears "Typing…"), error {code, message, client_id}, pong.
Console → server: {"type": "watch" | "unwatch", "conversation_id": N}, {"type": "typing", "conversation_id": N}.
Server → console: queue {conversations waiting in my teams' queues, sent on connect}, queue_alert, assigned,
conversation (list updates, for roles that see all), and the watched conversations' frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from starlette.websockets import WebSocketDisconnect

from appliance.audit.events import Context
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.auth.sessions import resolve_session
from appliance.conversations import events as channels
from appliance.conversations import routing, views, widget
from appliance.conversations.events import Event
from appliance.conversations.widget import Identity, Visitor
from appliance.conversations.flow import Received, conversation_row
from appliance.errors import ApplianceError, InvalidValue, NotAuthenticated, RateLimited
from appliance.instance import Instance
from appliance.web.deps import SESSION_COOKIE, anonymous_context, client_addr, instance, public, requires, visitor
from appliance.web.hub import Hub, Subscriber
from appliance.web.params import MAX_INT, Count, Id, Int
from appliance.web.routes.conversations import publish

log = logging.getLogger("appliance.web.widget")
router = APIRouter(tags=["widget"])
P = Permission


def _key_out(key: widget.WidgetKey) -> dict[str, Any]:
    return {"id": key.id, "public_key": key.public_key, "theme": key.theme, "revoked": key.revoked,
            "created_at": key.created_at}  # fmt: skip


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    theme: dict[str, Any] = Field(default_factory=dict)


@router.get("/api/widget/keys", summary="Widget keys and their themes")
def list_keys(request: Request, principal: Principal = requires(P.MANAGE_SETTINGS)) -> list[dict[str, Any]]:
    return [_key_out(k) for k in widget.list_keys(instance(request).db, principal.org_id)]


@router.post("/api/widget/keys", status_code=201, summary="Create a widget key (its identity secret is shown once)")
def create_key(body: KeyBody, request: Request, principal: Principal = requires(P.MANAGE_SETTINGS)) -> dict[str, Any]:
    key, secret = widget.create_key(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                                    body.theme)  # fmt: skip
    return {**_key_out(key), "identity_secret": secret}


@router.put("/api/widget/keys/{key_id}/theme", summary="Set a widget key's theme")
def set_theme(key_id: Id, body: KeyBody, request: Request, principal: Principal = requires(P.MANAGE_SETTINGS)) -> dict[str, Any]:
    return _key_out(widget.set_theme(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                                     key_id, body.theme))  # fmt: skip


@router.post("/api/widget/keys/{key_id}/rotate-secret", summary="A new identity secret (the old one stops working)")
def rotate(key_id: Id, request: Request, principal: Principal = requires(P.MANAGE_SETTINGS)) -> dict[str, Any]:
    secret = widget.rotate_secret(instance(request).db, principal.context(client_addr(request)), principal.org_id, key_id)
    return {"id": key_id, "identity_secret": secret}


@router.delete("/api/widget/keys/{key_id}", status_code=204, summary="Revoke a widget key and its sessions")
def revoke(key_id: Id, request: Request, principal: Principal = requires(P.MANAGE_SETTINGS)) -> Response:
    widget.revoke_key(instance(request).db, principal.context(client_addr(request)), principal.org_id, key_id)
    return Response(status_code=204)


class IdentityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=200)
    email: str = Field(default="", max_length=320)
    name: str = Field(default="", max_length=200)
    timestamp: Int
    signature: str = Field(min_length=64, max_length=64)


class SessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=100)
    identity: IdentityBody | None = None


@router.post("/api/widget/session", dependencies=[Depends(public)],
             summary="Start a visitor session for a widget key (with an optional signed identity)")
def start_session(body: SessionBody, request: Request) -> dict[str, Any]:
    identity = Identity(**body.identity.model_dump()) if body.identity is not None else None
    token, v, key = instance(request).widget_sessions.start(anonymous_context(request), body.key, identity)
    return {"session": token, "expires": v.expires, "customer_id": v.customer_id, "theme": key.theme}


@router.get("/api/chat/conversations/{conversation_id}", summary="The visitor's conversation (after a reload)")
def visitor_conversation(conversation_id: Id, request: Request, after: Count = 0,
                         v: Visitor = Depends(visitor)) -> dict[str, Any]:  # fmt: skip
    return views.visitor_view(instance(request).db, v.org_id, conversation_id, v.visitor_id, after)


@router.post("/api/chat/conversations/{conversation_id}/human", summary="The customer asks for a person")
def ask_for_human(conversation_id: Id, request: Request, v: Visitor = Depends(visitor)) -> dict[str, Any]:
    events = instance(request).flow.escalate(v.context(client_addr(request)), v.org_id, conversation_id,
                                             "the customer asked for a person", trigger="customer_request",
                                             visitor_id=v.visitor_id)  # fmt: skip
    publish(request, events)
    return views.visitor_view(instance(request).db, v.org_id, conversation_id, v.visitor_id, after=2**62)


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(pattern="^(up|down)$")


@router.post("/api/chat/messages/{message_id}/feedback", summary="Thumbs up or down on an answer")
def feedback(message_id: Id, body: FeedbackBody, request: Request, v: Visitor = Depends(visitor)) -> dict[str, Any]:
    events = instance(request).flow.feedback(v.context(client_addr(request)), v.org_id, message_id, v.visitor_id,
                                             "up" if body.value == "up" else "down")  # fmt: skip
    publish(request, events)
    return {"message_id": message_id, "value": body.value}


# -- WebSockets --------------------------------------------------------------------------------------------------

WS_CLOSE_AUTH = 4401
HELLO_TIMEOUT_S = 10


def _error(exc: Exception, client_id: Any = None) -> dict[str, Any]:
    if isinstance(exc, ApplianceError):
        return {"type": "error", "code": exc.code, "status": exc.status, "message": exc.message, "client_id": client_id}
    log.exception("websocket frame failed", exc_info=exc)
    return {"type": "error", "code": "internal", "status": 500, "message": "internal error", "client_id": client_id}


def _int(frame: dict[str, Any], name: str, required: bool = True) -> int | None:
    value = frame.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise InvalidValue(f"{name} must be a non-negative integer")
    return value


class WidgetSocket:
    """One widget connection: frames are handled one at a time, in order (a message's ack precedes its reply)."""

    def __init__(self, inst: Instance, hub: Hub, ws: WebSocket, v: Visitor, sub: Subscriber, token: str) -> None:
        self.inst, self.hub, self.ws, self.v, self.sub = inst, hub, ws, v, sub
        self.token = token
        self.addr = ws.client.host if ws.client else None
        self.ctx: Context = v.context(self.addr)

    def still_valid(self) -> None:
        """Before each change: the session has not expired and its widget key was not revoked meanwhile; and the
        visitor stays under the rate limit, as on the REST API."""
        self.inst.widget_sessions.verify(Context("anonymous", None, self.addr), self.token)
        wait = self.ws.app.state.rate_limiter.hit(f"visitor:{self.v.visitor_id}")
        if wait is not None:
            self.ws.app.state.metrics.rate_limited.labels("visitor").inc()
            raise RateLimited("too many messages; slow down", retry_after=wait)

    def follow(self, conversation_id: int) -> None:
        self.hub.subscribe(self.sub, channels.visitor(conversation_id))

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        flow = self.inst.flow
        if kind == "ping":
            self.sub.push({"type": "pong"})
            return
        if kind not in ("typing", "message"):  # a message checks inside its own thread hop
            await anyio.to_thread.run_sync(self.still_valid)
        if kind == "message":
            await self.message(frame)
        elif kind == "resume":
            conversation_id = _int(frame, "conversation_id")
            assert conversation_id is not None
            view = await anyio.to_thread.run_sync(views.visitor_view, self.inst.db, self.v.org_id, conversation_id,
                                                  self.v.visitor_id, _int(frame, "after", False) or 0)  # fmt: skip
            self.follow(conversation_id)
            self.sub.push({"type": "history", **view})
        elif kind == "human":
            wanted = _int(frame, "conversation_id")
            assert wanted is not None
            out = await anyio.to_thread.run_sync(lambda: flow.escalate(
                self.ctx, self.v.org_id, wanted, "the customer asked for a person",
                trigger="customer_request", visitor_id=self.v.visitor_id))  # fmt: skip
            self.hub.publish(out)
            await self.deliver()
        elif kind == "typing":
            conversation_id = _int(frame, "conversation_id")
            if conversation_id is not None and channels.visitor(conversation_id) in self.sub.channels:
                self.hub.publish([Event((channels.watchers(conversation_id),),
                                        {"type": "typing", "conversation_id": conversation_id, "role": "customer"})])  # fmt: skip
        elif kind == "feedback":
            message_id = _int(frame, "message_id")
            value = frame.get("value")
            if value not in ("up", "down") or message_id is None:
                raise InvalidValue("feedback needs message_id and value up or down")
            out = await anyio.to_thread.run_sync(lambda: flow.feedback(self.ctx, self.v.org_id, message_id,
                                                                       self.v.visitor_id, value))  # fmt: skip
            self.hub.publish(out)
        else:
            raise InvalidValue(f"unknown frame type {kind!r}")

    async def message(self, frame: dict[str, Any]) -> None:
        client_id, text = frame.get("client_id"), frame.get("text")
        if not isinstance(client_id, str) or not isinstance(text, str):
            raise InvalidValue("a message needs client_id and text (strings)")
        conversation_id = _int(frame, "conversation_id", False)
        flow, loop = self.inst.flow, asyncio.get_running_loop()
        def receive() -> Received:
            self.still_valid()
            return flow.receive(self.ctx, self.v.org_id, text, sender=self.v.sender, conversation_id=conversation_id,
                                client_id=client_id, channel="widget", customer_id=self.v.customer_id,
                                visitor_id=self.v.visitor_id)  # fmt: skip

        received = await anyio.to_thread.run_sync(receive)
        self.follow(received.conversation_id)
        self.sub.push({"type": "ack", "client_id": client_id, "message_id": received.message_id,
                       "conversation_id": received.conversation_id, "duplicate": received.duplicate,
                       "reply_id": received.reply_id, "text": received.text,
                       "answer": received.answer_needed})  # fmt: skip
        self.hub.publish(received.events)
        if not received.answer_needed:
            await self.deliver()
            return
        target = (channels.visitor(received.conversation_id), channels.watchers(received.conversation_id))

        def on_delta(text: str) -> None:
            loop.call_soon_threadsafe(self.hub.publish, [Event(target, {
                "type": "delta", "conversation_id": received.conversation_id, "reply_to": received.message_id,
                "text": text})])  # fmt: skip

        responded = await anyio.to_thread.run_sync(lambda: flow.respond(self.ctx, self.v.org_id, received, on_delta))
        self.hub.publish(responded.events)
        await self.deliver()

    async def deliver(self) -> None:
        if self.inst.flow.take_deliveries():
            await anyio.to_thread.run_sync(self.ws.app.state.tasks.deliver_webhooks)


async def _serve(ws: WebSocket, hub: Hub, sub: Subscriber, handle: Any, max_frame: int) -> None:
    sender = asyncio.create_task(sub.run_sender())
    ended_by_auth = False
    try:
        while not sub.closed:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text")
            client_id = None
            if hub.metrics is not None:
                hub.metrics.frames.labels("in").inc()
            if raw is None:
                sub.push({"type": "error", "code": "bad_input", "status": 400, "message": "frames are JSON text"})
                continue
            try:
                if len(raw) > max_frame:
                    raise InvalidValue(f"frame larger than {max_frame} bytes")
                frame = json.loads(raw)
                if not isinstance(frame, dict):
                    raise InvalidValue("a frame is a JSON object")
                client_id = frame.get("client_id")
                await handle(frame)
            except json.JSONDecodeError:
                sub.push({"type": "error", "code": "malformed_json", "status": 400, "message": "not JSON"})
            except NotAuthenticated as exc:  # the session expired or its key was revoked: the socket ends
                sub.push(_error(exc, client_id))
                ended_by_auth = True
                break
            except Exception as exc:  # one bad frame answers an error; the connection stays
                sub.push(_error(exc, client_id))
    except WebSocketDisconnect:
        pass
    finally:
        sub.close()
        await sender
    if ended_by_auth:
        try:
            await ws.close(WS_CLOSE_AUTH)
        except RuntimeError:  # already closed by the client
            pass


@router.websocket("/ws/widget")
async def widget_socket(ws: WebSocket) -> None:
    inst: Instance = ws.app.state.instance
    hub: Hub = ws.app.state.hub
    hub.attach(asyncio.get_running_loop())
    await ws.accept()
    addr = ws.client.host if ws.client else None
    try:
        # The visitor session comes in the first frame, not in the URL: URLs are written to logs.
        try:
            with anyio.fail_after(HELLO_TIMEOUT_S):
                hello = await ws.receive_json()
        except (TimeoutError, ValueError, KeyError, json.JSONDecodeError):
            raise NotAuthenticated('send {"type": "hello", "session": SESSION} first') from None
        token = hello.get("session") if isinstance(hello, dict) and hello.get("type") == "hello" else None
        if not isinstance(token, str):
            raise NotAuthenticated('send {"type": "hello", "session": SESSION} first')
        v = await anyio.to_thread.run_sync(inst.widget_sessions.verify, Context("anonymous", None, addr), token)
    except ApplianceError as exc:
        await ws.send_json(_error(exc))
        await ws.close(WS_CLOSE_AUTH)
        return
    except WebSocketDisconnect:
        return
    await ws.send_json({"type": "ready", "expires": v.expires, "customer_id": v.customer_id})
    sub = Subscriber(ws, hub, "widget")
    conn = WidgetSocket(inst, hub, ws, v, sub, token)
    await _serve(ws, hub, sub, conn.handle, inst.settings.max_message_bytes * 6 + 1024)


def _console_principal(inst: Instance, ws: WebSocket) -> Principal:
    token = ws.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated("sign in first")
    origin = ws.headers.get("origin")
    host = ws.headers.get("host")
    if origin is not None and host is not None and origin.split("://", 1)[-1] != host:
        raise NotAuthenticated("cross-site WebSocket refused")
    return resolve_session(inst.db, inst.session_policy, token)


@router.websocket("/ws/console")
async def console_socket(ws: WebSocket) -> None:
    inst: Instance = ws.app.state.instance
    hub: Hub = ws.app.state.hub
    hub.attach(asyncio.get_running_loop())
    await ws.accept()
    try:
        principal = await anyio.to_thread.run_sync(_console_principal, inst, ws)
        if not ({P.VIEW_ALL_CONVERSATIONS, P.VIEW_ASSIGNED_CONVERSATIONS} & principal.permissions):
            raise NotAuthenticated("this role does not handle conversations")
    except ApplianceError as exc:
        await ws.send_json(_error(exc))
        await ws.close(WS_CLOSE_AUTH)
        return
    sub = Subscriber(ws, hub, "console")
    hub.subscribe(sub, channels.agent(principal.id))
    view_all = P.VIEW_ALL_CONVERSATIONS in principal.permissions
    if view_all:
        hub.subscribe(sub, channels.org(principal.org_id))
    viewer = views.Viewer(principal.id, view_all)

    def waiting() -> list[dict[str, Any]]:
        """The conversations waiting in my teams' queues (all queues for a role that sees all), oldest first."""
        with inst.db.read() as conn:
            teams = None if view_all else routing.agent(conn, principal.org_id, principal.id).teams
            return [channels.conversation_summary(conversation_row(conn, principal.org_id, i))
                    for i in routing.queued(conn, principal.org_id, teams)]  # fmt: skip

    sub.push({"type": "queue", "conversations": await anyio.to_thread.run_sync(waiting)})

    async def handle(frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "ping":
            sub.push({"type": "pong"})
            return
        conversation_id = _int(frame, "conversation_id")
        assert conversation_id is not None

        def check() -> Any:
            with inst.db.read() as conn:
                return views.visible(conn, principal.org_id, conversation_id, viewer)

        row = await anyio.to_thread.run_sync(check)
        if kind == "watch":
            hub.subscribe(sub, channels.watchers(conversation_id))
            sub.push({"type": "watching", "conversation_id": conversation_id})
        elif kind == "unwatch":
            hub.unsubscribe(sub, channels.watchers(conversation_id))
        elif kind == "typing":
            if row["handled_by"] == "agent" and row["assigned_agent_id"] == principal.id:
                hub.publish([Event((channels.visitor(conversation_id),),
                                   {"type": "typing", "conversation_id": conversation_id, "role": "agent"})])  # fmt: skip
        else:
            raise InvalidValue(f"unknown frame type {kind!r}")

    await _serve(ws, hub, sub, handle, 64 * 1024)
