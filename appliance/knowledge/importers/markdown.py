"""Markdown folders (or a zip of one): `*.md` files with YAML front matter (`id`, `title`, `category`, `tags`,
`status`, `url`) and a markdown body. Files without front matter take their title from the first `# heading` or the
file name and their external id from their path in the folder (in a zip: their path in the zip)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml

from appliance.errors import BadInput
from appliance.knowledge import articles
from appliance.knowledge.importers.archive import Archive
from appliance.knowledge.importers.common import MAX_FILE_BYTES, Incoming


def read_folder(root: Path) -> Iterator[Incoming]:
    if not root.is_dir():
        raise BadInput(f"{root} is not a folder")
    for path in sorted(root.rglob("*.md")):
        if path.is_symlink():
            yield Incoming(str(path), error="symbolic links are not followed")
            continue
        yield parse_file(path, str(path.relative_to(root)))


def from_archive(archive: Archive) -> list[Incoming]:
    """A markdown folder uploaded as a zip (the console and the API take one file)."""
    members = archive.read(lambda name: name.lower().endswith(".md"))
    return [Incoming(m.path, error=m.error) if m.error is not None else parse_text(m.text, m.path) for m in members]


def parse_file(path: Path, relative: str) -> Incoming:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        return Incoming(relative, error=f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return Incoming(relative, error=f"not UTF-8 text (byte {exc.start})")
    return parse_text(text, relative)


def parse_text(text: str, relative: str) -> Incoming:
    meta: dict[str, object] = {}
    body = text.lstrip("\ufeff")
    if body.startswith("---"):
        end = body.find("\n---", 3)
        if end < 0:
            return Incoming(relative, error="front matter opened with --- is never closed")
        try:
            loaded = yaml.safe_load(body[3:end])
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 2}" if mark is not None else ""
            return Incoming(relative, error=f"front matter is not valid YAML{where}")
        if loaded is not None and not isinstance(loaded, dict):
            return Incoming(relative, error="front matter is not a mapping of fields")
        meta = loaded or {}
        body = body[end + 4 :].lstrip("\n")
    title = str(meta.get("title") or "").strip()
    if not title:
        first = next((ln for ln in body.splitlines() if ln.startswith("# ")), "")
        title = first[2:].strip() or Path(relative).stem.replace("-", " ").replace("_", " ")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    if not isinstance(tags, list):
        return Incoming(relative, error="tags must be a list or a comma-separated string")
    status = str(meta.get("status") or "published")
    if status not in ("draft", "published"):
        return Incoming(relative, error=f"status {status!r}: imports may be draft or published")
    external_id = str(meta.get("id") or relative)
    draft = articles.Draft(title, body.strip() + "\n", str(meta.get("category") or ""), tuple(str(t) for t in tags))
    return Incoming(relative, external_id, draft, publish=status == "published")
