"""End-to-end answer latency: POST /api/chat/message against a running `appliance serve`, at several concurrencies.

    .venv/bin/python bench/answer.py [--json] [--levels 1,10,100] [--requests N] [--cache-hits 50] [--data-dir DIR]

Setup, as an operator would do it, through the CLI: `appliance init`, `org add bench`, `user add` (role agent),
`models install` of the default embedder (the ONNX export of all-MiniLM-L6-v2; the default settings use
embedder_engine=onnx and extractive answers, so no chat model is needed), and `kb import` of the demo help centre
(appliance/demo_kb/articles), which imports and indexes it. All of it in a throwaway data dir, removed at the end;
with --data-dir the installation is made (or reused) there and kept. Then `appliance serve` runs as a subprocess on
a free loopback port, plain HTTP, with the inherited APPLIANCE_* variables removed and one set: the rate limit is
raised (100 requests per organisation per minute by default, which a load test passes in seconds); the limiter still
runs on every request. The server's log goes to a file, shown when it fails.

What is measured: HTTP end to end on loopback, from the client sending the request to the whole JSON reply read,
with session-cookie auth and the CSRF check, the answer engine (retrieval, confidence, extractive answer) and the
database writes of the conversation, both messages, the audit events and, for a refusal, the escalation and the
knowledge gap. Client and server share the machine's cores, as they would on a small box; the CPU time per
request of the server (Linux) and of this client is shown beside the latencies. Per concurrency level c, c clients
keep one request each in flight (asyncio + httpx; one signed-in session; each client its own keep-alive connection,
opened before the clock starts) until --requests (default max(50, 3 x c)) are done. The share of the machine's CPU
that other processes used meanwhile is shown too: figures taken beside other work are not comparable.

Every request is a question the answer cache has not seen: the 55 demo questions (demo_kb/questions.jsonl), padded
with words that are stop words to the lexical leg ("Please, ", "So, ", " Please." ...), so that the search terms stay
the same while the cache key (the normalised text) differs; the pool is shuffled with --seed so each level draws the
same mix. The dense leg does see the padding, so the answered share can differ from the unpadded questions' by a
few points. A few warm-up questions go first (the first loads the embedder; its latency is shown on its own line).
Cache hits: fresh questions are asked until one is answered (at most 20), then that one --cache-hits times in a row,
sequentially; each of those replies must say cached.

Any reply other than 200 (or no reply) counts as an error, is reported by kind, and is left out of the latencies.
This prints figures only; it never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from appliance.answering.engine import normalise
from appliance.config import Settings
from appliance.paths import DataPaths
from appliance.retrieval.lexical import query_terms
from serving import APPLIANCE, clean_env, cli, cpu_seconds, free_port, log_tail, machine_busy_seconds, own_cpu_seconds, percentile, progress, stop  # noqa: E402  (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
DEMO_KB = ROOT / "appliance" / "demo_kb" / "articles"
DEMO_QUESTIONS = ROOT / "appliance" / "demo_kb" / "questions.jsonl"
ORG, ORG_NAME = "bench", "Answer bench clinic"
AGENT = "agent@answer-bench.example"
EMBEDDER = str(Settings.model_fields["embedder_model"].default)
RATE_LIMIT = 10_000_000  # per organisation per minute: far above what two cores can answer, so nothing gets 429
WARMUP = 3
CACHE_TRIES = 20  # fresh questions tried for an answered one to repeat; about a quarter of them are answered
READY_TIMEOUT_S = 90.0
# Padding made of lexical stop words only (checked in variants()), so the search terms do not change.
PREFIXES = ("", "Please, ", "So, ", "Now, ", "Also, ", "Well, ", "So now, ", "Also, please, ", "Now then, ",
            "Well, so, ", "Please, now, ", "So then, ")  # fmt: skip
SUFFIXES = ("", " Please.", " Now, please.", " Please, anyway.")


def variants(seed: int) -> list[str]:
    """Every padded form of every demo question, each with its own normalised text, shuffled."""
    with DEMO_QUESTIONS.open(encoding="utf-8") as fh:
        questions = [json.loads(line)["question"] for line in fh if line.strip()]
    pool: dict[str, str] = {}
    for (prefix, suffix), question in itertools.product(itertools.product(PREFIXES, SUFFIXES), questions):
        text = f"{prefix}{question}{suffix}"
        if query_terms(text) != query_terms(question):
            raise RuntimeError(f"padding {prefix!r}/{suffix!r} changes the search terms of {question!r}")
        pool.setdefault(normalise(text), text)
    out = list(pool.values())
    random.Random(seed).shuffle(out)
    return out


# -- the installation, through the CLI --------------------------------------------------------------------------


def set_up(data_dir: Path, password_file: Path) -> dict[str, Any]:
    """The bench organisation, its agent and the demo KB indexed with the default embedder; each step timed.
    Steps already done in a reused data dir are skipped or are no-ops (models install, kb import)."""
    timings: dict[str, float] = {}

    def step(name: str, *args: str) -> str:
        progress(f"setup: {name} ...")
        start = time.perf_counter()
        out = cli(data_dir, *args)
        timings[f"{name.replace(' ', '_')}_s"] = round(time.perf_counter() - start, 2)
        return out

    if not DataPaths(data_dir).database.exists():
        step("init", "init")
    if ORG not in [line.split("\t")[1] for line in cli(data_dir, "org", "list").splitlines() if "\t" in line]:
        step("org add", "org", "add", ORG, "--name", ORG_NAME)
    if AGENT in cli(data_dir, "user", "list", "--org", ORG).split():
        step("user set-password", "user", "set-password", AGENT, "--org", ORG, "--password-file", str(password_file))
    else:
        step("user add", "user", "add", AGENT, "--org", ORG, "--role", "agent", "--name", "Bench agent",
             "--password-file", str(password_file))  # fmt: skip
    step("models install", "models", "install", EMBEDDER)
    out = step("kb import", "kb", "import", str(DEMO_KB), "--org", ORG)
    if "lexical only" in out:  # the bench is for the real default models; a lexical-only figure would mislead
        raise RuntimeError(f"kb import could not use the embedder: {out.strip()}")
    found = re.search(r"created (\d+), updated (\d+), unchanged (\d+), failed (\d+)", out)
    indexed = re.search(r"indexed (\d+) articles: (\d+) passages", out)
    return {
        **timings,
        "articles": sum(int(n) for n in found.groups()[:3]) if found else None,
        "passages_indexed": int(indexed.group(2)) if indexed else 0,
    }


# -- the server -----------------------------------------------------------------------------------------------


def start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = clean_env() | {"APPLIANCE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT)}
    with log.open("wb") as out:  # the child keeps its own descriptor; a pipe nobody reads would stall the server
        return subprocess.Popen(
            [APPLIANCE, "--data-dir", str(data_dir), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip


def wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"appliance serve exited with {proc.returncode}:\n{log_tail(log)}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"appliance serve was not ready after {READY_TIMEOUT_S:.0f} s:\n{log_tail(log)}")


# -- the load ---------------------------------------------------------------------------------------------------


def sign_in(base: str, password: str) -> tuple[httpx.Cookies, str]:
    response = httpx.post(f"{base}/api/auth/login", json={"email": AGENT, "password": password, "org": ORG})
    if response.status_code != 200:
        raise RuntimeError(f"sign-in failed ({response.status_code}): {response.text[:500]}")
    return response.cookies, str(response.json()["csrf_token"])


def client(base: str, auth: tuple[httpx.Cookies, str], connections: int, timeout: float) -> httpx.AsyncClient:
    cookies, csrf = auth
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base, cookies=cookies, headers={"X-CSRF-Token": csrf}, limits=limits,
                             timeout=timeout)  # fmt: skip


async def ask(http: httpx.AsyncClient, question: str) -> tuple[float, str, dict[str, Any] | None]:
    """(ms, "200" or the error's kind, the answer JSON when 200)."""
    start = time.perf_counter()
    try:
        response = await http.post("/api/chat/message", json={"message": question, "conversation_id": None})
        ms = (time.perf_counter() - start) * 1000.0
    except httpx.HTTPError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # Ctrl-C: httpx can surface the cancellation as a ReadError
            raise asyncio.CancelledError from exc
        return (time.perf_counter() - start) * 1000.0, type(exc).__name__, None
    if response.status_code != 200:
        return ms, str(response.status_code), None
    answer = response.json().get("answer")
    return ms, "200", answer if isinstance(answer, dict) else None


async def run_level(
    base: str, auth: tuple[httpx.Cookies, str], concurrency: int, questions: list[str], timeout: float, pid: int
) -> dict[str, Any]:
    results: list[tuple[float, str, dict[str, Any] | None]] = []
    pending: Iterator[str] = iter(questions)
    async with contextlib.AsyncExitStack() as stack:
        # Each client its own connection, opened before the clock starts (set-up is not the answer's cost). One
        # pool shared by all would leave some connections idle for seconds under load, and a POST sent on one just
        # as the server's keep-alive timeout (5 s) closes it fails with a ReadError that no server fault caused.
        clients = [await stack.enter_async_context(client(base, auth, 1, timeout)) for _ in range(concurrency)]
        await asyncio.gather(*(http.get("/healthz") for http in clients))

        async def worker(http: httpx.AsyncClient) -> None:
            for question in pending:  # shared iterator: each client takes the next question when it is free
                results.append(await ask(http, question))

        before = cpu_seconds(pid), own_cpu_seconds(), machine_busy_seconds()
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for http in clients))
        wall = time.perf_counter() - start
        after = cpu_seconds(pid), own_cpu_seconds(), machine_busy_seconds()
    ok = [(ms, answer) for ms, kind, answer in results if kind == "200"]
    latencies = [ms for ms, _ in ok]
    outcomes = Counter(str(answer.get("outcome")) if answer else "no answer" for _, answer in ok)
    server_cpu = None if before[0] is None or after[0] is None else after[0] - before[0]
    client_cpu = after[1] - before[1]
    others = None
    if server_cpu is not None and before[2] is not None and after[2] is not None:
        others = max(0.0, after[2] - before[2] - server_cpu - client_cpu)
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "ok": len(ok),
        "errors": len(results) - len(ok),
        "error_kinds": dict(Counter(kind for _, kind, _ in results if kind != "200")),
        "p50_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "wall_s": round(wall, 2),
        "throughput_per_s": round(len(ok) / wall, 2),
        "answered_share": round(outcomes["answered"] / len(ok), 3) if ok else None,
        "refused_share": round(outcomes["refused"] / len(ok), 3) if ok else None,
        "blocked_share": round(outcomes["blocked"] / len(ok), 3) if ok else None,  # taken for a prompt attack
        "outcomes": dict(outcomes),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / len(results), 1) if server_cpu is not None else None,
        "client_cpu_ms_per_request": round(client_cpu * 1000 / len(results), 1),
        # CPU the rest of the machine used meanwhile, as a share of all its cores' time: other work skews the figures
        "others_cpu_share": round(others / (wall * (os.cpu_count() or 1)), 3) if others is not None else None,
    }


async def run_cache_hits(base: str, auth: tuple[httpx.Cookies, str], fresh: Iterator[str], n: int, timeout: float
                         ) -> dict[str, Any]:  # fmt: skip
    """Fresh questions until one is answered (a refusal is cached alike, but an answer carries its sources, the
    usual hit), then that question n times in a row."""
    async with client(base, auth, 1, timeout) as http:
        for _ in range(CACHE_TRIES):
            question = next(fresh)
            first_ms, first_kind, first = await ask(http, question)
            if first is not None and first.get("outcome") == "answered":
                break
        results = [await ask(http, question) for _ in range(n)]
    latencies = [ms for ms, kind, _ in results if kind == "200"]
    cached = sum(1 for _, kind, answer in results if kind == "200" and answer is not None and answer.get("cached"))
    errors = [kind for _, kind, _ in results if kind != "200"] + ([first_kind] if first_kind != "200" else [])
    return {
        "requests": n,
        "question": question,
        "outcome": first.get("outcome") if first else None,
        "first_cached": bool(first and first.get("cached")),
        "first_ms": round(first_ms, 1),
        "p50_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "cached": cached,
        "all_cached": cached == n,
        "errors": len(errors),
        "error_kinds": dict(Counter(errors)),
    }


async def measure(base: str, auth: tuple[httpx.Cookies, str], args: argparse.Namespace, pool: list[str], pid: int
                  ) -> dict[str, Any]:  # fmt: skip
    taken = iter(pool)
    out: dict[str, Any] = {}
    async with client(base, auth, 1, args.timeout) as http:
        warm = []
        for _ in range(WARMUP):
            start = time.perf_counter()
            response = await http.post("/api/chat/message", json={"message": next(taken), "conversation_id": None})
            warm.append((time.perf_counter() - start) * 1000.0)
            if response.status_code != 200:
                raise RuntimeError(f"a warm-up question got {response.status_code}: {response.text[:500]}")
    out["first_answer_ms"] = round(warm[0], 1)
    out["levels"] = []
    for concurrency in args.levels:
        n = args.requests or max(50, 3 * concurrency)
        progress(f"level {concurrency}: {n} requests, {concurrency} in flight ...")
        level = await run_level(base, auth, concurrency, list(itertools.islice(taken, n)), args.timeout, pid)
        progress(f"  p50 {level['p50_ms']} ms, p95 {level['p95_ms']} ms, {level['throughput_per_s']} answers/s, "
                 f"{level['errors']} errors")  # fmt: skip
        out["levels"].append(level)
    progress(f"cache hits: fresh questions until one is answered, then it {args.cache_hits} times ...")
    out["cache_hits"] = await run_cache_hits(base, auth, taken, args.cache_hits, args.timeout)
    return out


# -- report -----------------------------------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    s, m = report["setup"], report["machine"]
    print(f"answer latency, HTTP end to end on loopback: {m['cpu_count']} CPUs shared by client and server, "
          f"Python {m['python']}, {report['elapsed_s']} s in all")  # fmt: skip
    steps = ", ".join(f"{k[:-2].replace('_', ' ')} {v} s" for k, v in s.items() if k.endswith("_s"))
    print(f"setup: {steps} ({s['articles']} articles, {s['passages_indexed']} passages indexed)")
    print(f"first answer (loads the embedder): {report['first_answer_ms']} ms")
    print(f"{'clients':>8}{'requests':>10}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'answers/s':>11}"
          f"{'answered':>10}{'refused':>9}{'blocked':>9}{'CPU ms/req: server':>20}{'client':>8}"
          f"{'others busy':>13}")  # fmt: skip

    def cell(value: Any, width: int, fmt: str = "") -> str:
        return f"{'-' if value is None else format(value, fmt):>{width}}"

    for lv in report["levels"]:
        print(f"{lv['concurrency']:>8}{lv['requests']:>10}{lv['errors']:>8}{cell(lv['p50_ms'], 9, '.1f')}"
              f"{cell(lv['p95_ms'], 9, '.1f')}{cell(lv['max_ms'], 9, '.1f')}{lv['throughput_per_s']:>11.2f}"
              f"{cell(lv['answered_share'], 10, '.0%')}{cell(lv['refused_share'], 9, '.0%')}"
              f"{cell(lv['blocked_share'], 9, '.0%')}"
              f"{cell(lv['server_cpu_ms_per_request'], 20, '.1f')}{lv['client_cpu_ms_per_request']:>8.1f}"
              f"{cell(lv['others_cpu_share'], 13, '.0%')}")  # fmt: skip
        if lv["error_kinds"]:
            print(f"{'':8}errors: {lv['error_kinds']}")
    c = report["cache_hits"]
    print(f"cache hits ({c['outcome']} question, asked once in {c['first_ms']} ms, then {c['requests']} times): "
          f"p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms, max {c['max_ms']} ms, cached {c['cached']}/{c['requests']}"
          + (f", errors {c['error_kinds']}" if c["errors"] else ""))  # fmt: skip


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("levels must be positive integers, e.g. 1,10,100")
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--levels", type=parse_levels, default=[1, 10, 100], help="concurrent clients, e.g. 1,10,100")
    parser.add_argument("--requests", type=int, default=0, help="requests per level (default: max(50, 3 x clients))")
    parser.add_argument("--cache-hits", type=int, default=50, help="repeats of one answered-once question")
    parser.add_argument("--data-dir", type=Path, help="make (or reuse) the installation here and keep it "
                        "(default: a throwaway dir)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one request may take")
    parser.add_argument("--seed", type=int, default=0, help="order of the question pool")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    if args.requests < 0 or args.cache_hits < 1 or args.timeout <= 0:
        parser.error("--requests must be >= 0, --cache-hits >= 1 and --timeout > 0")
    pool = variants(args.seed)
    needed = WARMUP + sum(args.requests or max(50, 3 * c) for c in args.levels) + CACHE_TRIES
    if needed > len(pool):
        parser.error(f"{needed} distinct questions needed, the padded demo questions give {len(pool)}")

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="appliance-bench-answer-"))
    data_dir = args.data_dir.resolve() if args.data_dir else work / "data"
    password = secrets.token_urlsafe(18)
    password_file = work / "agent-password"
    password_file.write_text(password, encoding="utf-8")  # mkdtemp made work 0700
    log = work / "server.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        setup = set_up(data_dir, password_file)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        progress(f"starting appliance serve on {base} ...")
        start = time.perf_counter()
        proc = start_server(data_dir, port, log)
        wait_ready(proc, base, log)
        ready_s = round(time.perf_counter() - start, 2)
        figures = asyncio.run(measure(base, sign_in(base, password), args, pool, proc.pid))
        if proc.poll() is not None:
            raise RuntimeError(f"appliance serve exited with {proc.returncode} during the run:\n{log_tail(log)}")
    except RuntimeError as exc:  # a failed step or a server that would not serve: one message, no traceback
        sys.exit(f"error: {exc}")
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    report: dict[str, Any] = {
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "params": {"levels": args.levels, "requests": args.requests or "max(50, 3 x clients)",
                   "cache_hits": args.cache_hits, "warmup": WARMUP, "seed": args.seed, "question_pool": len(pool),
                   "rate_limit_per_minute": RATE_LIMIT, "embedder": EMBEDDER},  # fmt: skip
        "setup": {**setup, "server_ready_s": ready_s, "data_dir_kept": str(args.data_dir) if args.data_dir else None},
        **figures,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
