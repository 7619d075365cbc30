"""Confluence space exports (HTML).

The zip holds a folder named after the space key: `index.html` (the space overview, not imported), one page per
file named `Page-Title_123456.html` (or `123456.html` when the title has no ASCII letters), and `attachments/`,
`images/` and `styles/`. Each page has its title in `#title-text` ("Space : Page", the space part dropped), its
ancestors in `#breadcrumbs` (space first) and its body in `#main-content`.

Each page becomes one published article (an export holds only published pages): external id
`confluence:<page id>`, category the page's parent (the last breadcrumb: the space for a top-level page).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from bs4 import Tag

from appliance.knowledge import articles
from appliance.knowledge.importers.archive import Archive, Member
from appliance.knowledge.importers.common import Incoming
from appliance.knowledge.importers.convert import html_to_markdown, parse_html

_PAGE = re.compile(r"^(?:.*_)?(\d+)\.html$")
_NOT_PAGES = {"attachments", "images", "styles"}


def _is_page_file(name: str) -> bool:
    path = PurePosixPath(name)
    return path.suffix.lower() == ".html" and path.name != "index.html" and not _NOT_PAGES & set(path.parts[:-1])


def looks_like(names: list[str]) -> bool:
    has_index = any(PurePosixPath(n).name == "index.html" for n in names)
    return has_index and any(_PAGE.match(PurePosixPath(n).name) for n in names if _is_page_file(n))


def _text(tag: Tag | None) -> str:
    return " ".join(tag.get_text(" ").split()) if tag is not None else ""


def _page(member: Member, source: str) -> Incoming:
    found = _PAGE.match(PurePosixPath(member.name).name)
    if found is None:
        return Incoming(source, error="not a Confluence page (no page id in its file name)")
    soup = parse_html(member.text)
    main = soup.find(id="main-content")
    if not isinstance(main, Tag):
        return Incoming(source, error="no #main-content: not a Confluence page export")
    crumbs_list = soup.find(id="breadcrumbs")
    crumbs = [_text(li) for li in crumbs_list.find_all("li")] if isinstance(crumbs_list, Tag) else []
    crumbs = [c for c in crumbs if c]
    title_tag = soup.find(id="title-text")
    title = _text(title_tag if isinstance(title_tag, Tag) else soup.title)
    space = crumbs[0] if crumbs else ""
    if space and title.startswith(f"{space} : "):
        title = title[len(space) + 3 :]
    title = title or PurePosixPath(member.name).stem.rsplit("_", 1)[0].replace("-", " ")
    category = crumbs[-1] if crumbs else ""
    draft = articles.Draft(title, html_to_markdown(main), category)
    return Incoming(source, f"confluence:{found.group(1)}", draft)


def from_archive(archive: Archive) -> list[Incoming]:
    found = []
    for member in archive.read(_is_page_file):
        source = f"{archive.label}/{member.path}"
        found.append(Incoming(source, error=member.error) if member.error is not None else _page(member, source))
    return found
