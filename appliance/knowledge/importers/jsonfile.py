"""JSON exports (Help Scout, Zendesk): one JSON document, several concatenated (API pages saved one after another),
or JSON lines. In a line-per-document file a bad line fails alone, named by its number; in any other file a syntax
error names its line and stops the import, since nothing after it can be trusted to parse."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import BadInput
from appliance.knowledge.importers.common import Incoming

MAX_JSON_BYTES = 64 * 1024 * 1024  # a whole help centre in one file; each article is still held to MAX_CONTENT
LINE_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class Document:
    where: str  # the file, and the line in a line-per-document file: for the report
    value: Any


def _line_mode(path: Path, lines: list[bytes]) -> bool:
    if path.suffix.lower() in LINE_SUFFIXES:
        return True
    filled = [ln for ln in lines if ln.strip()]
    if len(filled) < 2:
        return False
    try:
        return isinstance(json.loads(filled[0]), (dict, list))
    except ValueError:
        return False


def _by_line(path: Path, lines: list[bytes]) -> tuple[list[Document], list[Incoming]]:
    documents: list[Document] = []
    failed: list[Incoming] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8").lstrip("\ufeff"))
            documents.append(Document(f"{path.name} line {number}", value))
        except UnicodeDecodeError as exc:
            failed.append(Incoming(f"{path.name} line {number}", error=f"not UTF-8 text (byte {exc.start})"))
        except json.JSONDecodeError as exc:
            reason = f"not valid JSON: {exc.msg} (column {exc.colno})"
            failed.append(Incoming(f"{path.name} line {number}", error=reason))
    return documents, failed


def _stream(path: Path, raw: bytes) -> list[Document]:
    try:
        text = raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path.name} is not UTF-8 text (byte {exc.start})") from None
    decoder = json.JSONDecoder()
    documents: list[Document] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return documents
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            raise BadInput(f"{path.name} is not valid JSON: {exc.msg} at {where}") from None
        documents.append(Document(path.name, value))
        at = end


def read_documents(path: Path) -> tuple[list[Document], list[Incoming]]:
    """The documents in the file, and a failed item for each line that could not be read."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise BadInput(f"{path.name} is {size} bytes, over the {MAX_JSON_BYTES}-byte limit: split it")
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path.name}: {exc.strerror}") from None
    lines = raw.split(b"\n")
    if _line_mode(path, lines):
        return _by_line(path, lines)
    return _stream(path, raw), []


def text_field(article: dict[str, Any], *names: str) -> str | None:
    """The first of the fields that holds a string (None when none does)."""
    for name in names:
        value = article.get(name)
        if isinstance(value, str):
            return value
    return None


def string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value if isinstance(v, (str, int)) and str(v).strip()]
    return []
