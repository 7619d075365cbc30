"""The database key: a random 256-bit key in a 0600 file, or one derived from a passphrase with argon2id.

The passphrase mode is for sites that keep the key off the box: only the argon2id salt and cost live in the data
dir, and the passphrase arrives at start-up from a file (`db_passphrase_file`, e.g. on a mounted token) or a
systemd credential.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.errors import ConfigError, DataDirError
from appliance.paths import DataPaths

KEY_BYTES = 32
# Passphrase KDF cost: stronger than the password-hash minimum because it guards the whole database and runs
# once per process start, not once per login.
KDF_TIME_COST = 3
KDF_MEMORY_KIB = 64 * 1024
KDF_PARALLELISM = 1
MIN_PASSPHRASE_LENGTH = 16


def write_secret_file(path: Path, data: bytes) -> None:
    """Create a new file readable by the owner only; never overwrite an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def create_raw_key(paths: DataPaths) -> bytes:
    key = secrets.token_bytes(KEY_BYTES)
    write_secret_file(paths.db_key, key.hex().encode() + b"\n")
    return key


def derive_key(passphrase: str, salt: bytes, time_cost: int, memory_kib: int, parallelism: int) -> bytes:
    return hash_secret_raw(
        passphrase.encode("utf-8"), salt, time_cost, memory_kib, parallelism, KEY_BYTES, Type.ID
    )


def create_passphrase_key(paths: DataPaths, passphrase: str) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise ConfigError(f"database passphrase must be at least {MIN_PASSPHRASE_LENGTH} characters")
    salt = secrets.token_bytes(16)
    params = {
        "kdf": "argon2id",
        "salt": salt.hex(),
        "time_cost": KDF_TIME_COST,
        "memory_kib": KDF_MEMORY_KIB,
        "parallelism": KDF_PARALLELISM,
    }
    write_secret_file(paths.kdf_params, json.dumps(params, indent=2).encode() + b"\n")
    return derive_key(passphrase, salt, KDF_TIME_COST, KDF_MEMORY_KIB, KDF_PARALLELISM)


def read_passphrase(passphrase_file: Path | None) -> str:
    candidates: list[Path] = []
    if passphrase_file is not None:
        candidates.append(passphrase_file)
    elif os.environ.get("CREDENTIALS_DIRECTORY"):
        candidates.append(Path(os.environ["CREDENTIALS_DIRECTORY"]) / "db_passphrase")
    for candidate in candidates:
        try:
            text = candidate.read_text("utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read database passphrase from {candidate}: {exc.strerror}") from None
        if text:
            return text
        raise ConfigError(f"database passphrase file {candidate} is empty")
    raise ConfigError(
        "this installation uses a passphrase-derived key: set APPLIANCE_DB_PASSPHRASE_FILE "
        "or provide the systemd credential db_passphrase"
    )


def load_db_key(paths: DataPaths, passphrase_file: Path | None) -> bytes:
    if paths.db_key.exists():
        try:
            text = paths.db_key.read_text("ascii").strip()
            key = bytes.fromhex(text)
        except (OSError, UnicodeDecodeError, ValueError):
            raise ConfigError(f"key file {paths.db_key} is unreadable or malformed") from None
        if len(key) != KEY_BYTES:
            raise ConfigError(f"key file {paths.db_key} does not hold a 256-bit key")
        return key
    if paths.kdf_params.exists():
        try:
            params = json.loads(paths.kdf_params.read_text("utf-8"))
            salt = bytes.fromhex(params["salt"])
            cost = (int(params["time_cost"]), int(params["memory_kib"]), int(params["parallelism"]))
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"key parameters {paths.kdf_params} are unreadable or malformed") from None
        return derive_key(read_passphrase(passphrase_file), salt, *cost)
    raise DataDirError(f"no database key in {paths.keys}: neither db.key nor kdf.json exists")


def subkey(master: bytes, purpose: str) -> bytes:
    """A key for one purpose (file encryption, signing-key wrapping), derived so the master is never reused."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode()).derive(master)
