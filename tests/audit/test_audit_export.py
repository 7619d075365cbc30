"""Signed exports verify with nothing but the folder and the public key, and any tampering fails them."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.audit.export import export, verify_export
from appliance.crypto.signing import load_public_key
from appliance.errors import BadInput, Conflict
from appliance.instance import Instance
from appliance.paths import DataPaths
from tests.conftest import Seed, client_for


@pytest.fixture
def exported(inst: Instance, seed: Seed, tmp_path: Path) -> Path:
    admin = client_for(inst, Seed.email("admin"))
    for zone in ("Europe/Oslo", "Europe/Rome"):
        admin.put("/api/settings", json={"timezone": zone})
    out = tmp_path / "export"
    result = export(inst.db, inst.signing_key(), out)
    assert result.events > 10
    return out


def _public(inst: Instance) -> object:
    path = DataPaths(inst.settings.data_dir).audit_public_key
    return load_public_key(path.read_bytes(), str(path))


def test_export_verifies_with_the_public_key(inst: Instance, exported: Path) -> None:
    check = verify_export(exported, _public(inst))  # type: ignore[arg-type]
    assert check.ok and check.problem is None and not check.signer_from_export
    lines = (exported / "events.jsonl").read_text().splitlines()
    assert check.events == len(lines)


def test_changed_byte_in_events_fails(inst: Instance, exported: Path) -> None:
    path = exported / "events.jsonl"
    data = path.read_text()
    path.write_text(data.replace("Europe/Rome", "Europe/Roma", 1))
    check = verify_export(exported, _public(inst))  # type: ignore[arg-type]
    assert not check.ok and check.problem is not None


def test_removed_line_with_fixed_digest_fails_the_signature(inst: Instance, exported: Path) -> None:
    path = exported / "events.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    del lines[3]
    path.write_text("".join(lines))
    manifest = json.loads((exported / "manifest.json").read_text())
    manifest["files"]["events.jsonl"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest["events"] -= 1
    (exported / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    check = verify_export(exported, _public(inst))  # type: ignore[arg-type]
    assert not check.ok and "signature" in (check.problem or "")


def test_resigned_by_another_key_fails_against_the_real_key(inst: Instance, exported: Path) -> None:
    forger = Ed25519PrivateKey.generate()
    manifest = (exported / "manifest.json").read_bytes()
    (exported / "manifest.sig").write_bytes(base64.b64encode(forger.sign(manifest)))
    assert not verify_export(exported, _public(inst)).ok  # type: ignore[arg-type]
    # Checked only against the key inside the export, it would pass: which is why the real key is asked for.
    from appliance.crypto.signing import public_pem

    (exported / "signing-key.pub").write_bytes(public_pem(forger.public_key()))
    loose = verify_export(exported)
    assert loose.ok and loose.signer_from_export


def test_time_range_and_bad_input(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    everything = export(inst.db, inst.signing_key(), tmp_path / "all")
    future = export(inst.db, inst.signing_key(), tmp_path / "none", since="2999-01-01")
    assert everything.events > 0 and future.events == 0
    assert verify_export(tmp_path / "none", _public(inst)).ok  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="not a date"):
        export(inst.db, inst.signing_key(), tmp_path / "bad", since="yesterday-ish")
    with pytest.raises(Conflict):
        export(inst.db, inst.signing_key(), tmp_path / "all")
    with pytest.raises(BadInput, match="not an audit export"):
        verify_export(tmp_path)
