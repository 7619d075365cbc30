"""A real server for real WebSocket sessions: the app under uvicorn on an ephemeral loopback port, in a thread,
and small helpers to read frames."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from websockets.sync.client import ClientConnection, connect


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="websockets-sansio", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def ws(address: str, path: str, headers: dict[str, str] | None = None) -> ClientConnection:
    return connect(f"ws://{address}{path}", additional_headers=headers or {}, open_timeout=10)


def frames_until(conn: ClientConnection, done: Callable[[dict[str, Any]], bool], timeout: float = 20) -> list[dict[str, Any]]:
    """Frames received up to and including the first one `done` accepts."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no matching frame within {timeout} s; got {got}")
        frame = json.loads(conn.recv(timeout=left))
        got.append(frame)
        if done(frame):
            return got


def send(conn: ClientConnection, frame: dict[str, Any]) -> None:
    conn.send(json.dumps(frame))


def widget(address: str, session: str) -> ClientConnection:
    """A widget's socket, past its hello (the session goes in the first frame, never in the URL)."""
    conn = ws(address, "/ws/widget")
    send(conn, {"type": "hello", "session": session})
    ready = json.loads(conn.recv(timeout=10))
    assert ready["type"] == "ready", ready
    return conn
