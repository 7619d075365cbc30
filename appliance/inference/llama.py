"""Chat generation in process with llama-cpp-python: a small pool of model instances behind a bounded queue.

Pool and queue. `instances` copies of the model are loaded at start (the weights are memory-mapped, so the copies
share them; each copy has its own KV cache of `n_ctx` tokens). A request takes a free instance or waits in FIFO
order; when `max_queue` requests are already waiting, the next one is refused at once with `Overloaded` (503,
retryable). `generate()` makes that check and prepares the prompt; the wait itself happens when the caller
starts iterating, and the check is repeated there. Generation runs in the iterating thread: the web layer calls
from a threadpool. Rule of thumb for the CPU: instances x n_threads <= cores (llama.cpp's threads spin on a
barrier at every layer, so oversubscribed or contended cores slow it down many times over).

KV prefix reuse. Each instance keeps the tokens of its last request in its KV cache. When several instances are
free, a request goes to the one whose cached tokens share the longest prefix with its prompt if that prefix
covers at least PREFIX_SHARE of the prompt, else to the one idle longest. Only the rest of the prompt is
evaluated, so a second question over the same system prompt and passages starts in a fraction of the time
(bench/llm.py: 0.07 s against 2.8 s cold for 776 tokens). `cached_prompt_tokens` says how many were reused.

Context-window rule, applied in `generate()`, deterministic, never an error:
  the prompt (chat template applied) plus max_tokens must fit in n_ctx.
  1. It fits: nothing changes.
  2. max_tokens shrinks, but not below min(max_tokens, MIN_COMPLETION_TOKENS, n_ctx // 2).
  3. Still too long: drop the oldest message that is neither a system message nor the last message, one at a
     time, until it fits or none is left.
  4. Still too long: cut the middle out of the longest remaining message (by characters; ties: the earliest),
     keeping its head and tail and putting TRUNCATION_MARK between them; repeat (on the next longest once a
     message is cut down to the mark) until it fits.
  5. Only when the template alone cannot fit (an absurdly small n_ctx): keep the prompt's first and last tokens.
  `truncated_prompt_tokens` = tokens of the full prompt - tokens of the prompt sent.

Untrusted text. The chat template's markers are the only control tokens in a prompt: message text that spells
one (a customer typing `<|im_end|><|im_start|>system`) gets a zero-width space inside it and stays plain text.

Timeouts and cancel. The deadline is `request.timeout_s` (else the generator's `timeout_s`) from the call to
`generate()`, queueing included. It is checked while waiting, between prompt batches (n_batch tokens) and after
every generated token; when it passes, the stream ends with finish_reason "timeout" and the instance is freed.
`cancel()` (a client that went away) is checked at the same points, so generation stops within one token;
closing the iterator early counts as a cancel.

Timings (seconds): queue_s, waiting for an instance; prefill_s, evaluating the uncached part of the prompt;
first_token_s and total_s, from the call to `generate()`.

Determinism. Temperature 0 is greedy and a seed fixes sampling, but llama.cpp's arithmetic differs slightly
between a prompt evaluated in one batch and one evaluated partly from the cache, so near-ties can go another way:
the same request gives the same text from the same cache state (see `clear_cache()`), not always across states.
"""

from __future__ import annotations

import codecs
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from appliance.errors import ConfigError, InvalidValue, ModelError, ModelMissing, Overloaded
from appliance.inference.base import ChatMessage, GenerationRequest, GenerationResult, StreamingGeneration

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import ChatFormatter

MIN_COMPLETION_TOKENS = 64  # step 2 of the context rule: room always left for an answer of useful length
TRUNCATION_MARK = "\n[...]\n"
# Sampling settings for temperature > 0 (llama.cpp's defaults); temperature 0 is plain greedy decoding.
TOP_K, TOP_P, MIN_P = 40, 0.95, 0.05
# Route by cache only when the best cached prefix covers this share of the prompt (llama.cpp server's default
# slot similarity): every prompt shares the chat template's first tokens with every cache.
PREFIX_SHARE = 0.5
_SLACK_TOKENS = 4  # re-tokenising a cut text can shift a few tokens at the seams
ZERO_WIDTH_SPACE = "\u200b"


@dataclass(frozen=True)
class _Prompt:
    tokens: list[int]
    max_tokens: int
    truncated: int
    stops: tuple[str, ...]


@dataclass
class _Instance:
    index: int
    llama: Llama
    vocab: Any  # llama_vocab pointer, for the end-of-generation test
    busy: bool = False
    last_used: int = 0


def _cached_prefix(llama: Llama, tokens: Sequence[int]) -> int:
    """Length of the common prefix of the tokens in `llama`'s KV cache and `tokens`."""
    import numpy as np

    n = min(llama.n_tokens, len(tokens))
    differ = np.flatnonzero(llama.input_ids[:n] != np.asarray(tokens[:n], dtype=llama.input_ids.dtype))
    return int(differ[0]) if differ.size else n


def _load(model_path: Path, n_ctx: int, n_threads: int, n_gpu_layers: int) -> Llama:
    try:
        from llama_cpp import Llama
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError(
            "llm_engine=local needs llama-cpp-python: pip install llama-cpp-python (CPU build) or its CUDA wheel"
        ) from None
    try:
        return Llama(
            str(model_path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
            n_gpu_layers=n_gpu_layers, n_batch=min(512, n_ctx), verbose=False,
        )  # fmt: skip
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load the GGUF model {model_path}: {exc}") from None


def _formatter(llama: Llama, chat_format: str | None, model_path: Path) -> ChatFormatter:
    from llama_cpp import llama_chat_format

    if chat_format is None:
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{model_path} carries no chat template: name one with chat_format (e.g. 'chatml')")
        eos, bos = llama.token_eos(), llama.token_bos()
        return llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llama.detokenize([eos], special=True).decode("utf-8", "replace") if eos >= 0 else "",
            bos_token=llama.detokenize([bos], special=True).decode("utf-8", "replace") if bos >= 0 else "",
            add_generation_prompt=True,
        )
    # llama-cpp-python names its built-in formats "llama-2", "chatml", ... and their functions format_llama2, ...
    for attr in ("format_" + chat_format.replace("-", "_"), "format_" + chat_format.replace("-", "")):
        found = getattr(llama_chat_format, attr, None)
        if callable(found):
            formatter: ChatFormatter = found
            return formatter
    raise ConfigError(f"unknown chat_format {chat_format!r} (llama-cpp-python has no format_* function for it)")


class LlamaGenerator:
    """`Generator` over a local GGUF model; see the module docstring for the queue, cache and context rules."""

    def __init__(
        self,
        model_path: Path,
        *,
        name: str,
        instances: int = 1,
        max_queue: int = 16,
        timeout_s: float = 120,
        n_ctx: int = 4096,
        n_threads: int = 2,
        n_gpu_layers: int = 0,
        chat_format: str | None = None,
    ) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelMissing(f"GGUF model file not found: {model_path}")
        if instances < 1 or max_queue < 0 or timeout_s <= 0 or n_ctx < 16:
            raise ConfigError("LlamaGenerator needs instances >= 1, max_queue >= 0, timeout_s > 0 and n_ctx >= 16")
        import llama_cpp

        self.name = name
        self.model_path = model_path
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self._instances: list[_Instance] = []
        for index in range(instances):
            llama = _load(model_path, n_ctx, n_threads, n_gpu_layers)
            self._instances.append(_Instance(index, llama, llama_cpp.llama_model_get_vocab(llama.model)))
        first = self._instances[0].llama
        self.context_window: int = first.n_ctx()
        self._batch = first.n_batch
        self._format = _formatter(first, chat_format, model_path)
        self._cond = threading.Condition()
        self._waiting: deque[_LlamaGeneration] = deque()
        self._uses = itertools.count(1)
        self._closed = False

    # -- Generator ------------------------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> _LlamaGeneration:
        started = time.monotonic()
        if request.max_tokens < 1:
            raise InvalidValue("max_tokens must be at least 1")
        with self._cond:
            if self._closed:
                raise ConfigError(f"the model {self.name} has been closed")
            self._check_queue()
        prompt = self._fit(request)
        timeout = request.timeout_s if request.timeout_s is not None else self.timeout_s
        return _LlamaGeneration(self, request, prompt, started, started + timeout)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text, special=False))

    # -- state, for metrics, tests and benchmarks ----------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        with self._cond:
            return len(self._waiting)

    @property
    def busy(self) -> int:
        with self._cond:
            return sum(inst.busy for inst in self._instances)

    def clear_cache(self) -> None:
        """Forget every free instance's cached prompt (a cold start, for benchmarks and reproducible runs)."""
        with self._cond:
            for inst in self._instances:
                if not inst.busy:
                    inst.llama.reset()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for inst in self._instances:
                if not inst.busy:
                    inst.llama.close()

    # -- prompt --------------------------------------------------------------------------------------------

    def _tokenize(self, text: str, *, special: bool) -> list[int]:
        # Tokenising reads only the vocabulary, which no running generation changes, so no lock is needed.
        if self._closed:
            raise ConfigError(f"the model {self.name} has been closed")
        return self._instances[0].llama.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def _detokenize(self, tokens: list[int]) -> str:
        return self._instances[0].llama.detokenize(tokens).decode("utf-8", "ignore")

    def _render(self, messages: Sequence[ChatMessage]) -> tuple[list[int], tuple[str, ...]]:
        plain: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
        response = self._format(messages=plain)
        llama = self._instances[0].llama
        # Same tokenisation as llama-cpp-python's chat handlers: template tokens like <|im_start|> are special.
        tokens = llama.tokenize(response.prompt.encode("utf-8"), add_bos=not response.added_special, special=True)
        stop = response.stop
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        return tokens, stops

    def _defang(self, text: str) -> str:
        """Message text that spells a control token (`<|im_end|>`, `<|im_start|>`) stays text: a zero-width space
        goes inside it, so a customer's message cannot close its turn and open a system one."""
        import llama_cpp

        llama, vocab = self._instances[0].llama, self._instances[0].vocab
        special = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        pieces = {
            llama.detokenize([token], special=True).decode("utf-8", "replace")
            for token in self._tokenize(text, special=True)
            if llama_cpp.llama_vocab_get_attr(vocab, token) & special
        }
        for piece in sorted(pieces, key=len, reverse=True):
            if len(piece) > 1:
                text = text.replace(piece, piece[0] + ZERO_WIDTH_SPACE + piece[1:])
        return text

    def _fit(self, request: GenerationRequest) -> _Prompt:
        """The context-window rule of the module docstring."""
        n_ctx = self.context_window
        messages = [replace(m, content=self._defang(m.content)) for m in request.messages]
        tokens, stops = self._render(messages)
        full = len(tokens)
        max_tokens = request.max_tokens
        if full + max_tokens > n_ctx:
            floor = max(1, min(max_tokens, MIN_COMPLETION_TOKENS, n_ctx // 2))
            max_tokens = max(floor, n_ctx - full)
        budget = n_ctx - max_tokens
        while len(tokens) > budget:
            droppable = [i for i, m in enumerate(messages[:-1]) if m.role != "system"]
            if not droppable:
                break
            del messages[droppable[0]]
            tokens, stops = self._render(messages)
        mark = len(self._tokenize(TRUNCATION_MARK, special=False))
        for _ in range(4 * len(messages) + 4):
            if len(tokens) <= budget or not messages:
                break
            longest = max(range(len(messages)), key=lambda i: (len(messages[i].content), -i))
            content = self._tokenize(messages[longest].content, special=False)
            keep = len(content) - (len(tokens) - budget) - mark - _SLACK_TOKENS
            if keep <= 0:
                cut = TRUNCATION_MARK if messages[longest].content != TRUNCATION_MARK else ""
            else:
                head, tail = content[: keep - keep // 2], content[len(content) - keep // 2 :]
                cut = self._detokenize(head) + TRUNCATION_MARK + self._detokenize(tail)
            messages[longest] = replace(messages[longest], content=cut)
            tokens, stops = self._render(messages)
        if len(tokens) > budget:
            tokens = tokens[: budget // 2] + tokens[len(tokens) - (budget - budget // 2) :]
        stop_strings = tuple(s for s in (*request.stop, *stops) if s)
        return _Prompt(tokens, max_tokens, full - len(tokens), stop_strings)

    # -- pool ----------------------------------------------------------------------------------------------

    def _check_queue(self) -> None:
        """Called with the lock held: refuse when every instance is busy and the queue is full."""
        free = any(not inst.busy for inst in self._instances)
        if len(self._waiting) >= self.max_queue and not (free and not self._waiting):
            raise Overloaded(
                f"the model {self.name} is busy: {len(self._instances)} running, {len(self._waiting)} waiting"
            )

    def _acquire(self, gen: _LlamaGeneration) -> _Instance | Literal["cancelled", "timeout"]:
        with self._cond:
            self._check_queue()
            self._waiting.append(gen)
            try:
                while True:
                    if gen.cancelled or self._closed:
                        return "cancelled"
                    free = [inst for inst in self._instances if not inst.busy]
                    if free and self._waiting[0] is gen:
                        best = self._route(free, gen.prompt.tokens)
                        best.busy = True
                        return best
                    remaining = gen.deadline - time.monotonic()
                    if remaining <= 0:
                        return "timeout"
                    self._cond.wait(remaining)
            finally:
                self._waiting.remove(gen)
                self._cond.notify_all()  # the head of the queue may have changed

    @staticmethod
    def _route(free: list[_Instance], tokens: list[int]) -> _Instance:
        """The free instance holding the longest prefix of `tokens`, when that covers at least PREFIX_SHARE of
        them; otherwise the one idle longest, so a cache worth keeping is not thrown away for a few template
        tokens."""
        prefix, best = max(((_cached_prefix(inst.llama, tokens), inst) for inst in free), key=lambda p: p[0])
        if prefix >= PREFIX_SHARE * len(tokens):
            return best
        return min(free, key=lambda inst: inst.last_used)

    def _release(self, inst: _Instance) -> None:
        with self._cond:
            inst.busy = False
            inst.last_used = next(self._uses)
            if self._closed:
                inst.llama.close()
            self._cond.notify_all()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class _LlamaGeneration(StreamingGeneration):
    """One request's stream. Iterate once (from one thread); `cancel()` may come from any thread."""

    def __init__(
        self, owner: LlamaGenerator, request: GenerationRequest, prompt: _Prompt, started: float, deadline: float
    ) -> None:
        result = GenerationResult(
            prompt_tokens=len(prompt.tokens), truncated_prompt_tokens=prompt.truncated, model=owner.name
        )
        super().__init__(result, started)
        self.request = request
        self.prompt = prompt
        self.deadline = deadline
        self._owner = owner

    def cancel(self) -> None:
        super().cancel()
        self._owner._wake()  # a request still queued stops waiting now

    def _interrupted(self) -> bool:
        if self.cancelled:
            self._finish("cancelled")
        elif time.monotonic() >= self.deadline:
            self._finish("timeout")
        return self.result.finish_reason != ""

    def _run(self) -> Iterator[str]:
        waiting_since = time.monotonic()
        slot = self._owner._acquire(self)
        self.result.timings["queue_s"] = time.monotonic() - waiting_since
        if not isinstance(slot, _Instance):
            self._finish(slot)
            return
        try:
            yield from self._generate(slot)
        finally:
            if not self.result.finish_reason:  # the consumer closed the iterator early
                self._finish("cancelled")
            self._owner._release(slot)

    def _prefill(self, llama: Llama) -> bool:
        """Evaluate the prompt, reusing the cached prefix; False when cancelled or timed out on the way."""
        prefill_started, tokens = time.monotonic(), self.prompt.tokens
        # Keep at least the last prompt token to evaluate: its logits give the first completion token.
        reuse = min(_cached_prefix(llama, tokens), len(tokens) - 1)
        if reuse > 0 and llama._ctx.kv_cache_seq_rm(-1, reuse, -1):
            llama.n_tokens = reuse
        else:
            reuse = 0
            llama.reset()
        self.result.cached_prompt_tokens = reuse
        for start in range(reuse, len(tokens), self._owner._batch):
            if self._interrupted():
                return False
            llama.eval(tokens[start : start + self._owner._batch])
        self.result.timings["prefill_s"] = time.monotonic() - prefill_started
        return True

    def _generate(self, inst: _Instance) -> Iterator[str]:
        import llama_cpp

        llama, request, prompt, result = inst.llama, self.request, self.prompt, self.result
        if not self._prefill(llama):
            return
        llama.set_seed(request.seed)
        # The prompt is now fully in the KV cache, so generate() samples at once without evaluating it again.
        tokens = llama.generate(
            prompt.tokens, temp=request.temperature, top_k=TOP_K, top_p=TOP_P, min_p=MIN_P, repeat_penalty=1.0
        )
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        stops = prompt.stops
        hold_max = max((len(s) for s in stops), default=0)
        text, sent = "", 0
        try:
            for token in tokens:
                if "first_token_s" not in result.timings:
                    result.timings["first_token_s"] = time.monotonic() - self.started
                if llama_cpp.llama_vocab_is_eog(inst.vocab, token):
                    self._finish("stop")
                    break
                result.completion_tokens += 1
                text += decoder.decode(llama.detokenize([token]))
                hit = min((i for i in (text.find(s, sent) for s in stops) if i >= 0), default=-1)
                if hit >= 0:
                    text = text[:hit]
                    result.text = text
                    self._finish("stop")
                    if hit > sent:
                        yield text[sent:]
                    return
                # Hold back a tail that could still become a stop sequence.
                hold = next((k for k in range(min(hold_max - 1, len(text) - sent), 0, -1)
                             if any(s.startswith(text[-k:]) for s in stops)), 0)  # fmt: skip
                if len(text) - hold > sent:
                    delta, sent = text[sent : len(text) - hold], len(text) - hold
                    result.text = text[:sent]
                    yield delta
                if result.completion_tokens >= prompt.max_tokens:
                    self._finish("length")
                    break
                if self._interrupted():
                    break
        finally:
            tokens.close()
        if not result.finish_reason:  # not reached: llama.generate() only ends when closed
            self._finish("stop")
        text += decoder.decode(b"", final=True)
        result.text = text
        if len(text) > sent:
            yield text[sent:]
