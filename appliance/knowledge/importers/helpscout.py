"""Help Scout Docs JSON: articles as the Docs API returns them.

Accepted: `{"articles": {"items": [...]}}` (a list response), `{"article": {...}}` (one article), a list of either or
of articles, or one of these per line. Articles must be full ones (`GET /v1/articles/{id}`): list responses carry
references without `text`, which fail with that reason. Category and collection names come from `categories` /
`collections` responses saved in the same file (`{"categories": {"items": [{"id", "name"}]}}`); article objects
carry only their ids.

Mapping: external id `helpscout:<id>`; title `name`; body `text` (HTML, to markdown); category the first of the
article's `categories` whose name is known, else its collection's name; tags `keywords`; published when `status`
is "published", a draft when "notpublished".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.knowledge import articles
from appliance.knowledge.importers.common import Incoming
from appliance.knowledge.importers.convert import html_to_markdown
from appliance.knowledge.importers.jsonfile import Document, read_documents, string_list, text_field

STATUSES = {"published": True, "notpublished": False}


def _is_article(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    return "collectionId" in value or "publicUrl" in value or {"name", "text"} <= value.keys()


def looks_like(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and looks_like(value[0])
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("articles"), dict):
        return True
    if isinstance(value.get("articles"), list):
        return bool(value["articles"]) and _is_article(value["articles"][0])
    return _is_article(value.get("article")) or _is_article(value)


def _items(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for element in value:
            yield from _items(element)
    elif isinstance(value, dict):
        if "articles" in value:
            yield from _items(value["articles"])
        elif isinstance(value.get("items"), list):
            yield from _items(value["items"])
        elif isinstance(value.get("article"), dict):
            yield value["article"]
        elif "id" in value:
            yield value


def _names(value: Any, names: dict[str, str]) -> None:
    """Ids to names from saved `categories` / `collections` responses."""
    if isinstance(value, list):
        for element in value:
            _names(element, names)
        return
    if not isinstance(value, dict):
        return
    for key in ("categories", "collections"):
        listed = value.get(key)
        listed = listed.get("items") if isinstance(listed, dict) else listed
        for item in listed if isinstance(listed, list) else []:
            if isinstance(item, dict) and isinstance(item.get("name"), str) and "id" in item:
                names[str(item["id"])] = item["name"]


def _article(item: Any, where: str, names: dict[str, str]) -> Incoming:
    if not isinstance(item, dict) or not isinstance(item.get("id"), (str, int)):
        return Incoming(where, error="an article needs an id")
    source = f"{where}: article {item['id']}"
    title = text_field(item, "name")
    if not title or not title.strip():
        return Incoming(source, error="no name (the article's title)")
    text = text_field(item, "text")
    if text is None:
        return Incoming(source, error="no text: a list reference, not a full article (export GET /v1/articles/{id})")
    status = str(item.get("status") or "published")
    if status not in STATUSES:
        return Incoming(source, error=f"status {status!r}: expected published or notpublished")
    known = [names[c] for c in string_list(item.get("categories")) if c in names]
    category = known[0] if known else names.get(str(item.get("collectionId")), "")
    tags = tuple(string_list(item.get("keywords")))
    draft = articles.Draft(title.strip(), html_to_markdown(text), category, tags)
    return Incoming(source, f"helpscout:{item['id']}", draft, publish=STATUSES[status])


def from_documents(documents: list[Document]) -> list[Incoming]:
    names: dict[str, str] = {}
    for doc in documents:
        _names(doc.value, names)
    return [_article(item, doc.where, names) for doc in documents for item in _items(doc.value)]


def read_file(path: Path) -> list[Incoming]:
    documents, failed = read_documents(path)
    return failed + from_documents(documents)
