"""Zip exports are read defensively: unsafe paths, links, encrypted and oversized entries, zip bombs, lying headers,
text that is not UTF-8 and archives nested too deep each fail alone with their reason while the good entries import;
an archive that cannot be read at all, or is too big as a whole, is refused with a message naming it."""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from appliance.errors import BadInput
from appliance.instance import Instance, cli_context
from appliance.knowledge.importers import archive, common, formats
from tests.conftest import Seed
from tests.knowledge.importing import by_external_id, failures

GOOD = "Reset your PIN 5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f.md"


def make_zip(target: Path | io.BytesIO, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)


def zip_bytes(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    make_zip(buffer, entries)
    return buffer.getvalue()


def import_zip(inst: Instance, org_id: int, path: Path) -> common.ImportReport:
    return common.apply(inst.db, cli_context(org_id), org_id, formats.read_path(path), dry_run=False)


def test_unsafe_entries_fail_alone(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link 0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a.md")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    locked = "locked 0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b.md"
    data = zip_bytes([
        (GOOD, b"# Reset your PIN\n\nIn the app.\n"),
        ("../evil.md", b"# Evil\n"),
        ("/etc/evil.md", b"# Evil\n"),
        ("C:/Users/evil.md", b"# Evil\n"),
        ("docs\\..\\..\\evil.md", b"# Evil\n"),
        (link, b"/etc/passwd"),
        (locked, b"# Locked\n"),
    ])  # fmt: skip
    path = tmp_path / "export.zip"
    path.write_bytes(patch_directory(data, locked, 8, struct.pack("<H", 0x1)))  # flag bit 0: encrypted
    report = import_zip(inst, seed.north, path)
    assert report.counts == {"created": 1, "updated": 0, "unchanged": 0, "failed": 6}
    unsafe = "unsafe path (absolute, drive letter or '..'): not read"
    assert failures(report) == {
        "export.zip/../evil.md": unsafe,
        "export.zip//etc/evil.md": unsafe,
        "export.zip/C:/Users/evil.md": unsafe,
        "export.zip/docs\\..\\..\\evil.md": unsafe,
        "export.zip/link 0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a.md": "symbolic link: not followed",
        "export.zip/locked 0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b.md": "encrypted: cannot be read",
    }
    assert list(by_external_id(inst, seed.north)) == ["notion:5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"]


def patch_directory(data: bytes, name: str, offset: int, value: bytes) -> bytes:
    """Rewrite a field of the entry's central-directory header (what zipfile trusts), as a forger would."""
    end = data.rindex(b"PK\x05\x06")
    (at,) = struct.unpack("<I", data[end + 16 : end + 20])  # where the central directory starts
    while data[at + 46 : at + 46 + len(name)] != name.encode():
        at = data.index(b"PK\x01\x02", at + 4)
    return data[: at + offset] + value + data[at + offset + len(value) :]


def test_bombs_oversized_lying_and_non_utf8_entries_fail_alone(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    limit = common.MAX_FILE_BYTES
    honest = zip_bytes([
        (GOOD, b"# Reset your PIN\n\nIn the app.\n"),
        ("bomb 01010101010101010101010101010101.md", b"a" * (64 * 1024 * 1024)),  # 64 MiB from about 64 KiB
        ("dense 02020202020202020202020202020202.md", b"a" * (limit - 1024)),  # under the size limit, not the ratio
        ("big 03030303030303030303030303030303.md", os.urandom((limit + 2) // 2).hex().encode()[: limit + 1]),
        ("liar 04040404040404040404040404040404.md", os.urandom(50_000).hex().encode()),
        ("latin 05050505050505050505050505050505.md", "# Café\n".encode("latin-1")),
    ])  # fmt: skip
    path = tmp_path / "export.zip"
    path.write_bytes(patch_directory(honest, "liar 04040404040404040404040404040404.md", 24, struct.pack("<I", 10)))
    report = import_zip(inst, seed.north, path)
    assert report.counts == {"created": 1, "updated": 0, "unchanged": 0, "failed": 5}
    reasons = failures(report)
    assert reasons["export.zip/bomb 01010101010101010101010101010101.md"] == (
        f"expands to {64 * 1024 * 1024} bytes, over the {limit}-byte limit"
    )
    dense = reasons["export.zip/dense 02020202020202020202020202020202.md"]
    assert dense.startswith("compression ratio ") and dense.endswith(":1 is over the 100:1 limit (refused as a zip bomb)")
    assert reasons["export.zip/big 03030303030303030303030303030303.md"] == (
        f"expands to {limit + 1} bytes, over the {limit}-byte limit"
    )
    # Its header says 10 bytes: the reader stops there, and the checksum gives the lie away.
    assert reasons["export.zip/liar 04040404040404040404040404040404.md"].startswith("damaged entry (Bad CRC-32")
    assert reasons["export.zip/latin 05050505050505050505050505050505.md"] == "not UTF-8 text (byte 5)"
    assert by_external_id(inst, seed.north)["notion:5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"].latest.title == "Reset your PIN"


def test_nested_archives_open_one_level_deep(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    part1 = zip_bytes([(GOOD, b"# Reset your PIN\n\nIn the app.\n")])
    deeper = zip_bytes([("Hidden 06060606060606060606060606060606.md", b"# Hidden\n")])
    part2 = zip_bytes([("deeper.zip", deeper), ("Fees 07070707070707070707070707070707.md", b"# Fees\n\nNone.\n")])
    path = tmp_path / "Export-1.zip"
    make_zip(path, [
        ("Export-1-Part-1.zip", part1), ("Export-1-Part-2.zip", part2), ("Export-1-Part-3.zip", b"not a zip"),
    ])  # fmt: skip
    report = import_zip(inst, seed.north, path)
    assert report.counts == {"created": 2, "updated": 0, "unchanged": 0, "failed": 2}
    reasons = failures(report)
    assert reasons["Export-1.zip/Export-1-Part-2.zip/deeper.zip"] == (
        "an archive nested more than one level deep: not opened"
    )
    assert reasons["Export-1.zip/Export-1-Part-3.zip"].startswith("the nested archive is not a readable zip archive")
    assert {a.latest.title for a in by_external_id(inst, seed.north).values()} == {"Reset your PIN", "Fees"}


def test_archives_that_cannot_be_read_are_refused_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = tmp_path / "notes.zip"
    text.write_text("these are notes, not a zip")
    with pytest.raises(BadInput, match=r"^notes.zip is not a readable zip archive \(File is not a zip file\)$"):
        formats.read_path(text)
    whole = zip_bytes([(GOOD, b"# Reset your PIN\n\n" + b"In the app.\n" * 500)])
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BadInput, match="^cut.zip is not a readable zip archive"):
        formats.read_path(cut)

    crowded = tmp_path / "crowded.zip"
    make_zip(crowded, [(f"page {i}.md", b"") for i in range(archive.MAX_ENTRIES + 1)])
    with pytest.raises(BadInput, match="^crowded.zip holds 10001 entries, over the 10000-entry limit$"):
        formats.read_path(crowded)

    # Many entries, each within its own limit, that add up to more than the archive may expand to.
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 10_000)
    heavy = tmp_path / "heavy.zip"
    make_zip(heavy, [(f"page {i} {i:032x}.md", b"x" * 4000) for i in range(3)])
    with pytest.raises(BadInput, match="^heavy.zip expands to 12000 bytes of text, over the 10000-byte limit$"):
        formats.read_path(heavy)


def test_archive_names_leave_out_refused_entries(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    make_zip(path, [("ok/page.md", b"x"), ("../up.md", b"x"), ("inner.zip", zip_bytes([("in.md", b"y")]))])
    with archive.open_zip(path) as zipped:
        assert zipped.names == ["ok/page.md", "in.md"]
        members = list(zipped.read(lambda name: name.endswith(".md")))
    assert [(m.path, m.text, m.error) for m in members] == [
        ("../up.md", "", "unsafe path (absolute, drive letter or '..'): not read"),
        ("ok/page.md", "x", None),
        ("inner.zip/in.md", "y", None),
    ]
