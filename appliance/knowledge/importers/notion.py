"""Notion "Markdown & CSV" exports.

The zip holds one `Title <32-hex id>.md` per page, a page's subpages in a folder named like the page, and each
database as `Name <id>.csv` (newer exports add `Name <id>_all.csv`) beside a folder holding one page per row. Large
exports come wrapped: `Export-<uuid>.zip` holding `Export-<uuid>-Part-1.zip` and so on.

Each page becomes one article: external id `notion:<id>`, title from its `# Title` line (else its file name). A
database row takes its properties from the CSV and loses the `Property: value` lines Notion writes under its title:
Category (or Section), Tags (or Labels, Keywords; comma-separated), and Status (or a Published checkbox). Status
Published / Live / Public publishes; any other status imports a draft; a page with no status is published. Without
a Category, the category is the title of the parent page or database the page sits in. Images stored in the export
are dropped (nothing would serve them); images on the web stay.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from appliance.knowledge import articles
from appliance.knowledge.importers.archive import Archive, Member
from appliance.knowledge.importers.common import Incoming

_ID = re.compile(r"^(.*?)\s*([0-9a-f]{32})$")
_PROPERTY = re.compile(r"^([^:\n]{1,100}):\s?(.*)$")
# An image stored in the export itself: nothing would serve it once imported (web images are kept).
_LOCAL_IMAGE = re.compile(r"!\[[^\]]*\]\((?![a-z]+://)(?:[^()\s]|\([^()\s]*\))*\)\n?")
PUBLISHED = {"published", "live", "public"}
_CATEGORY = ("category", "section")
_TAGS = ("tags", "tag", "labels", "keywords")
_STATUS = ("status", "state")


def split_id(stem: str) -> tuple[str, str]:
    """`Reset your PIN 0a1b...` -> ("Reset your PIN", "0a1b..."); ("name", "") when it carries no id."""
    found = _ID.match(stem)
    return (found.group(1), found.group(2)) if found else (stem, "")


def looks_like(names: list[str]) -> bool:
    return any(
        split_id(PurePosixPath(n).stem.removesuffix("_all"))[1] for n in names if n.lower().endswith((".md", ".csv"))
    )


@dataclass(frozen=True)
class _Database:
    columns: list[str]
    rows: dict[str, dict[str, str]]  # by title (the first column)


def _read_csv(text: str) -> _Database:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    rows = {}
    for row in reader:
        if row and row[0].strip():
            rows[row[0].strip()] = {h: v.strip() for h, v in zip(header, row)}
    return _Database(header, rows)


def _prop(props: dict[str, str], names: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): v for k, v in props.items()}
    return next((lowered[n] for n in names if n in lowered), None)


def _split_page(text: str, stem_title: str) -> tuple[str, list[str]]:
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.strip()), len(lines))
    if start < len(lines) and lines[start].startswith("# "):
        return lines[start][2:].strip() or stem_title, lines[start + 1 :]
    return stem_title, lines


def _drop_properties(lines: list[str], columns: list[str]) -> list[str]:
    """Notion writes a row's properties as `Name: value` lines under its title; the CSV already has them."""
    known = {c.lower() for c in columns}
    i = next((i for i, ln in enumerate(lines) if ln.strip()), len(lines))
    while i < len(lines) and (found := _PROPERTY.match(lines[i])) and found.group(1).strip().lower() in known:
        i += 1
    return lines[i:]


def _page(member: Member, source: str, databases: dict[str, _Database]) -> Incoming:
    path = PurePosixPath(member.name)
    stem_title, notion_id = split_id(path.stem)
    title, lines = _split_page(member.text, stem_title)
    parent = str(path.parent)
    database = databases.get(parent)
    props: dict[str, str] = {}
    if database is not None:
        props = database.rows.get(title, {})
        lines = _drop_properties(lines, database.columns)
    parent_title, parent_id = split_id(path.parent.name)
    category = _prop(props, _CATEGORY) or (parent_title if parent_id else "")
    tags = [t.strip() for t in (_prop(props, _TAGS) or "").split(",") if t.strip()]
    status = _prop(props, _STATUS)
    checkbox = _prop(props, ("published",))
    if status is not None:
        publish = status.lower() in PUBLISHED
    else:
        publish = checkbox is None or checkbox.lower() in ("yes", "true")
    body = _LOCAL_IMAGE.sub("", "\n".join(lines)).strip("\n") + "\n"
    external_id = f"notion:{notion_id}" if notion_id else f"notion:{member.name}"
    return Incoming(source, external_id, articles.Draft(title, body, category, tuple(tags)), publish=publish)


def from_archive(archive: Archive) -> list[Incoming]:
    members = list(archive.read(lambda name: name.lower().endswith((".md", ".csv"))))
    found: list[Incoming] = []
    databases: dict[str, _Database] = {}
    for member in members:
        if member.error is None and member.name.lower().endswith(".csv"):
            try:
                database = _read_csv(member.text)
            except csv.Error as exc:
                found.append(Incoming(f"{archive.label}/{member.path}", error=f"not a readable CSV ({exc})"))
                continue
            folder = member.name[: -len(".csv")].removesuffix("_all")
            known = databases.get(folder)
            if known is not None:  # `Name <id>.csv` and `Name <id>_all.csv`: the union of their rows
                database = _Database(database.columns or known.columns, {**known.rows, **database.rows})
            databases[folder] = database
    for member in members:
        source = f"{archive.label}/{member.path}"
        if member.error is not None:
            found.append(Incoming(source, error=member.error))
        elif member.name.lower().endswith(".md"):
            found.append(_page(member, source, databases))
    return found
