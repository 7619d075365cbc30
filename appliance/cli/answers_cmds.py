"""answers ask, answers replay."""

from __future__ import annotations

import json

import click

from appliance.auth.orgs import get_org_by_slug
from appliance.cli.main import Obj, cli, opened, pass_obj
from appliance.conversations import chat
from appliance.instance import cli_context


@cli.group()
def answers() -> None:
    """The answer engine."""


@answers.command("ask")
@click.argument("question")
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--conversation", "conversation_id", type=int, help="Continue this conversation (follow-ups).")
@click.option("--json", "as_json", is_flag=True, help="Print the reply as JSON.")
@pass_obj
def ask(obj: Obj, question: str, org_slug: str, conversation_id: int | None, as_json: bool) -> None:
    """Ask QUESTION as a customer would; the conversation and answer are stored and audited like any other."""
    with opened(obj) as inst:
        org = get_org_by_slug(inst.db, org_slug)
        reply = chat.ask(inst.db, inst.answers, cli_context(org.id), org.id, question, conversation_id, channel="cli",
                         flow=inst.flow)  # the installation's flow: sentiment, topic and rules as in a chat  # fmt: skip
    answer = reply.answer
    if as_json:
        click.echo(json.dumps({"conversation_id": reply.conversation_id, "message_id": reply.message_id,
                               "status": reply.status, "answer": answer.public() if answer else None}))  # fmt: skip
        return
    click.echo(f"conversation {reply.conversation_id}, message {reply.message_id}, status {reply.status}")
    if answer is None:
        click.echo("(the conversation is with a person: no AI answer)")
        return
    click.echo(f"{answer.outcome} · confidence {answer.confidence} (threshold {answer.threshold})"
               + (f" · query: {answer.query}" if answer.query != answer.question else ""))  # fmt: skip
    click.echo("")
    click.echo(answer.text)
    for s in answer.sources:
        click.echo(f"[{s.number}] {s.title} (article {s.article_id} v{s.version}, {s.url}, chars {s.start}-{s.end})")


@answers.command("replay")
@click.argument("message_id", type=int)
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_obj
def replay(obj: Obj, message_id: int, org_slug: str, as_json: bool) -> None:
    """Recompute AI message MESSAGE_ID from the article versions and evidence it recorded and say whether it
    comes out identical. Exit 1 when it does not."""
    with opened(obj) as inst:
        org = get_org_by_slug(inst.db, org_slug)
        result = chat.replay_message(inst.db, inst.answers, org.id, message_id)
    if as_json:
        click.echo(json.dumps(result.__dict__))
    else:
        click.echo(f"message {message_id}: {'identical' if result.identical else 'DIFFERENT'}")
        click.echo(f"  confidence stored {result.stored_confidence}, replayed {result.replayed_confidence}")
        click.echo(f"  cited passages intact: {'yes' if result.passages_intact else 'no'}; "
                   f"same calibration: {'yes' if result.calibration_matches else 'no'}")  # fmt: skip
        for line in result.differences:
            click.echo(f"  - {line}")
    if not result.identical:
        raise SystemExit(1)


@answers.command("recalibrate")
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--dry-run", is_flag=True, help="Fit and show the adjustment; store nothing.")
@click.option("--clear", is_flag=True, help="Remove the organisation's adjustment (the shipped confidence applies).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_obj
def recalibrate(obj: Obj, org_slug: str, dry_run: bool, clear: bool, as_json: bool) -> None:
    """Fit the organisation's own adjustment of the shipped confidence from its golden questions (answered now)
    and its reviewers' verdicts on answers, and store it (audited). Needs at least 20 labels."""
    from appliance.answering import recalibration

    with opened(obj) as inst:
        org = get_org_by_slug(inst.db, org_slug)
        ctx = cli_context(org.id)
        if clear:
            if not dry_run:
                recalibration.save(inst.db, ctx, org.id, None)
            click.echo(json.dumps({"cleared": not dry_run}) if as_json else
                       "adjustment removed" if not dry_run else "dry run: nothing removed")  # fmt: skip
            return
        engine = inst.answers
        version = engine.parts.calibration.version
        golden = recalibration.golden_labels(engine, inst.db, org.id)
        reviews = recalibration.review_labels(inst.db, org.id, version)
        adjustment = recalibration.fit(golden + reviews, version)  # fewer than MIN_LABELS: a clear error, exit 2
        if not dry_run:
            recalibration.save(inst.db, ctx, org.id, adjustment)
    labels = golden + reviews
    right = sum(r for _, r in labels) / len(labels)
    mean_before = sum(c for c, _ in labels) / len(labels)
    mean_after = sum(adjustment.apply(c) for c, _ in labels) / len(labels)
    report = {"golden": len(golden), "reviews": len(reviews), "right_share": round(right, 4),
              "mean_confidence_before": round(mean_before, 2), "mean_confidence_after": round(mean_after, 2),
              "adjustment": adjustment.public(), "stored": not dry_run}  # fmt: skip
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"{len(labels)} labels ({len(golden)} golden questions, {len(reviews)} reviewed answers): "
               f"{right:.0%} right; mean confidence {mean_before:.1f} -> {mean_after:.1f} (on these same labels)")
    click.echo(f"adjustment a={adjustment.a:.3f} b={adjustment.b:.3f} against {version}: "
               + ("stored" if not dry_run else "dry run, not stored"))  # fmt: skip
