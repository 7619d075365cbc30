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
