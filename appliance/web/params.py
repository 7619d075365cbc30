"""The integers a request may carry, bounded in this one place. SQLite's INTEGER is a signed 64-bit number and
binding a larger Python int raises OverflowError, so a bare `int` in a path, query, form or body turned 2**63 into a
500. Use these for every integer a route takes (the OpenAPI schema then says the range, and a value outside it is a
422); hand-parsed ids (form text) go through `parse_id`, WebSocket frames through MAX_INT.

Write them as the annotation, `before: Id | None = None` or `Annotated[Id, Query(...)]`, never `x: Id = Query()`:
a `Query()` / `Path()` default replaces the annotation's bounds in FastAPI, silently."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

from appliance.errors import InvalidValue

MAX_INT = 2**63 - 1
MIN_INT = -(2**63)

Id = Annotated[int, Interval(ge=1, le=MAX_INT)]
"""A row id (rowids start at 1)."""
Count = Annotated[int, Interval(ge=0, le=MAX_INT)]
"""A non-negative integer: an offset, a message id to read after, a counter."""
Int = Annotated[int, Interval(ge=MIN_INT, le=MAX_INT)]
"""Any integer a column holds (a priority, a Unix time)."""
MAX_PAGE = 10**9  # a page's offset, (page - 1) x per page, must fit in 64 bits too
Page = Annotated[int, Interval(ge=1, le=MAX_PAGE)]
"""A page number."""


def parse_id(raw: str, what: str) -> int | None:
    """A row id typed as text (a form's select, a filter): None when empty, else the id or InvalidValue."""
    raw = raw.strip()
    if not raw:
        return None
    # isdigit() alone passes "²", which int() refuses
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_INT:
        raise InvalidValue(f"{what} must be an id")
    return int(raw)
