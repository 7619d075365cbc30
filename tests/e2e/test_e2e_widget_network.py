"""The widget in real Chromium when the network fails: a TCP proxy between the browser and the appliance cuts every
connection (and refuses new ones) or cuts the widget's socket right after a message went up; and the embed snippet
on an intranet page of another origin, under exactly the Content-Security-Policy the appliance says a host needs."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, Response, expect

from appliance.auth import users
from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context
from appliance.web.app import create_app
from tests.conftest import PASSWORD
from tests.conversations.live import serve
from tests.e2e.browser import chromium, demo_org

ANSWER_MS = 30_000
RECONNECT_MS = 60_000  # the widget's backoff reaches 15 s (±25 %) after a few failed tries
FIRST = "How do I reset my portal password?"
SECOND = "How do I move my appointment to next week?"


@dataclass(eq=False)
class Pipe:
    """One relayed connection. `frozen`: nothing more goes back to the browser."""

    client: socket.socket
    server: socket.socket
    frozen: bool = False

    def close(self) -> None:
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


@dataclass
class Frames:
    """The browser's WebSocket frames on one connection, read from the bytes it sends (masked, maybe deflated)."""

    buffer: bytes = b""
    upgraded: bool = False
    inflate: Any = field(default_factory=lambda: zlib.decompressobj(-zlib.MAX_WBITS))

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        if not self.upgraded:
            _, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return []
            self.upgraded, self.buffer = True, rest
        out = []
        while (frame := self._next()) is not None:
            if frame[0] & 0x0F == 1:  # text; the rest are control frames (close, ping, pong)
                out.append(self.inflate.decompress(frame[1] + b"\x00\x00\xff\xff") if frame[0] & 0x40 else frame[1])
        return out

    def _next(self) -> tuple[int, bytes] | None:
        b = self.buffer
        if len(b) < 2:
            return None
        size, at = b[1] & 0x7F, 2
        if size == 126:
            size, at = (struct.unpack(">H", b[2:4])[0] if len(b) >= 4 else -1), 4
        elif size == 127:
            size, at = (struct.unpack(">Q", b[2:10])[0] if len(b) >= 10 else -1), 10
        mask_at = at
        at += 4 if b[1] & 0x80 else 0
        if size < 0 or len(b) < at + size:
            return None
        mask = b[mask_at:at] if b[1] & 0x80 else b"\0\0\0\0"
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(b[at:at + size]))
        self.buffer = b[at + size:]
        return b[0], payload


class Proxy:
    """A TCP relay on loopback in front of the appliance. `cut()` drops every open connection and refuses new ones
    until `restore()`; `cut_after_upload()` arms a trap that cuts the widget's socket right after it forwarded the
    first `message` frame to the appliance, before anything comes back, and then refuses new connections."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.pipes: set[Pipe] = set()
        self.up = True
        self.armed = False
        self.tripped = threading.Event()
        self.messages: list[dict[str, Any]] = []
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            self.up = False
            pipes, self.pipes = self.pipes, set()
        for pipe in pipes:
            pipe.close()

    def restore(self) -> None:
        with self.lock:
            self.up = True

    def cut_after_upload(self) -> None:
        with self.lock:
            self.armed = True

    def close(self) -> None:
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                up = self.up
                self.refused += not up
            if not up:
                refuse(client)
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                refuse(client)
                continue
            pipe = Pipe(client, server)
            with self.lock:
                self.pipes.add(pipe)
            threading.Thread(target=self._upload, args=(pipe,), daemon=True).start()
            threading.Thread(target=self._download, args=(pipe,), daemon=True).start()

    def _upload(self, pipe: Pipe) -> None:
        frames: Frames | None = None
        first = True
        while data := receive(pipe.client):
            if first:
                frames, first = (Frames() if data.startswith(b"GET /ws/widget") else None), False
            if frames is not None and self._trap(frames.feed(data)):
                pipe.frozen = True
                send(pipe.server, data)
                self.tripped.set()
                self.cut()
                return
            if not send(pipe.server, data):
                break
        self._drop(pipe)

    def _trap(self, payloads: list[bytes]) -> bool:
        """Records the widget's `message` frames; true for the one that springs an armed trap."""
        sent = [frame for frame in map(json.loads, payloads) if frame.get("type") == "message"]
        with self.lock:
            self.messages += sent
            sprung, self.armed = self.armed and bool(sent), self.armed and not sent
        return sprung

    def _download(self, pipe: Pipe) -> None:
        while data := receive(pipe.server):
            if pipe.frozen or not send(pipe.client, data):
                break
        self._drop(pipe)

    def _drop(self, pipe: Pipe) -> None:
        with self.lock:
            self.pipes.discard(pipe)
        pipe.close()


def receive(s: socket.socket) -> bytes:
    try:
        return s.recv(65536)
    except OSError:
        return b""


def send(s: socket.socket, data: bytes) -> bool:
    try:
        s.sendall(data)
        return True
    except OSError:
        return False


def refuse(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset, as from a dead network
    s.close()


@pytest.fixture
def appliance(inst: Instance, onnx_embedder: OnnxEmbedder) -> Iterator[str]:
    demo_org(inst, onnx_embedder)
    with serve(create_app(inst)) as address:
        yield address


@pytest.fixture
def proxy(appliance: str) -> Iterator[Proxy]:
    relay = Proxy(appliance)
    try:
        yield relay
    finally:
        relay.close()


def watch(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def open_widget(page: Page, url: str) -> Response:
    response = page.goto(url)
    assert response is not None and response.ok
    page.locator("[data-part=launcher]").click()
    expect(page.locator("[data-part=input]")).to_be_focused()
    return response


def ask(page: Page, text: str) -> None:
    page.locator("[data-part=input]").fill(text)
    page.locator("[data-part=input]").press("Enter")


def bubbles(page: Page, role: str, text: str | None = None) -> Locator:
    return page.locator(f"[data-part=message][data-role={role}]", has_text=text)


def stored(inst: Instance, role: str) -> list[tuple[str, str | None]]:
    with inst.db.read() as conn:
        rows = conn.execute("SELECT content, client_id FROM messages WHERE role = ? ORDER BY id", (role,)).fetchall()
    return [(str(r[0]), r[1]) for r in rows]


def eventually(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def test_a_message_sent_while_the_network_is_down_goes_once_when_it_is_back(proxy: Proxy, inst: Instance) -> None:
    with chromium() as browser:
        page = browser.new_page()
        problems = watch(page)
        open_widget(page, f"http://{proxy.address}/demo")
        ask(page, FIRST)
        expect(bubbles(page, "ai")).to_have_count(1, timeout=ANSWER_MS)

        proxy.cut()
        status = page.locator("[data-part=status]")
        expect(status).to_have_text("Reconnecting\u2026", timeout=10_000)
        ask(page, SECOND)
        waiting = bubbles(page, "customer", SECOND)
        expect(waiting).to_have_attribute("data-pending", "true")
        eventually(lambda: proxy.refused > 0, "the widget tried to reconnect")
        expect(status).to_have_text("Reconnecting\u2026")

        proxy.restore()
        expect(waiting).to_have_attribute("data-pending", "false", timeout=RECONNECT_MS)
        expect(bubbles(page, "ai")).to_have_count(2, timeout=ANSWER_MS)
        expect(status).to_have_text("")
        expect(bubbles(page, "customer")).to_have_count(2)
        expect(bubbles(page, "customer", FIRST)).to_have_count(1)
        expect(bubbles(page, "customer", SECOND)).to_have_count(1)
    assert [text for text, _ in stored(inst, "customer")] == [FIRST, SECOND]
    assert len(stored(inst, "ai")) == 2
    assert [m["text"] for m in proxy.messages] == [FIRST, SECOND]  # the pending one went once, on reconnecting
    refused = f"WebSocket connection to 'ws://{proxy.address}/ws/widget' failed"
    assert [p for p in problems if not p.startswith(refused)] == [], problems


def test_a_message_whose_ack_was_lost_is_resent_stored_once_and_answered_once(proxy: Proxy, inst: Instance) -> None:
    with chromium() as browser:
        page = browser.new_page()
        open_widget(page, f"http://{proxy.address}/demo")
        proxy.cut_after_upload()
        ask(page, FIRST)
        assert proxy.tripped.wait(30), "the widget sent no message"
        sent = bubbles(page, "customer")
        expect(sent).to_have_attribute("data-pending", "true")
        expect(page.locator("[data-part=status]")).to_have_text("Reconnecting\u2026", timeout=10_000)
        eventually(lambda: len(stored(inst, "ai")) == 1, "the appliance stored the message and answered it")
        eventually(lambda: proxy.refused > 0, "the widget tried to reconnect")

        proxy.restore()
        expect(sent).to_have_attribute("data-pending", "false", timeout=RECONNECT_MS)
        expect(bubbles(page, "ai")).to_have_count(1, timeout=ANSWER_MS)
        expect(bubbles(page, "customer")).to_have_count(1)
        expect(page.locator("[data-part=status]")).to_have_text("")
    (text, client_id), = stored(inst, "customer")
    assert text == FIRST
    assert [m["client_id"] for m in proxy.messages] == [client_id, client_id]  # sent, then resent as itself
    assert len(stored(inst, "ai")) == 1


class Host:
    """An intranet web server on another origin (another port): each page with its own CSP header."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, str]] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body, csp = pages.get(self.path, ("", ""))
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                if csp:
                    self.send_header("Content-Security-Policy", csp)
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, path: str, snippet: str, csp: str) -> str:
        self.pages[path] = (INTRANET.format(snippet=snippet), csp)
        return self.origin + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


INTRANET = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Intranet</title><link rel="icon" href="data:,"></head>
<body><h1>Staff intranet</h1><p>Ask the support chat.</p>
{snippet}
</body></html>
"""
VIOLATIONS = """window.violations = [];
document.addEventListener("securitypolicyviolation", (e) => violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@pytest.fixture
def host() -> Iterator[Host]:
    server = Host()
    try:
        yield server
    finally:
        server.close()


def embed(inst: Instance, appliance: str) -> dict[str, str]:
    """What an admin copies from the appliance for the demo widget key: the snippet, its SRI hash and the CSP."""
    with inst.db.read() as conn:
        org_id = int(conn.execute("SELECT id FROM orgs WHERE slug = 'demo'").fetchone()[0])
    users.add_user(inst.db, inst.passwords, cli_context(org_id), org_id, "ada@demo.example", PASSWORD, "admin",
                   "Ada Admin")  # fmt: skip
    with httpx.Client(base_url=f"http://{appliance}", timeout=30) as admin:
        signed_in = admin.post("/api/auth/login", json={"email": "ada@demo.example", "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        (key,) = admin.get("/api/widget/keys").json()
        reply = admin.get("/api/widget/snippet", params={"key_id": key["id"]})
        assert reply.status_code == 200, reply.text
        return dict(reply.json())


def test_the_snippet_works_on_another_origin_under_the_csp_it_comes_with_and_not_when_tampered(
    appliance: str, host: Host, inst: Instance
) -> None:  # fmt: skip
    got = embed(inst, appliance)
    assert got["src"] == f"http://{appliance}/widget/v1/widget.js" and got["integrity"] in got["snippet"]
    page_url = host.page("/", got["snippet"], got["csp"])
    forged = "sha384-" + base64.b64encode(hashlib.sha384(b"another script").digest()).decode()
    forged_url = host.page("/forged", got["snippet"].replace(got["integrity"], forged), got["csp"])
    with chromium() as browser:
        page = browser.new_page()
        problems = watch(page)
        page.add_init_script(VIOLATIONS)
        assert open_widget(page, page_url).headers["content-security-policy"] == got["csp"]
        ask(page, FIRST)
        answer = bubbles(page, "ai")
        expect(answer).to_have_count(1, timeout=ANSWER_MS)
        source = answer.locator("[data-part=sources] a").first
        expect(source).to_have_text("Resetting a forgotten password")
        expect(source).to_have_attribute("href", re.compile(rf"^http://{re.escape(appliance)}/help/demo/articles/"))
        assert page.evaluate("window.violations") == []
        assert problems == []

        page = browser.new_page()
        with page.expect_console_message(lambda m: m.type == "error" and "integrity" in m.text, timeout=30_000):
            page.goto(forged_url)
        expect(page.locator("[data-part=launcher]")).to_have_count(0)
        assert page.evaluate("document.querySelector('[data-appliance-widget]')") is None
