"""File uploads, streamed into a private folder in the data dir.

Framework form parsing holds an upload in memory and spools anything over 1 MiB to the system temp dir (often a
small tmpfs, and outside the data dir that backups and retention know about). Here the body is parsed as it
arrives and the one file in it is written straight to `uploads/<random>/<name>`, which is removed when the request
is done with it, whatever happened.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from appliance.errors import BadInput
from appliance.web.deps import CSRF_FORM_FIELD, CSRF_HEADER

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_FIELDS = 10
MAX_FIELD_BYTES = 1024


@dataclass(frozen=True)
class Upload:
    path: Path  # the saved file, under the name the client gave it (reduced to a safe base name)
    fields: dict[str, str]  # the form's other fields


def safe_name(filename: str) -> str:
    """The base name only, printable, at most 120 characters (the end kept: the suffix says what the file is)."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable())[-120:].strip()
    return name if name not in ("", ".", "..") else "upload"


class _Parts:
    """python-multipart callbacks: keeps the small fields, queues the file's bytes for the caller to write."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.pending: list[bytes] = []
        self._header = b""
        self._value = b""
        self._disposition = b""
        self._name = ""
        self._in_file = False
        self._field = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }  # fmt: skip

    def _part_begin(self) -> None:
        self._disposition, self._field, self._in_file = b"", bytearray(), False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise BadInput("a multipart part has no name")
        self._name = options[b"name"].decode("utf-8", "replace")
        if options.get(b"filename"):  # a browser sends filename="" for a file input left empty: no file
            if self.filename is not None:
                raise BadInput("send one file at a time")
            self.filename = safe_name(options[b"filename"].decode("utf-8", "replace"))
            self._in_file = True
        elif len(self.fields) >= MAX_FIELDS:
            raise BadInput(f"more than {MAX_FIELDS} form fields")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.pending.append(data[start:end])
            return
        self._field += data[start:end]
        if len(self._field) > MAX_FIELD_BYTES:
            raise BadInput(f"form field {self._name!r} is over {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if not self._in_file:
            self.fields[self._name] = self._field.decode("utf-8", "replace")


def _write(fh: IO[bytes], chunks: list[bytes]) -> None:
    for chunk in chunks:
        fh.write(chunk)


async def _stream(request: Request, boundary: bytes, folder: Path) -> Upload:
    parts = _Parts()
    parser = MultipartParser(boundary, parts.callbacks())
    fh: IO[bytes] | None = None
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if parts.filename is not None and fh is None:
                fh = (folder / parts.filename).open("xb")
            if fh is not None and parts.pending:
                chunks, parts.pending = parts.pending, []
                await run_in_threadpool(_write, fh, chunks)
        parser.finalize()
    except FormParserError:
        raise BadInput("malformed multipart/form-data body") from None
    finally:
        if fh is not None:
            fh.close()
    if parts.filename is None:
        raise BadInput("no file in the upload")
    return Upload(folder / parts.filename, parts.fields)


async def _from_parsed_form(request: Request, folder: Path) -> Upload:
    form = await request.form()  # the form the CSRF check already parsed, not a second read of the body
    files = [v for v in form.values() if isinstance(v, UploadFile)]
    if len(files) != 1:
        raise BadInput("send one file at a time" if files else "no file in the upload")
    path = folder / safe_name(files[0].filename or "")
    with path.open("xb") as fh:
        await run_in_threadpool(shutil.copyfileobj, files[0].file, fh)
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != CSRF_FORM_FIELD}
    return Upload(path, fields)


def _form_already_read(request: Request) -> bool:
    """A signed-in browser that sends its CSRF token as a form field has had its form parsed by the CSRF check."""
    principal = getattr(request.state, "principal", None)
    return getattr(principal, "csrf_token", None) is not None and CSRF_HEADER not in request.headers


@asynccontextmanager
async def saved_upload(request: Request, uploads: Path) -> AsyncIterator[Upload]:
    """The request's one file, saved under `uploads` for the length of the `async with`."""
    kind, params = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise BadInput("send the file as multipart/form-data")
    uploads.mkdir(mode=0o700, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=uploads))
    try:
        if _form_already_read(request):
            yield await _from_parsed_form(request, folder)
        else:
            yield await _stream(request, params[b"boundary"], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
