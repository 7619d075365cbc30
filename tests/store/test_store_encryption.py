"""Everything under the data dir is ciphertext: a canary written through the API is not in any file."""

from __future__ import annotations

from pathlib import Path

from appliance.instance import Instance
from appliance.paths import DataPaths
from tests.conftest import PASSWORD, Seed, client_for

CANARY = "CANARY-7f3a9c-Zebra-Quokka"


def _files_with(root: Path, needle: bytes, skip: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents and needle in path.read_bytes():
            found.append(path)
    return found


def test_canary_never_in_plaintext(inst: Instance, seed: Seed) -> None:
    admin = client_for(inst, Seed.email("admin"))
    made = admin.post(
        "/api/users",
        json={"email": "canary.person@north.example", "password": PASSWORD, "role": "agent", "name": CANARY},
    )
    assert made.status_code == 201
    assert admin.put("/api/settings", json={"support_email": f"{CANARY}@north.example"}).status_code == 200
    # The canary really is stored (readable through the key) ...
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE name = ?", (CANARY,)).fetchone()[0] == 1
    paths = DataPaths(inst.settings.data_dir)
    wal = Path(str(paths.database) + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the change still sits in the WAL: scan it too
    # ... and no file holds it in clear, in UTF-8 or UTF-16.
    for needle in (CANARY.encode(), CANARY.encode("utf-16-le"), b"canary.person"):
        assert _files_with(paths.root, needle, skip=paths.keys) == []
    inst.close()
    for needle in (CANARY.encode(), b"canary.person"):
        assert _files_with(paths.root, needle, skip=paths.keys) == []
    assert not paths.database.read_bytes().startswith(b"SQLite format 3")
