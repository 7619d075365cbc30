"""The topic classifier on the real MiniLM embedder: a small support taxonomy, held-out paraphrases, questions that
match no topic, the stored form, and training data it must refuse."""

from __future__ import annotations

import pytest

from appliance.errors import ApplianceError, InvalidValue, ModelError
from appliance.inference.embedders import FakeEmbedder, OnnxEmbedder
from appliance.inference.intents import VERSION, IntentClassifier

TOPICS = {
    "billing": [
        "Why was I charged twice this month?", "How do I download my invoice?", "Can I change the card you bill?",
        "My payment failed, what should I do?", "When is my next bill due?", "I was overcharged on my last invoice",
        "How do I update my billing address?", "Can I get a refund for last month's charge?",
    ],
    "login": [
        "I forgot my password", "How do I reset my password?", "I can't sign in to my account",
        "My account is locked after too many attempts", "The verification code never arrives",
        "How do I turn on two-factor authentication?", "I changed my email and now I can't log in",
        "The login page says my password is wrong",
    ],
    "delivery": [
        "Where is my parcel?", "My order hasn't arrived yet", "How long does shipping take?",
        "Can I change the delivery address of my order?", "The tracking number doesn't work",
        "Do you deliver on Saturdays?", "My package was delivered to the wrong house", "How much is express shipping?",
    ],
    "opening_hours": [
        "What time do you open?", "Are you open on Sundays?", "When does the shop close today?",
        "What are your opening hours over Christmas?", "Is the branch open on bank holidays?",
        "How late are you open on Fridays?", "Are you closed on Easter Monday?", "What are your weekend hours?",
    ],
}  # fmt: skip
TEXTS = [text for texts in TOPICS.values() for text in texts]
LABELS = [topic for topic, texts in TOPICS.items() for _ in texts]
OUT_OF_SCOPE = ["Tell me a joke", "What's the weather like tomorrow?", "Who is the president of France?",
                "Recommend a good film"]  # fmt: skip

PARAPHRASES = {
    "I was billed twice for one month": "billing",
    "where can I find my invoices?": "billing",
    "I can't remember my password, help": "login",
    "my account got locked": "login",
    "my package still isn't here, where is it": "delivery",
    "how long will delivery take?": "delivery",
    "until what time are you open tonight?": "opening_hours",
    "are you open on saturday?": "opening_hours",
}
UNRELATED = ["What is the capital of Australia?", "Write me a poem about the sea",
             "How many legs does a spider have?", "what's a good recipe for lasagna"]  # fmt: skip


@pytest.fixture(scope="module")
def classifier(onnx_embedder: OnnxEmbedder) -> IntentClassifier:
    return IntentClassifier.train(onnx_embedder, TEXTS, LABELS, OUT_OF_SCOPE)


def test_held_out_paraphrases_get_their_topic(classifier: IntentClassifier) -> None:
    predictions = classifier.predict(list(PARAPHRASES))
    assert [p.label for p in predictions] == list(PARAPHRASES.values())
    for p in predictions:
        assert p.best == p.label and 0 < p.runner_up_confidence < p.confidence <= 1
        assert p.confidence >= classifier.threshold and p.runner_up in TOPICS and p.runner_up != p.label


def test_a_question_that_matches_no_topic_gets_none(classifier: IntentClassifier) -> None:
    predictions = classifier.predict(UNRELATED)
    assert [p.label for p in predictions] == [None] * len(UNRELATED)
    assert all(p.confidence < classifier.threshold and p.best in TOPICS for p in predictions)


def test_without_out_of_scope_examples_the_threshold_comes_from_held_out_folds(onnx_embedder: OnnxEmbedder) -> None:
    model = IntentClassifier.train(onnx_embedder, TEXTS, LABELS)
    assert model.labels == tuple(sorted(TOPICS)) and 0 < model.threshold < 1
    assert model.stats["oos_examples"] == 0 and model.stats["heldout_oos_recall"] is None
    assert model.predict(["Write me a poem about the sea", "How do I reset my password?"])[0].label is None
    assert model.predict(["How do I reset my password?"])[0].label == "login"


def test_training_is_deterministic_and_the_stored_form_predicts_the_same(
    classifier: IntentClassifier, onnx_embedder: OnnxEmbedder
) -> None:
    data = classifier.to_bytes()
    assert IntentClassifier.train(onnx_embedder, TEXTS, LABELS, OUT_OF_SCOPE).to_bytes() == data
    loaded = IntentClassifier.from_bytes(data, onnx_embedder)
    assert loaded.version == classifier.version == VERSION
    assert (loaded.labels, loaded.threshold, loaded.stats) == (classifier.labels, classifier.threshold, classifier.stats)
    questions = [*PARAPHRASES, *UNRELATED]
    assert loaded.predict(questions) == classifier.predict(questions)
    assert loaded.predict([]) == []


def test_a_stored_classifier_is_refused_with_another_embedder_or_when_damaged(classifier: IntentClassifier) -> None:
    with pytest.raises(ModelError, match="trained with embedder all-minilm-l6-v2"):
        IntentClassifier.from_bytes(classifier.to_bytes(), FakeEmbedder())
    with pytest.raises(ModelError, match="not a readable classifier"):
        IntentClassifier.from_bytes(b"not a model", FakeEmbedder())


@pytest.mark.parametrize(
    ("texts", "labels", "oos", "message"),
    [
        (TEXTS, ["billing"] * len(TEXTS), (), "at least two topics, got 1"),
        ([*TEXTS[:-1], "   "], LABELS, (), "training text 32 is empty"),
        (TEXTS, LABELS, ["Tell me a joke", ""], "training text 34 is empty"),
        (TEXTS, LABELS[:-1], (), "32 texts but 31 labels"),
        ([*TEXTS, "How do I cancel?"], [*LABELS, "cancellation"], (), "cancellation has one"),
        (TEXTS, [*LABELS[:-1], ""], (), "label 32 is empty"),
        ([], [], (), "at least two topics, got 0"),
    ],
)
def test_unusable_training_data_is_refused_clearly(
    onnx_embedder: OnnxEmbedder, texts: list[str], labels: list[str], oos: list[str], message: str
) -> None:
    with pytest.raises(InvalidValue, match=message) as raised:
        IntentClassifier.train(onnx_embedder, texts, labels, oos)
    assert isinstance(raised.value, ApplianceError) and raised.value.status == 422
