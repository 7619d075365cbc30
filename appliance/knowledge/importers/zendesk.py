"""Zendesk Guide articles JSON: pages of `GET /api/v2/help_center/articles.json` (`{"articles": [...], "next_page":
...}`), several saved one after another or as a list of pages, one page per line, or `{"article": {...}}`. Section
names come from sections sideloaded with `?include=sections,categories` (or a saved `sections.json` page in the same
file); article objects carry only `section_id`.

Mapping: external id `zendesk:<id>:<locale>` (translations share the article id); title `title` (else `name`); body
`body` (HTML, to markdown); category the article's section name; tags `label_names`; published unless `draft`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.knowledge import articles
from appliance.knowledge.importers import helpscout
from appliance.knowledge.importers.common import Incoming
from appliance.knowledge.importers.convert import html_to_markdown
from appliance.knowledge.importers.jsonfile import Document, read_documents, string_list, text_field


def _is_article(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    return "section_id" in value or "html_url" in value or {"title", "body"} <= value.keys()


def looks_like(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and looks_like(value[0])
    if not isinstance(value, dict):
        return False
    listed = value.get("articles")
    if isinstance(listed, list):  # Help Scout lists articles under {"items": [...]}
        return not listed or not helpscout.looks_like(listed[0])
    return _is_article(value.get("article")) or _is_article(value)


def _items(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for element in value:
            yield from _items(element)
    elif isinstance(value, dict):
        if isinstance(value.get("articles"), list):
            yield from value["articles"]
        elif isinstance(value.get("article"), dict):
            yield value["article"]
        elif "id" in value:
            yield value


def _sections(value: Any, names: dict[str, str]) -> None:
    if isinstance(value, list):
        for element in value:
            _sections(element, names)
    elif isinstance(value, dict) and isinstance(value.get("sections"), list):
        for section in value["sections"]:
            if isinstance(section, dict) and isinstance(section.get("name"), str) and "id" in section:
                names[str(section["id"])] = section["name"]


def _article(item: Any, where: str, sections: dict[str, str]) -> Incoming:
    if not isinstance(item, dict) or not isinstance(item.get("id"), (str, int)):
        return Incoming(where, error="an article needs an id")
    source = f"{where}: article {item['id']}"
    title = text_field(item, "title", "name")
    if not title or not title.strip():
        return Incoming(source, error="no title")
    body = item.get("body")
    if body is not None and not isinstance(body, str):
        return Incoming(source, error="body is not a string of HTML")
    if not isinstance(item.get("draft", False), bool):
        return Incoming(source, error="draft must be true or false")
    locale = text_field(item, "locale", "source_locale")
    external_id = f"zendesk:{item['id']}:{locale}" if locale else f"zendesk:{item['id']}"
    category = sections.get(str(item.get("section_id")), "")
    tags = tuple(string_list(item.get("label_names")))
    draft = articles.Draft(title.strip(), html_to_markdown(body or ""), category, tags)
    return Incoming(source, external_id, draft, publish=not item.get("draft", False))


def from_documents(documents: list[Document]) -> list[Incoming]:
    sections: dict[str, str] = {}
    for doc in documents:
        _sections(doc.value, sections)
    return [_article(item, doc.where, sections) for doc in documents for item in _items(doc.value)]


def read_file(path: Path) -> list[Incoming]:
    documents, failed = read_documents(path)
    return failed + from_documents(documents)
