"""Real-time chat under load: N concurrent widget WebSocket sessions against a running `appliance serve`, beside a
bare WebSocket echo server driven by the same client code.

    .venv/bin/python bench/chat_load.py [--sessions 1000] [--messages-per-session 5] [--concurrency-ramp 5]
                                        [--think-time 0] [--timeout 60] [--verify-sample 100] [--json]

Setup, through the CLI, in a throwaway data dir removed at the end: `appliance init`, `org add`, `user add` (an
admin). Then `appliance serve` runs as a subprocess on a free loopback port, plain HTTP, with the inherited
APPLIANCE_* variables removed and three set: chat_responder=echo (the assistant's reply repeats the customer's text
at once, so no model runs and what is measured is the real-time path: the WebSocket, the two transactions of a
message and its reply, the hub), a rate limit far above what the load needs, and max_bot_turns at its maximum (so no
conversation is handed to a person mid-run). The open-files limit of this process, inherited by the servers, is
raised to its hard limit: each session is one socket on each side. The admin signs in and creates a widget key; every
session gets its own visitor session (POST /api/widget/session) before anything is timed.

The load, per target (the appliance's /ws/widget, then the bare echo server): the N sessions connect, spread evenly
over --concurrency-ramp seconds (a connect that fails is retried twice; retries are counted); when every connect has
succeeded or failed, the clock starts and every connected session sends its messages one at a time: a `message` frame
with a unique client id and a unique text, then it waits for the assistant's reply (a `message` frame with role "ai"
and that text) before the next, after --think-time seconds (jittered +-50%; 0 by default). All N sessions are thus
in flight at once: a closed loop of N outstanding messages, where the latency is mostly the wait behind the others
(about N / throughput); --think-time makes the load lighter. One warm-up session sends one message first (the
server's first message pays for lazy set-up), untimed.

Per message: the ack latency (send -> `ack` frame) and the relay latency (send -> the echoed reply, the figure
compared). Lost: no ack, or no reply, within --timeout (a reply that comes later is counted as late, and still lost).
Duplicated: a client id acked twice although it was sent once, an ack that says duplicate, the customer's own message
pushed back twice, or two replies for one message. Errors: failed connects, `error` frames, connections closed by the
server, anything unexpected.

The bare echo server (a subprocess: the `websockets` asyncio server, the library uvicorn uses for the appliance's
WebSockets) answers every message with the same four frames the appliance sends (ack, the customer's message, one
delta, the reply) and does nothing else: no authentication, no database, no hub. It shows what the client, the
loopback and the WebSocket protocol cost on this machine. The ratio appliance / bare echo of the relay latency is
the figure with a goal (<= 3x); under the closed loop it is close to the ratio of their throughputs.

Afterwards the appliance's database is checked through the staff API, as an admin (the data dir is encrypted):
GET /api/conversations, paged with `before` (the list is ordered by last activity while `before` cuts by id, so a
page walk can skip conversations; each expected conversation it does not list is fetched by id), and
GET /api/conversations/{id} for a sample of --verify-sample conversations (0: all), plus every conversation whose
session saw anything wrong: each message sent must be stored once, each acked one must be there, and each must have
exactly one reply.

The client runs on the same cores as the server: its CPU time is shown beside the server's, and the share of the
machine's CPU other processes used. Client and server compete, so the figures are those of this box, not of the
server alone. This prints figures only; it never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from serving import APPLIANCE, clean_env, cli, cpu_seconds, free_port, log_tail, machine_busy_seconds, own_cpu_seconds, percentile, progress, stop  # noqa: E402  (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
ORG, ORG_NAME = "chatload", "Chat load bench"
ADMIN = "admin@chat-load.example"
RATE_LIMIT = 10_000_000  # per organisation (and per address, for the public session endpoint) per minute
MAX_BOT_TURNS = 1000  # the setting's maximum: no conversation is handed to a person during the run
MAX_MESSAGES = MAX_BOT_TURNS - 1
BACKLOG = 2048  # the bare echo server's listen backlog (uvicorn's default, which `appliance serve` uses)
CONNECT_TIMEOUT_S = 30.0
CONNECT_ATTEMPTS = 3
DRAIN_S = 1.0  # after the last reply, how long the sessions stay open to catch late or duplicated frames
READY_TIMEOUT_S = 90.0
LIST_LIMIT = 500  # GET /api/conversations's largest page
SESSION_REQUESTS_IN_FLIGHT = 16


def spread(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    return {"p50": round(percentile(values, 0.5), 2), "p90": round(percentile(values, 0.9), 2),
            "p99": round(percentile(values, 0.99), 2), "max": round(max(values), 2),
            "mean": round(sum(values) / len(values), 2)}  # fmt: skip


def raise_fd_limit() -> dict[str, int]:
    """The open-files limit as high as allowed (the soft limit up to the hard one); children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            progress(f"could not raise the open-files limit from {soft} to {target}: {exc}")
    now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return {"before": soft, "now": now, "hard": hard if hard != resource.RLIM_INFINITY else -1}


# -- processes ----------------------------------------------------------------------------------------------------


def spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own descriptor; a pipe nobody reads would stall it
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def wait_until(proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log_tail(log)}")
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} was not ready after {READY_TIMEOUT_S:.0f} s:\n{log_tail(log)}")


def http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    return check


def tcp_ready(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    return check


# -- the bare echo server (run as a subprocess: chat_load.py --echo-server PORT) ------------------------------------


def _public(message_id: int, conversation_id: int, role: str, text: str, client_id: str | None) -> dict[str, Any]:
    return {"id": message_id, "conversation_id": conversation_id, "role": role, "content": text,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "client_id": client_id,
            "outcome": "answered" if role == "ai" else None, "confidence": 100 if role == "ai" else None,
            "sources": [], "agent": None, "feedback": None}  # fmt: skip


async def echo_server(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    message_ids, conversation_ids = itertools.count(1), itertools.count(1)

    async def handler(ws: ServerConnection) -> None:
        conversation: int | None = None
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "hello":
                    await ws.send(json.dumps({"type": "ready", "expires": 0, "customer_id": None}))
                    continue
                client_id, text = frame.get("client_id"), frame.get("text")
                if frame.get("type") != "message" or not isinstance(client_id, str) or not isinstance(text, str):
                    await ws.send(json.dumps({"type": "error", "code": "invalid_value", "status": 400,
                                              "message": "not a message", "client_id": client_id}))  # fmt: skip
                    continue
                if conversation is None:
                    conversation = next(conversation_ids)
                mine, reply = next(message_ids), next(message_ids)
                await ws.send(json.dumps({"type": "ack", "client_id": client_id, "message_id": mine,
                                          "conversation_id": conversation, "duplicate": False, "reply_id": None}))
                await ws.send(json.dumps({"type": "message",
                                          "message": _public(mine, conversation, "customer", text, client_id)}))
                await ws.send(json.dumps({"type": "delta", "conversation_id": conversation, "reply_to": mine,
                                          "text": text}))  # fmt: skip
                await ws.send(json.dumps({"type": "message",
                                          "message": _public(reply, conversation, "ai", text, None)}))
        except ConnectionClosed:
            pass

    async with serve(handler, "127.0.0.1", port, backlog=BACKLOG) as server:
        print(f"echo server on 127.0.0.1:{port}", flush=True)
        await server.serve_forever()


# -- the client -----------------------------------------------------------------------------------------------------


@dataclass
class Msg:
    client_id: str
    text: str
    sent: float = 0.0
    ack: float | None = None
    reply: float | None = None
    acks: int = 0
    replies: int = 0
    echoes: int = 0
    marked_duplicate: bool = False
    timed_out: bool = False
    error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def duplicated(self) -> bool:
        return self.acks > 1 or self.replies > 1 or self.echoes > 1 or self.marked_duplicate

    @property
    def lost(self) -> bool:
        return self.ack is None or self.reply is None or self.timed_out


class Session:
    """One widget: a WebSocket, a reader task that files every frame under the message it answers."""

    def __init__(self, index: int, url: str, run_id: str) -> None:
        self.index, self.url, self.run_id = index, url, run_id
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.msgs: dict[str, Msg] = {}
        self.by_text: dict[str, Msg] = {}
        self.conversation_id: int | None = None
        self.conversations: set[int] = set()
        self.errors: Counter[str] = Counter()
        self.retries = 0
        self.unsent = 0
        self.closing = False
        self.closed = False

    async def connect(self) -> None:
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                # The session goes in the first frame, never in the URL (URLs end up in logs).
                base, _, token = self.url.partition("?session=")
                self.ws = await connect(base, ping_interval=None, open_timeout=CONNECT_TIMEOUT_S, close_timeout=5,
                                        max_queue=None)  # fmt: skip
                await self.ws.send(json.dumps({"type": "hello", "session": token}))
                ready = json.loads(await asyncio.wait_for(self.ws.recv(), CONNECT_TIMEOUT_S))
                if ready.get("type") != "ready":
                    raise websockets.exceptions.InvalidHandshake(f"no ready frame: {str(ready)[:80]}")
                self.reader = asyncio.create_task(self.read())
                return
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                if attempt + 1 == CONNECT_ATTEMPTS:
                    self.errors[f"connect: {type(exc).__name__}: {str(exc)[:80]}"] += 1
                    return
                self.retries += 1
                await asyncio.sleep(0.5 * 2**attempt)

    async def read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                try:
                    frame = json.loads(raw)
                except (TypeError, ValueError):
                    self.errors["frame: not JSON"] += 1
                    continue
                self.on_frame(frame, now)
        except ConnectionClosed as exc:
            if not self.closing:
                self.errors[f"closed by the server: {exc.rcvd.code if exc.rcvd else 'no close frame'}"] += 1
        else:
            if not self.closing:
                code = self.ws.close_code
                self.errors[f"closed by the server: {code}"] += 1
        finally:
            self.closed = True
            for m in self.msgs.values():
                m.done.set()

    def on_frame(self, frame: dict[str, Any], now: float) -> None:
        kind = frame.get("type")
        if kind == "ack":
            m = self.msgs.get(str(frame.get("client_id")))
            if m is None:
                self.errors["frame: ack for an unknown client id"] += 1
                return
            m.acks += 1
            if m.ack is None:
                m.ack = now
            if frame.get("duplicate"):
                m.marked_duplicate = True
            conversation_id = frame.get("conversation_id")
            if isinstance(conversation_id, int):
                self.conversations.add(conversation_id)
                if self.conversation_id is None:
                    self.conversation_id = conversation_id
        elif kind == "message":
            message = frame.get("message") or {}
            role = message.get("role")
            if role == "ai":
                m = self.by_text.get(str(message.get("content")))
                if m is None:
                    self.errors["frame: a reply to no message sent"] += 1
                    return
                m.replies += 1
                if m.reply is None:
                    m.reply = now
                    m.done.set()
            elif role == "customer":
                m = self.msgs.get(str(message.get("client_id")))
                if m is None:
                    self.errors["frame: a customer message not sent"] += 1
                else:
                    m.echoes += 1
            else:
                self.errors[f"frame: message with role {role!r}"] += 1
        elif kind == "error":
            self.errors[f"error frame: {frame.get('code')}"] += 1
            m = self.msgs.get(str(frame.get("client_id")))
            if m is not None:
                m.error = str(frame.get("code"))
                m.done.set()
        elif kind not in ("delta", "pong"):
            self.errors[f"frame: unexpected {kind!r}"] += 1

    async def converse(self, messages: int, timeout: float, think: float) -> None:
        for k in range(messages):
            if self.closed or self.ws is None:
                self.unsent += messages - k
                return
            client_id = f"{self.run_id}-{self.index}-{k}"
            m = Msg(client_id, f"load test {client_id}: is my order on its way?")
            self.msgs[client_id] = self.by_text[m.text] = m
            frame = json.dumps({"type": "message", "client_id": client_id, "text": m.text,
                                "conversation_id": self.conversation_id})  # fmt: skip
            m.sent = time.perf_counter()
            try:
                await self.ws.send(frame)
            except ConnectionClosed:
                del self.msgs[client_id], self.by_text[m.text]
                self.unsent += messages - k
                return
            try:
                await asyncio.wait_for(m.done.wait(), timeout)
            except TimeoutError:
                m.timed_out = True
            if think > 0 and k + 1 < messages:
                await asyncio.sleep(think * random.uniform(0.5, 1.5))

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            try:
                await self.ws.close()
            except (OSError, ConnectionClosed):
                pass
        if self.reader is not None:
            await self.reader


async def run_load(name: str, urls: list[str], warmup_url: str, messages: int, ramp: float, timeout: float,
                   think: float, pid: int) -> tuple[dict[str, Any], list[Session]]:  # fmt: skip
    """The figures, and the sessions (the warm-up one last, outside the figures)."""
    run_id = secrets.token_hex(4)
    warm = Session(-1, warmup_url, run_id)
    await warm.connect()
    if warm.ws is None:
        raise RuntimeError(f"{name}: the warm-up session could not connect: {dict(warm.errors)}")
    await warm.converse(1, timeout, 0)
    await warm.close()
    if any(m.lost for m in warm.msgs.values()) or warm.errors:
        raise RuntimeError(f"{name}: the warm-up message got no reply: {dict(warm.errors)}")

    sessions = [Session(i, url, run_id) for i, url in enumerate(urls)]
    progress(f"{name}: connecting {len(sessions)} sessions over {ramp:g} s ...")
    start = time.perf_counter()

    async def connect_later(s: Session, delay: float) -> None:
        await asyncio.sleep(delay)
        await s.connect()

    await asyncio.gather(*(connect_later(s, ramp * i / len(sessions)) for i, s in enumerate(sessions)))
    connect_s = time.perf_counter() - start
    live = [s for s in sessions if s.ws is not None]
    progress(f"{name}: {len(live)}/{len(sessions)} connected in {connect_s:.1f} s; "
             f"{len(live)} x {messages} messages ...")  # fmt: skip

    done = asyncio.Event()

    async def report() -> None:
        planned = len(live) * messages
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), 5)
            except TimeoutError:
                replied = sum(1 for s in live for m in s.msgs.values() if m.reply is not None)
                progress(f"{name}:   {replied}/{planned} replies, {time.perf_counter() - start:.0f} s")

    before = cpu_seconds(pid), own_cpu_seconds(), machine_busy_seconds()
    start = time.perf_counter()
    reporter = asyncio.create_task(report())
    await asyncio.gather(*(s.converse(messages, timeout, think) for s in live))
    wall = time.perf_counter() - start
    after = cpu_seconds(pid), own_cpu_seconds(), machine_busy_seconds()
    done.set()
    await reporter
    await asyncio.sleep(DRAIN_S)
    await asyncio.gather(*(s.close() for s in live))
    return summarise(name, sessions, messages, connect_s, wall, before, after), [*sessions, warm]


def summarise(name: str, sessions: list[Session], messages: int, connect_s: float, wall: float,
              before: tuple[float | None, float, float | None], after: tuple[float | None, float, float | None]
              ) -> dict[str, Any]:  # fmt: skip
    msgs = [m for s in sessions for m in s.msgs.values()]
    replied = [m for m in msgs if m.reply is not None and not m.timed_out]
    errors: Counter[str] = Counter()
    for s in sessions:
        errors.update(s.errors)
    split = sum(1 for s in sessions if len(s.conversations) > 1)
    if split:
        errors["session whose messages went to more than one conversation"] += split
    server_cpu = None if before[0] is None or after[0] is None else after[0] - before[0]
    client_cpu = after[1] - before[1]
    others = None
    if server_cpu is not None and before[2] is not None and after[2] is not None and wall >= 2:  # clock ticks
        others = round(max(0.0, after[2] - before[2] - server_cpu - client_cpu) / (wall * (os.cpu_count() or 1)), 3)
    n = max(1, len(replied))
    return {
        "target": name,
        "sessions": len(sessions),
        "connected": sum(1 for s in sessions if s.ws is not None),
        "connect_s": round(connect_s, 2),
        "connect_retries": sum(s.retries for s in sessions),
        "messages_planned": len(sessions) * messages,
        "messages_sent": len(msgs),
        "unsent": sum(s.unsent for s in sessions) + sum(messages for s in sessions if s.ws is None),
        "acked": sum(1 for m in msgs if m.ack is not None),
        "replied": len(replied),
        "lost": sum(1 for m in msgs if m.lost),
        "lost_no_ack": sum(1 for m in msgs if m.ack is None),
        "lost_no_reply": sum(1 for m in msgs if m.reply is None or m.timed_out),
        "late_replies": sum(1 for m in msgs if m.timed_out and m.reply is not None),
        "duplicated": sum(1 for m in msgs if m.duplicated),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors.most_common(20)),
        "wall_s": round(wall, 2),
        "messages_per_s": round(len(replied) / wall, 1) if wall > 0 else None,
        "relay_ms": spread([(m.reply - m.sent) * 1000 for m in replied if m.reply is not None]),
        "ack_ms": spread([(m.ack - m.sent) * 1000 for m in msgs if m.ack is not None and not m.timed_out]),
        "cpu": {
            "server_s": None if server_cpu is None else round(server_cpu, 2),
            "client_s": round(client_cpu, 2),
            "server_ms_per_message": None if server_cpu is None else round(server_cpu * 1000 / n, 2),
            "client_ms_per_message": round(client_cpu * 1000 / n, 2),
            "others_share": others,
        },
    }


# -- the appliance: set-up, sessions, and the database check --------------------------------------------------------


def set_up(data_dir: Path, password_file: Path) -> dict[str, float]:
    timings: dict[str, float] = {}
    for name, args in (("init", ["init"]), ("org add", ["org", "add", ORG, "--name", ORG_NAME]),
                       ("user add", ["user", "add", ADMIN, "--org", ORG, "--role", "admin", "--name", "Bench admin",
                                     "--password-file", str(password_file)])):  # fmt: skip
        progress(f"setup: {name} ...")
        start = time.perf_counter()
        cli(data_dir, *args)
        timings[f"{name.replace(' ', '_')}_s"] = round(time.perf_counter() - start, 2)
    return timings


def admin_client(base: str, password: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=60)
    got = http.post("/api/auth/login", json={"email": ADMIN, "password": password, "org": ORG})
    if got.status_code != 200:
        raise RuntimeError(f"sign-in failed ({got.status_code}): {got.text[:500]}")
    http.headers["X-CSRF-Token"] = str(got.json()["csrf_token"])
    return http


async def visitor_sessions(base: str, key: str, n: int) -> list[str]:
    """n visitor sessions for the widget key, a few requests in flight."""
    out: list[str] = [""] * n
    pending = iter(range(n))
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def worker() -> None:
            for i in pending:
                got = await http.post("/api/widget/session", json={"key": key})
                if got.status_code != 200:
                    raise RuntimeError(f"POST /api/widget/session: {got.status_code} {got.text[:300]}")
                out[i] = str(got.json()["session"])

        await asyncio.gather(*(worker() for _ in range(min(n, SESSION_REQUESTS_IN_FLIGHT))))
    return out


def verify(http: httpx.Client, sessions: Iterable[Session], sample: int, seed: int) -> dict[str, Any]:
    """What the database holds, through the staff API, against what the sessions sent and received."""
    sessions = [s for s in sessions if s.msgs]
    expected = {c for s in sessions for c in s.conversations}
    listed: set[int] = set()
    before: int | None = None
    pages = 0
    while True:
        params: dict[str, int] = {"limit": LIST_LIMIT} | ({"before": before} if before is not None else {})
        got = http.get("/api/conversations", params=params)
        if got.status_code != 200:
            raise RuntimeError(f"GET /api/conversations: {got.status_code} {got.text[:300]}")
        page = [int(c["id"]) for c in got.json()]
        pages += 1
        new = set(page) - listed
        listed |= new
        if len(page) < LIST_LIMIT or not new:
            break
        before = min(page)
    unlisted = expected - listed
    loaded = [s for s in sessions if s.index >= 0]  # the sample leaves out the warm-up session
    chosen = loaded if sample <= 0 else random.Random(seed).sample(loaded, min(sample, len(loaded)))
    troubled = [s for s in sessions if s.errors or any(m.lost or m.duplicated for m in s.msgs.values())]
    unlisted_sessions = [s for s in sessions if s.conversations & unlisted]
    to_check = {id(s): s for s in chosen + troubled + unlisted_sessions}.values()
    checked = Counter[str]()
    found_unlisted = 0
    for s in to_check:
        stored: list[dict[str, Any]] = []
        for conversation_id in s.conversations:
            got = http.get(f"/api/conversations/{conversation_id}")
            if got.status_code == 404:
                checked["conversations_not_found"] += 1
                continue
            if got.status_code != 200:
                raise RuntimeError(f"GET /api/conversations/{conversation_id}: {got.status_code} {got.text[:300]}")
            checked["conversations"] += 1
            found_unlisted += conversation_id in unlisted
            stored += got.json()["messages"]
        customer = Counter(str(m["client_id"]) for m in stored if m["role"] == "customer")
        replies = Counter(str(m["content"]) for m in stored if m["role"] == "ai")
        sent = s.msgs
        acked = {c for c, m in sent.items() if m.ack is not None}
        checked["sessions"] += 1
        checked["customer_messages_stored"] += sum(customer.values())
        checked["replies_stored"] += sum(replies.values())
        checked["acked_not_stored"] += len(acked - set(customer))
        checked["stored_not_acked"] += len((set(customer) & set(sent)) - acked)
        checked["stored_not_sent"] += len(set(customer) - set(sent))
        checked["duplicate_customer_rows"] += sum(n - 1 for n in customer.values() if n > 1)
        checked["duplicate_reply_rows"] += sum(n - 1 for n in replies.values() if n > 1)
        checked["stored_without_reply"] += sum(1 for c in customer if c in sent and replies[sent[c].text] == 0)
    return {
        "conversations_expected": len(expected),
        "conversations_listed": len(listed),
        "listing_pages": pages,
        "listed_not_expected": len(listed - expected),
        "expected_not_listed": len(unlisted),
        "expected_not_listed_found_by_id": found_unlisted,
        "sample": sample,
        **{k: checked[k] for k in ("sessions", "conversations", "conversations_not_found", "customer_messages_stored",
                                   "replies_stored", "acked_not_stored", "stored_not_acked", "stored_not_sent",
                                   "duplicate_customer_rows", "duplicate_reply_rows", "stored_without_reply")},
    }  # fmt: skip


def server_log_summary(log: Path) -> dict[str, Any]:
    """The server's warnings and errors, counted by event (its log is one JSON object a line)."""
    found: dict[str, Counter[str]] = {"warning": Counter(), "error": Counter(), "critical": Counter()}
    for line in log.read_text("utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in found:
            found[entry["level"]][str(entry.get("event"))[:120]] += 1
    errors = found["error"] + found["critical"]
    if errors:
        progress(f"server log errors: {dict(errors)}")
    return {"server_log_warnings": sum(found["warning"].values()), "server_log_errors": sum(errors.values()),
            "server_log_events": {**found["warning"], **errors}}  # fmt: skip


def run_appliance(args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    data_dir = work / "data"
    password = secrets.token_urlsafe(18)
    password_file = work / "admin-password"
    password_file.write_text(password, encoding="utf-8")  # mkdtemp made work 0700
    log = work / "server.log"
    setup = set_up(data_dir, password_file)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env() | {"APPLIANCE_CHAT_RESPONDER": "echo", "APPLIANCE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
                         "APPLIANCE_MAX_BOT_TURNS": str(MAX_BOT_TURNS)}  # fmt: skip
    progress(f"starting appliance serve on {base} (chat_responder=echo) ...")
    proc: subprocess.Popen[bytes] | None = None
    try:
        start = time.perf_counter()
        proc = spawn([APPLIANCE, "--data-dir", str(data_dir), "serve", "--host", "127.0.0.1", "--port", str(port)],
                     log, env)  # fmt: skip
        wait_until(proc, http_ready(f"{base}/readyz"), "appliance serve", log)
        setup["server_ready_s"] = round(time.perf_counter() - start, 2)
        http = admin_client(base, password)
        try:
            created = http.post("/api/widget/keys", json={"theme": {}})
            if created.status_code != 201:
                raise RuntimeError(f"POST /api/widget/keys: {created.status_code} {created.text[:300]}")
            key = str(created.json()["public_key"])
            progress(f"creating {args.sessions + 1} visitor sessions ...")
            start = time.perf_counter()
            tokens = asyncio.run(visitor_sessions(base, key, args.sessions + 1))
            setup["visitor_sessions_s"] = round(time.perf_counter() - start, 2)
            urls = [f"ws://127.0.0.1:{port}/ws/widget?session={t}" for t in tokens]
            result, sessions = asyncio.run(run_load("appliance", urls[1:], urls[0], args.messages_per_session,
                                                    args.concurrency_ramp, args.timeout, args.think_time, proc.pid))
            if proc.poll() is not None:
                raise RuntimeError(f"appliance serve exited with {proc.returncode} during the run:\n{log_tail(log)}")
            progress("checking the database through the staff API ...")
            checked = verify(http, sessions, args.verify_sample, args.seed)
        finally:
            http.close()
        return setup | server_log_summary(log), result, checked
    finally:
        stop(proc)


def run_bare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    port = free_port()
    log = work / "echo.log"
    progress(f"starting the bare echo server on 127.0.0.1:{port} ...")
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = spawn([sys.executable, str(Path(__file__).resolve()), "--echo-server", str(port)], log, clean_env())
        wait_until(proc, tcp_ready(port), "the echo server", log)
        urls = [f"ws://127.0.0.1:{port}/ws/widget?session=s{i}" for i in range(args.sessions + 1)]
        result, _ = asyncio.run(run_load("bare echo", urls[1:], urls[0], args.messages_per_session,
                                         args.concurrency_ramp, args.timeout, args.think_time, proc.pid))  # fmt: skip
        if proc.poll() is not None:
            raise RuntimeError(f"the echo server exited with {proc.returncode} during the run:\n{log_tail(log)}")
        return result
    finally:
        stop(proc)


# -- report ---------------------------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def print_table(report: dict[str, Any]) -> None:
    m, p, a, b, r, v = (report[k] for k in ("machine", "params", "appliance", "bare_echo", "ratio", "verify"))
    print(f"chat load, WebSocket on loopback: {p['sessions']} sessions x {p['messages_per_session']} messages, "
          f"connects over {p['concurrency_ramp']} s, think time {p['think_time']} s; {m['cpu_count']} CPUs shared "
          f"by client and servers, Python {m['python']}, open-files limit {m['open_files_limit']['now']}, "
          f"{report['elapsed_s']} s in all")  # fmt: skip

    s = report["setup"]
    steps = ", ".join(f"{k[:-2].replace('_', ' ')} {v} s" for k, v in s.items() if k.endswith("_s"))
    print(f"setup: {steps}; server log: {s['server_log_warnings']} warnings, {s['server_log_errors']} errors"
          + (f" {s['server_log_events']}" if s["server_log_events"] else ""))  # fmt: skip

    def cell(value: Any, fmt: str = "") -> str:
        return "-" if value is None else format(value, fmt)

    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("sessions connected", lambda t: f"{t['connected']}/{t['sessions']} ({t['connect_s']} s, "
                                         f"{t['connect_retries']} retries)"),
        ("messages sent", lambda t: f"{t['messages_sent']}/{t['messages_planned']}"),
        ("replies", lambda t: t["replied"]),
        ("messages/s", lambda t: cell(t["messages_per_s"], ".1f")),
        ("relay p50 ms", lambda t: cell(t["relay_ms"]["p50"], ".1f")),
        ("relay p99 ms", lambda t: cell(t["relay_ms"]["p99"], ".1f")),
        ("relay max ms", lambda t: cell(t["relay_ms"]["max"], ".1f")),
        ("ack p50 ms", lambda t: cell(t["ack_ms"]["p50"], ".1f")),
        ("ack p99 ms", lambda t: cell(t["ack_ms"]["p99"], ".1f")),
        ("lost (no ack / no reply)", lambda t: f"{t['lost']} ({t['lost_no_ack']} / {t['lost_no_reply']})"),
        ("duplicated", lambda t: t["duplicated"]),
        ("errors", lambda t: t["errors"]),
        ("wall s (timed phase)", lambda t: t["wall_s"]),
        ("CPU s: server", lambda t: cell(t["cpu"]["server_s"], ".1f")),
        ("CPU s: client", lambda t: cell(t["cpu"]["client_s"], ".1f")),
        ("CPU ms/message: server", lambda t: cell(t["cpu"]["server_ms_per_message"], ".2f")),
        ("CPU ms/message: client", lambda t: cell(t["cpu"]["client_ms_per_message"], ".2f")),
        ("others' CPU share", lambda t: cell(t["cpu"]["others_share"], ".0%")),
    ]  # fmt: skip
    print(f"{'':26}{'appliance':>32}{'bare echo':>32}")
    for label, get in rows:
        print(f"{label:26}{str(get(a)):>32}{str(get(b)):>32}")
    print(f"relay latency appliance / bare echo: p50 {cell(r['relay_p50'])}x, p99 {cell(r['relay_p99'])}x "
          f"(goal <= 3x); the bare echo relays {cell(r['messages_per_s'])}x the appliance's messages/s")  # fmt: skip
    for t in (a, b):
        if t["error_kinds"]:
            print(f"{t['target']} errors: {t['error_kinds']}")
    print(f"database (staff API): {v['conversations_listed']} conversations listed in {v['listing_pages']} pages, "
          f"{v['conversations_expected']} expected, {v['expected_not_listed']} expected but not listed "
          f"({v['expected_not_listed_found_by_id']} of those found by id), {v['listed_not_expected']} listed but not "
          f"expected")  # fmt: skip
    print(f"  checked {v['sessions']} sessions ({v['conversations']} conversations, "
          f"{v['conversations_not_found']} not found): {v['customer_messages_stored']} customer messages and "
          f"{v['replies_stored']} replies stored; acked but not stored {v['acked_not_stored']}, stored but not acked "
          f"{v['stored_not_acked']}, duplicate rows {v['duplicate_customer_rows']} + {v['duplicate_reply_rows']} "
          f"(replies), without a reply {v['stored_without_reply']}")  # fmt: skip
    print(f"result: lost {a['lost']}, duplicated {a['duplicated']}, errors {a['errors']} "
          f"-> {'OK' if report['zero_lost_or_duplicated'] else 'NOT OK'}")
    print("note: the client runs on the same CPUs as the server it measures (see its CPU time above); the relay "
          "latency includes the client's own event-loop delay, for both targets alike.")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=1000, help="concurrent WebSocket sessions (default 1000)")
    parser.add_argument("--messages-per-session", type=int, default=5, help="messages each session sends")
    parser.add_argument("--concurrency-ramp", type=float, default=5.0,
                        help="seconds over which the sessions connect, evenly spread (default 5)")
    parser.add_argument("--think-time", type=float, default=0.0,
                        help="seconds a session waits after a reply before its next message, +-50%% (default 0)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a message may wait for its reply")
    parser.add_argument("--verify-sample", type=int, default=100,
                        help="conversations checked message by message through the staff API (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="the verification sample and think-time jitter")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server is not None:
        try:
            asyncio.run(echo_server(args.echo_server))
        except KeyboardInterrupt:
            pass
        return
    if args.sessions < 1 or not 1 <= args.messages_per_session <= MAX_MESSAGES:
        parser.error(f"--sessions must be >= 1 and --messages-per-session 1..{MAX_MESSAGES}")
    if args.concurrency_ramp < 0 or args.think_time < 0 or args.timeout <= 0 or args.verify_sample < 0:
        parser.error("--concurrency-ramp, --think-time and --verify-sample must be >= 0, --timeout > 0")
    random.seed(args.seed)
    limits = raise_fd_limit()
    needed = args.sessions + 64  # per process: a socket per session, in the client and in the server (+ the rest)
    if limits["now"] < needed:
        progress(f"warning: the open-files limit is {limits['now']}; {args.sessions} sessions need about {needed} "
                 "(per process): some may fail to connect")

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="appliance-bench-chat-"))
    try:
        setup, appliance, checked = run_appliance(args, work)
        bare = run_bare(args, work)
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    db_clean = all(checked[k] == 0 for k in ("conversations_not_found", "acked_not_stored", "stored_not_sent",
                                             "duplicate_customer_rows", "duplicate_reply_rows", "stored_without_reply"))
    report: dict[str, Any] = {
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "websockets": websockets.__version__, "open_files_limit": limits},  # fmt: skip
        "params": {"sessions": args.sessions, "messages_per_session": args.messages_per_session,
                   "concurrency_ramp": args.concurrency_ramp, "think_time": args.think_time, "timeout": args.timeout,
                   "verify_sample": args.verify_sample, "seed": args.seed, "rate_limit_per_minute": RATE_LIMIT},
        "setup": setup,
        "appliance": appliance,
        "bare_echo": bare,
        "ratio": {"relay_p50": ratio(appliance["relay_ms"]["p50"], bare["relay_ms"]["p50"]),
                  "relay_p99": ratio(appliance["relay_ms"]["p99"], bare["relay_ms"]["p99"]),
                  "messages_per_s": ratio(bare["messages_per_s"], appliance["messages_per_s"])},
        "verify": checked,
        "zero_lost_or_duplicated": appliance["lost"] == 0 and appliance["duplicated"] == 0 and db_clean,
        "note": "client and servers share the CPUs; the client's CPU time is under cpu.client_s",
        "elapsed_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
