"""Heading-aware chunking keeps heading paths and exact offsets, respects the word budget, and leaves code
fences alone."""

from __future__ import annotations

from appliance.knowledge.chunking import chunk_article

ARTICLE = """Intro paragraph about cards.

# Cards

## Reset your PIN

1. Open the app
2. Tap Reset PIN

## Lost card

Call us at once.

```
# not a heading, inside code
```

# Accounts

Open an account online.
"""


def test_heading_paths_and_offsets() -> None:
    chunks = chunk_article(ARTICLE)
    assert [c.heading_path for c in chunks] == [(), ("Cards", "Reset your PIN"), ("Cards", "Lost card"), ("Accounts",)]
    for chunk in chunks:
        assert ARTICLE[chunk.start : chunk.end] == chunk.text
    assert chunks[1].text == "1. Open the app\n2. Tap Reset PIN"
    assert "# not a heading, inside code" in chunks[2].text  # fenced code is text, not structure
    assert chunks[1].indexed_text("Card help") == "Card help > Cards > Reset your PIN\n1. Open the app\n2. Tap Reset PIN"
    assert [c.index for c in chunks] == [0, 1, 2, 3]


def test_word_budget_packs_and_splits() -> None:
    paragraphs = "\n\n".join(f"Paragraph {i} " + "word " * 48 for i in range(6))  # 6 x 50 words
    chunks = chunk_article(paragraphs, max_words=120)
    assert [len(c.text.split()) for c in chunks] == [100, 100, 100]
    long = "token " * 450
    parts = chunk_article(long, max_words=200)
    assert [len(c.text.split()) for c in parts] == [200, 200, 50]
    for part in parts:
        assert long[part.start : part.end] == part.text


def test_empty_content_has_no_chunks() -> None:
    assert chunk_article("") == [] and chunk_article("\n\n   \n") == []
