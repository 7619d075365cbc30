"""Zip exports (Notion, Confluence), read safely.

Nothing is extracted to disk: entries are read into memory through a bounded reader, so a header that lies about
an entry's size cannot make it expand past its limit. Per archive: at most MAX_ENTRIES entries and
MAX_TOTAL_BYTES read in all. Per entry: no absolute path, drive letter or `..`; no symbolic link; no encryption;
at most the caller's byte limit (MAX_FILE_BYTES for articles); a compression ratio of at most MAX_RATIO. A zip
inside the zip (Notion wraps large exports that way) is opened one level deep, never deeper.

An entry that breaks a rule, or is damaged, or is not UTF-8, fails alone with its reason and the rest are read;
a file that is not a readable zip at all is a BadInput naming it.
"""

from __future__ import annotations

import io
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from appliance.errors import BadInput
from appliance.knowledge.importers.common import MAX_FILE_BYTES

MAX_ENTRIES = 10_000
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_NESTED_BYTES = 128 * 1024 * 1024  # a zip inside the zip is held in memory while it is read
MAX_RATIO = 100  # text compresses 3-20:1; deflate tops out near 1032:1, which is what bombs use
RATIO_CHECKED_ABOVE = 64 * 1024  # a small entry may compress well (a page of empty table cells) and cost nothing
MAX_DIRECTORY_BYTES = MAX_ENTRIES * 1024  # the central directory is parsed whole before any limit can apply
_CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Member:
    """One entry: its text, or the reason it was not read."""

    name: str  # path inside the zip that holds it
    container: str = ""  # the nested zip it sits in, "" for the archive itself
    text: str = ""
    error: str | None = None

    @property
    def path(self) -> str:
        return f"{self.container}/{self.name}" if self.container else self.name


@dataclass(frozen=True)
class _Entry:
    zf: zipfile.ZipFile
    info: zipfile.ZipInfo
    container: str


def unsafe_name(name: str) -> bool:
    parts = re.split(r"[/\\]", name)
    return "\x00" in name or name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in parts


def _refusal(info: zipfile.ZipInfo) -> str | None:
    """Reasons an entry is refused whatever it holds."""
    if unsafe_name(info.filename):
        return "unsafe path (absolute, drive letter or '..'): not read"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link: not followed"
    if info.flag_bits & 0x1:
        return "encrypted: cannot be read"
    return None


def _oversize(info: zipfile.ZipInfo, limit: int) -> str | None:
    if info.file_size > limit:
        return f"expands to {info.file_size} bytes, over the {limit}-byte limit"
    if info.file_size > RATIO_CHECKED_ABOVE and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        ratio = info.file_size // max(info.compress_size, 1)
        return f"compression ratio {ratio}:1 is over the {MAX_RATIO}:1 limit (refused as a zip bomb)"
    return None


def _directory_too_large(fh: BinaryIO) -> str | None:
    """Read the end-of-central-directory record before zipfile parses the whole directory into memory."""
    fh.seek(0, io.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - 65557))  # the record (22 bytes) plus the longest comment
    tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None  # not a zip: zipfile says so in its own words
    entries, directory = struct.unpack("<HI", tail[at + 10 : at + 16])
    if entries > MAX_ENTRIES:  # 0xFFFF (zip64, more than 65,534) is over the limit too
        return f"holds {entries} entries, over the {MAX_ENTRIES}-entry limit"
    if directory > MAX_DIRECTORY_BYTES:
        return f"has a {directory}-byte directory, over the {MAX_DIRECTORY_BYTES}-byte limit"
    return None


def _open(fh: BinaryIO, label: str) -> zipfile.ZipFile:
    try:
        too_large = _directory_too_large(fh)
        if too_large is not None:
            raise BadInput(f"{label} {too_large}")
        fh.seek(0)
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise BadInput(f"{label} is not a readable zip archive ({exc})") from None
    if len(zf.infolist()) > MAX_ENTRIES:
        zf.close()
        raise BadInput(f"{label} holds {len(zf.infolist())} entries, over the {MAX_ENTRIES}-entry limit")
    return zf


class Archive:
    """An opened zip export. `names` lists every entry (nested ones too) for telling formats apart; `read` yields
    the wanted entries' text and every refused entry's reason."""

    def __init__(self, fh: BinaryIO, label: str) -> None:
        self.label = label
        self._files: list[BinaryIO] = [fh]
        self._zips: list[zipfile.ZipFile] = []
        self._entries: list[_Entry] = []
        self._refused: list[Member] = []
        self._read_bytes = 0
        outer = _open(fh, label)
        self._zips.append(outer)
        for info in outer.infolist():
            if info.is_dir():
                continue
            if info.filename.lower().endswith(".zip") and _refusal(info) is None:
                self._open_nested(outer, info)
            else:
                self._add(_Entry(outer, info, ""))

    def _add(self, entry: _Entry) -> None:
        reason = _refusal(entry.info)
        if reason is None:
            self._entries.append(entry)
        else:
            self._refused.append(Member(entry.info.filename, entry.container, error=reason))

    def _open_nested(self, outer: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        data, error = self._read(_Entry(outer, info, ""), MAX_NESTED_BYTES)
        if error is None:
            try:
                inner = _open(io.BytesIO(data), "the nested archive")
            except BadInput as exc:
                error = exc.message
        if error is not None:
            self._refused.append(Member(info.filename, error=error))
            return
        if len(self._entries) + len(inner.infolist()) > MAX_ENTRIES:
            self._refused.append(Member(info.filename, error=f"with it the archive is over {MAX_ENTRIES} entries"))
            return
        self._zips.append(inner)
        for nested in inner.infolist():
            if nested.is_dir():
                continue
            if nested.filename.lower().endswith(".zip"):
                reason = "an archive nested more than one level deep: not opened"
                self._refused.append(Member(nested.filename, info.filename, error=reason))
            else:
                self._add(_Entry(inner, nested, info.filename))

    @property
    def names(self) -> list[str]:
        return [e.info.filename for e in self._entries]

    def _read(self, entry: _Entry, limit: int) -> tuple[bytes, str | None]:
        reason = _oversize(entry.info, limit)
        if reason is not None:
            return b"", reason
        budget = min(limit, MAX_TOTAL_BYTES - self._read_bytes)
        out = bytearray()
        try:
            with entry.zf.open(entry.info) as fh:
                while chunk := fh.read(_CHUNK):
                    out += chunk
                    if len(out) > budget:
                        if budget < limit:
                            return b"", f"the archive expands past the {MAX_TOTAL_BYTES}-byte total limit"
                        return b"", f"expands past the {limit}-byte limit (its header says {entry.info.file_size})"
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            return b"", f"damaged entry ({exc})"
        finally:
            self._read_bytes += len(out)
        return bytes(out), None

    def read(self, wanted: Callable[[str], bool], limit: int = MAX_FILE_BYTES) -> Iterator[Member]:
        """Refused entries first (whatever their names), then each wanted entry decoded as UTF-8 text."""
        yield from self._refused
        chosen = [e for e in self._entries if wanted(e.info.filename)]
        declared = sum(e.info.file_size for e in chosen if e.info.file_size <= limit)  # larger ones are not read
        if declared > MAX_TOTAL_BYTES - self._read_bytes:
            raise BadInput(f"{self.label} expands to {declared} bytes of text, over the {MAX_TOTAL_BYTES}-byte limit")
        for entry in chosen:
            data, error = self._read(entry, limit)
            if error is not None:
                yield Member(entry.info.filename, entry.container, error=error)
                continue
            try:
                text = data.decode("utf-8").lstrip("\ufeff")
            except UnicodeDecodeError as exc:
                yield Member(entry.info.filename, entry.container, error=f"not UTF-8 text (byte {exc.start})")
                continue
            yield Member(entry.info.filename, entry.container, text)

    def close(self) -> None:
        for zf in self._zips:
            zf.close()
        for fh in self._files:
            fh.close()


@contextmanager
def open_zip(path: Path) -> Iterator[Archive]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise BadInput(f"cannot read {path.name}: {exc.strerror}") from None
    try:
        archive = Archive(fh, path.name)
    except BaseException:
        fh.close()
        raise
    try:
        yield archive
    finally:
        archive.close()
