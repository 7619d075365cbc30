"""HTML to markdown for the importers that receive HTML (HTML folders, Confluence, Help Scout, Zendesk).

Article bodies are stored as markdown, so chunking can follow `#` headings. Lists, tables, links and code blocks
survive; page chrome (scripts, styles, navigation, site headers and footers, forms) is dropped. Images that point
into the export itself (relative paths, data: URIs) are dropped too: nothing here would serve them.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Comment, Tag
from markdownify import MarkdownConverter

# Never article content. <header>/<footer> are chrome only outside an <article> (inside one they hold its title).
_CHROME = (
    "head", "title", "script", "style", "noscript", "template", "iframe", "object", "embed", "form", "button",
    "input", "select", "textarea", "nav", "svg", "canvas", "link", "meta",
)  # fmt: skip
_BRUSH = re.compile(r"brush:\s*([\w+#.-]+)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_html(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def _code_language(pre: Tag) -> str | None:
    params = pre.get("data-syntaxhighlighter-params")  # Confluence: "brush: java; gutter: false"
    if isinstance(params, str) and (found := _BRUSH.search(params)):
        return found.group(1)
    for tag in (pre, pre.find("code")):
        if isinstance(tag, Tag):
            for cls in tag.get_attribute_list("class"):
                if cls and cls.startswith(("language-", "lang-")):
                    return str(cls.split("-", 1)[1])
    return None


_CONVERTER = MarkdownConverter(
    heading_style="ATX", bullets="-", table_infer_header=True, code_language_callback=_code_language
)


def _strip_chrome(root: Tag) -> None:
    for node in root.find_all(string=lambda s: isinstance(s, Comment)):
        node.extract()
    for tag in root.find_all(list(_CHROME)):
        tag.decompose()
    for tag in root.find_all(("header", "footer")):
        if tag.find_parent("article") is None:
            tag.decompose()
    for img in root.find_all("img"):
        src = str(img.get("src") or "")
        if not src.lower().startswith(("http://", "https://")):
            img.decompose()


def _tidy(markdown: str) -> str:
    """Trailing spaces off, runs of blank lines down to one, non-breaking spaces to spaces; code blocks untouched."""
    out: list[str] = []
    in_code = False
    for line in markdown.replace("\xa0", " ").split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        if not in_code:
            line = line.rstrip()
            if not line and (not out or not out[-1]):
                continue
        out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def html_to_markdown(html: str | Tag) -> str:
    """Markdown for an HTML document or fragment (a parsed tag is converted in place: pass a copy to keep it)."""
    root = parse_html(html) if isinstance(html, str) else html
    _strip_chrome(root)
    return _tidy(_CONVERTER.convert_soup(root))
