"""Which importer reads a path: named, or told from the path itself.

auto: a folder of `.md` files is markdown and a folder of `.html` files is html; a zip is Notion or Confluence by
its entries, else a zipped folder of `.md` or of `.html` files; a `.json` / `.jsonl` file is Help Scout or Zendesk
by its shape; a single `.md` or `.html` file is one article. Whatever cannot be told apart is a BadInput that says
which formats there are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from appliance.audit.events import Context
from appliance.errors import BadInput, InvalidValue
from appliance.knowledge.importers import archive, common, confluence, helpscout, html, markdown, notion, zendesk
from appliance.knowledge.importers.common import Incoming
from appliance.knowledge.importers.jsonfile import LINE_SUFFIXES, Document, read_documents
from appliance.store import Database

FORMATS = ("auto", "markdown", "html", "notion", "confluence", "helpscout", "zendesk")
_MARKDOWN_SUFFIXES = (".md", ".markdown")
_JSON_SUFFIXES = (".json", *LINE_SUFFIXES)


def _folder_format(path: Path) -> str:
    has_md = any(path.rglob("*.md"))  # what the markdown importer reads
    has_html = any(p.suffix.lower() in html.SUFFIXES for p in path.rglob("*"))
    if has_md and has_html:
        raise BadInput(f"{path} holds both markdown and HTML files: choose one with format markdown or html")
    if not has_md and not has_html:
        raise BadInput(f"{path} holds no .md or .html files")
    return "markdown" if has_md else "html"


def _read_folder(path: Path, format: str) -> list[Incoming]:
    if format == "auto":
        format = _folder_format(path)
    if format == "markdown":
        return list(markdown.read_folder(path))
    if format == "html":
        return list(html.read_folder(path))
    raise BadInput(f"{path} is a folder; a {format} import reads a file")


_ZIP_READERS: dict[str, Callable[[archive.Archive], list[Incoming]]] = {
    "notion": notion.from_archive, "confluence": confluence.from_archive, "markdown": markdown.from_archive,
    "html": html.from_archive,
}  # fmt: skip


def _zip_format(path: Path, names: list[str]) -> str:
    """Exports first (a Notion zip holds .md files, a Confluence one .html files), then a zipped folder."""
    if notion.looks_like(names):
        return "notion"
    if confluence.looks_like(names):
        return "confluence"
    has_md = any(n.lower().endswith(_MARKDOWN_SUFFIXES[0]) for n in names)
    has_html = any(n.lower().endswith(html.SUFFIXES) for n in names)
    if has_md != has_html:
        return "markdown" if has_md else "html"
    raise BadInput(
        f"cannot tell what export {path.name} is: expected a Notion (Markdown & CSV) or a Confluence (HTML) space "
        "export, or a zipped folder of .md or of .html files"
    )


def _read_zip(path: Path, format: str) -> list[Incoming]:
    if format not in ("auto", *_ZIP_READERS):
        raise BadInput(f"{path.name} is a zip archive; a {format} import reads a folder or a single file")
    with archive.open_zip(path) as zipped:
        return _ZIP_READERS[_zip_format(path, zipped.names) if format == "auto" else format](zipped)


def _json_format(path: Path, documents: list[Document]) -> str:
    for doc in documents:
        zendesk_like, helpscout_like = zendesk.looks_like(doc.value), helpscout.looks_like(doc.value)
        if zendesk_like != helpscout_like:
            return "zendesk" if zendesk_like else "helpscout"
    raise BadInput(
        f"cannot tell what export {path.name} is: expected Help Scout Docs articles ({{\"articles\": {{\"items\": "
        f"[...]}}}}) or Zendesk Guide articles ({{\"articles\": [...]}})"
    )


def _read_json(path: Path, format: str) -> list[Incoming]:
    if format not in ("auto", "helpscout", "zendesk"):
        raise BadInput(f"{path.name} is a JSON file; a {format} import reads a folder, a zip or a single file")
    documents, failed = read_documents(path)
    if format == "auto":
        format = _json_format(path, documents)
    found = helpscout.from_documents(documents) if format == "helpscout" else zendesk.from_documents(documents)
    return failed + found


def read_path(path: Path, format: str = "auto") -> list[Incoming]:
    """Every article in the export at path, or the reason each could not be read. Finding none at all is a
    BadInput: an export read as the wrong format (or an empty one) must not pass for a successful import."""
    if format not in FORMATS:
        raise InvalidValue(f"unknown import format {format!r}; use one of {', '.join(FORMATS)}")
    if not path.exists():
        raise BadInput(f"{path} does not exist")
    found = _read(path, format)
    if not found:
        raise BadInput(f"found nothing to import in {path.name}" + (f" read as {format}" if format != "auto" else ""))
    return found


def _read(path: Path, format: str) -> list[Incoming]:
    if path.is_dir():
        return _read_folder(path, format)
    suffix = path.suffix.lower()
    if suffix == ".zip" or format in ("notion", "confluence"):
        return _read_zip(path, format)
    if suffix in _JSON_SUFFIXES or format in ("helpscout", "zendesk"):
        return _read_json(path, format)
    if suffix in _MARKDOWN_SUFFIXES and format in ("auto", "markdown"):
        return [markdown.parse_file(path, path.name)]
    if suffix in html.SUFFIXES and format in ("auto", "html"):
        return [html.parse_file(path, path.name)]
    raise BadInput(
        f"cannot import {path.name}: expected a folder, a .zip (Notion, Confluence), a .json or .jsonl (Help Scout, "
        "Zendesk), or a single .md or .html file"
    )


def import_path(
    db: Database, ctx: Context, org_id: int, path: Path, format: str = "auto", dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> common.ImportReport:  # fmt: skip
    return common.apply(db, ctx, org_id, read_path(path, format), dry_run, progress, source=path.name)
