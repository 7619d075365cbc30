"""HTML folders (or a zip of one): `*.html` / `*.htm` files, UTF-8, one article each.

Title from `<title>`, else the first `<h1>`, else the file name; body from `<main>`, else `<article>`, else
`<body>`, converted to markdown. Category from `<meta property="article:section">` (or `<meta name="category">`),
tags from `<meta property="article:tag">` and `<meta name="keywords">`. External id: the file's path in the folder.
Every file is published.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bs4 import BeautifulSoup, Tag

from appliance.errors import BadInput
from appliance.knowledge import articles
from appliance.knowledge.importers.archive import Archive
from appliance.knowledge.importers.common import MAX_FILE_BYTES, Incoming
from appliance.knowledge.importers.convert import html_to_markdown, parse_html

SUFFIXES = (".html", ".htm")


def read_folder(root: Path) -> Iterator[Incoming]:
    if not root.is_dir():
        raise BadInput(f"{root} is not a folder")
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            yield Incoming(relative, error="symbolic links are not followed")
        elif path.is_file():
            yield parse_file(path, relative)


def from_archive(archive: Archive) -> list[Incoming]:
    """An HTML folder uploaded as a zip (the console and the API take one file)."""
    members = archive.read(lambda name: name.lower().endswith(SUFFIXES))
    return [Incoming(m.path, error=m.error) if m.error is not None else parse_text(m.text, m.path) for m in members]


def parse_file(path: Path, relative: str) -> Incoming:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        return Incoming(relative, error=f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return Incoming(relative, error=f"not UTF-8 text (byte {exc.start}): save it as UTF-8")
    return parse_text(text.lstrip("\ufeff"), relative)


def _meta(soup: BeautifulSoup, attr: str, name: str) -> list[str]:
    return [str(m.get("content") or "").strip() for m in soup.find_all("meta", attrs={attr: name})]


def parse_text(text: str, relative: str) -> Incoming:
    soup = parse_html(text)
    h1 = soup.find("h1")
    title = soup.title.get_text(" ") if soup.title is not None else ""
    if not title.strip() and isinstance(h1, Tag):
        title = h1.get_text(" ")
    title = " ".join(title.split()) or Path(relative).stem.replace("-", " ").replace("_", " ")
    category = next(iter(_meta(soup, "property", "article:section") + _meta(soup, "name", "category")), "")
    tags = _meta(soup, "property", "article:tag")
    for keywords in _meta(soup, "name", "keywords"):
        tags.extend(k.strip() for k in keywords.split(","))
    root = next((t for t in (soup.find("main"), soup.find("article"), soup.body) if isinstance(t, Tag)), soup)
    body = html_to_markdown(root)
    draft = articles.Draft(title, body, category, tuple(t for t in tags if t))
    return Incoming(relative, relative, draft)
