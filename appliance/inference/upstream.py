"""Chat generation on an OpenAI-compatible server on the intranet (llama.cpp server, vLLM, llama-cpp-python's
server): the scale-out path when one box's CPU is not enough.

Each request is one streamed `POST {base_url}/v1/chat/completions` (`stream: true`, with
`stream_options.include_usage` so servers that support it send token counts in a last chunk); a base_url that
ends in /v1, as OpenAI clients write it, means the same server. The SSE `data:` lines are parsed as they
arrive; each content delta is yielded. Counts come from the server's `usage` when it sends one
(`prompt_tokens_details.cached_tokens` or llama.cpp's `timings.cache_n` give cached_prompt_tokens); otherwise
completion_tokens is the number of content deltas (one per token on the servers named above) and
prompt_tokens is the approximation below.

The request starts when iteration starts. Connection failures, HTTP errors and malformed streams raise
`UpstreamError` (502, retryable) with the URL and the server's message. The deadline (`request.timeout_s`, else
`timeout_s`) covers the whole request: passing it ends the stream with finish_reason "timeout". `cancel()`
closes the response, so the server sees the disconnect and stops generating.

The server applies its own context rule; nothing is truncated here (truncated_prompt_tokens stays 0) and
`context_window` is the figure configured for callers that budget their prompts.

`count_tokens` asks the server: `POST /tokenize` (llama.cpp server, vLLM), then `POST /extras/tokenize/count`
(llama-cpp-python). When neither exists (a 4xx answer), it falls back for good to an approximation of one token
per 4 characters (`len(text) // 4`, at least 1 for non-empty text), about right for English with BPE vocabularies.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx

from appliance.errors import InvalidValue, UpstreamError
from appliance.inference.base import FinishReason, GenerationRequest, GenerationResult, StreamingGeneration

CHARS_PER_TOKEN = 4  # the fallback approximation of count_tokens
_CONNECT_TIMEOUT_S = 10.0
_FINISH: dict[str, Literal["stop", "length"]] = {"stop": "stop", "length": "length"}


def approximate_tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN) if text else 0


def _server_message(response: httpx.Response) -> str:
    """The error text a server put in its body, JSON or not, shortened."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:300].strip()
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:300]
    return str(body)[:300]


class OpenAIUpstreamGenerator:
    """`Generator` over an OpenAI-compatible chat completions endpoint; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120,
        context_window: int = 4096,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = model
        self.model = model
        self.context_window = context_window
        self.timeout_s = timeout_s
        # Both "http://host:8000" and the OpenAI-client style "http://host:8000/v1" name the same server.
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=min(_CONNECT_TIMEOUT_S, timeout_s)),
        )  # fmt: skip
        self._tokenize_paths: list[str] | None = None  # None: not probed yet; []: the server has none

    def generate(self, request: GenerationRequest) -> UpstreamGeneration:
        if request.max_tokens < 1:
            raise InvalidValue("max_tokens must be at least 1")
        return UpstreamGeneration(self, request)

    def count_tokens(self, text: str) -> int:
        paths = ["/tokenize", "/extras/tokenize/count"] if self._tokenize_paths is None else self._tokenize_paths
        for path in paths:
            body = {"content": text, "prompt": text, "input": text, "model": self.model, "add_special": False,
                    "add_special_tokens": False}  # llama.cpp server, vLLM and llama-cpp-python field names
            try:
                response = self._client.post(path, json=body)
            except httpx.HTTPError as exc:
                raise UpstreamError(f"cannot reach the inference server at {self.base_url}: {exc}") from None
            if 400 <= response.status_code < 500:
                continue  # this server has no such endpoint (404/405) or reads another shape (422)
            if response.status_code >= 500:
                raise UpstreamError(
                    f"the inference server at {self.base_url} answered {response.status_code} on {path}: "
                    f"{_server_message(response)}"
                )
            try:
                data = response.json()
                count = int(data["count"]) if "count" in data else len(data["tokens"])
            except (ValueError, TypeError, KeyError):
                continue  # a 200 that is not a tokenizer's answer
            self._tokenize_paths = [path]
            return count
        self._tokenize_paths = []
        return approximate_tokens(text)

    def close(self) -> None:
        self._client.close()


class UpstreamGeneration(StreamingGeneration):
    """One streamed request. Iterate once (from one thread); `cancel()` may come from any thread."""

    def __init__(self, owner: OpenAIUpstreamGenerator, request: GenerationRequest) -> None:
        super().__init__(GenerationResult(model=owner.model))
        self._owner = owner
        self._request = request
        timeout = request.timeout_s if request.timeout_s is not None else owner.timeout_s
        self._deadline = self.started + timeout
        self._lock = threading.Lock()
        self._response: httpx.Response | None = None

    def cancel(self) -> None:
        super().cancel()
        with self._lock:
            if self._response is not None:
                self._response.close()

    def _finish(self, reason: FinishReason) -> None:
        # The first reason stands: a cancel that closed the response also ends the read loop with an error.
        if not self.result.finish_reason:
            self.result.finish_reason = reason
        self.result.timings["total_s"] = time.monotonic() - self.started

    def _body(self) -> dict[str, Any]:
        request = self._request
        body: dict[str, Any] = {
            "model": self._owner.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    def _run(self) -> Iterator[str]:
        owner, result = self._owner, self.result
        url = f"{owner.base_url}/v1/chat/completions"
        remaining = self._deadline - time.monotonic()
        if self._cancel.is_set() or remaining <= 0:
            self._finish("cancelled" if self._cancel.is_set() else "timeout")
            return
        timeout = httpx.Timeout(remaining, connect=min(_CONNECT_TIMEOUT_S, remaining))
        deltas = 0
        try:
            with owner._client.stream("POST", "/v1/chat/completions", json=self._body(), timeout=timeout) as response:
                with self._lock:
                    self._response = response
                result.timings["queue_s"] = time.monotonic() - self.started  # until the server's headers
                if response.status_code >= 400:
                    response.read()
                    raise UpstreamError(
                        f"the inference server at {url} answered {response.status_code}: {_server_message(response)}"
                    )
                for line in response.iter_lines():
                    if self._cancel.is_set():
                        break
                    if not line.startswith("data:"):
                        continue  # SSE comments (": ping"), event names, blank separators
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    delta = self._read_chunk(payload, url)
                    if delta:
                        deltas += 1
                        result.timings.setdefault("first_token_s", time.monotonic() - self.started)
                        result.text += delta
                        yield delta
                    if time.monotonic() >= self._deadline:
                        self._finish("timeout")
                        break
        except GeneratorExit:
            self._cancel.set()  # the consumer closed the iterator early: same as a cancel
            raise
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise UpstreamError(f"cannot reach the inference server at {url}: connection timed out") from None
            self._finish("timeout")
        except (httpx.HTTPError, httpx.StreamError) as exc:
            if not self._cancel.is_set():
                reason = str(exc) or type(exc).__name__
                raise UpstreamError(f"cannot reach the inference server at {url}: {reason}") from None
        finally:
            with self._lock:
                self._response = None
            # A reason the server or the deadline already set is kept; a stream ended without one stopped.
            self._finish("cancelled" if self._cancel.is_set() else "stop")
            if not result.completion_tokens:
                result.completion_tokens = deltas
            if not result.prompt_tokens:
                result.prompt_tokens = sum(approximate_tokens(m.content) for m in self._request.messages)

    def _read_chunk(self, payload: str, url: str) -> str:
        try:
            chunk = json.loads(payload)
        except ValueError:
            chunk = None
        if not isinstance(chunk, dict):
            raise UpstreamError(f"the inference server at {url} sent a malformed stream line: {payload[:200]}")
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise UpstreamError(f"the inference server at {url} failed mid-stream: {message}")
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self.result.model = chunk["model"]
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.result.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.result.completion_tokens = int(usage.get("completion_tokens") or 0)
            details = usage.get("prompt_tokens_details")
            if isinstance(details, dict) and details.get("cached_tokens") is not None:
                self.result.cached_prompt_tokens = int(details["cached_tokens"])
        timings = chunk.get("timings")  # llama.cpp server: cache_n = prompt tokens reused from the KV cache
        if isinstance(timings, dict) and isinstance(timings.get("cache_n"), int):
            self.result.cached_prompt_tokens = timings["cache_n"]
        delta = ""
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                delta += content
            reason = choice.get("finish_reason")
            if reason:
                self.result.finish_reason = _FINISH.get(reason, "stop")
        return delta
