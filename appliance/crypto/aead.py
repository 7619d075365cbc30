"""AES-256-GCM for files kept outside the database (indexes, backups): a versioned header, a random nonce."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.errors import WrongKey

MAGIC = b"APLENC1\0"
NONCE_BYTES = 12


def seal(key: bytes, plaintext: bytes, associated_data: bytes = b"") -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, MAGIC + associated_data)


def unseal(key: bytes, blob: bytes, associated_data: bytes = b"") -> bytes:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + NONCE_BYTES + 16:
        raise WrongKey("cannot decrypt: not an appliance-encrypted file")
    nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], MAGIC + associated_data)
    except InvalidTag:
        raise WrongKey("cannot decrypt: wrong key or the file was altered") from None


def write_sealed(path: Path, key: bytes, plaintext: bytes, associated_data: bytes = b"") -> None:
    """Atomic: the old file stays whole until the new one is fully on disk."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(seal(key, plaintext, associated_data))
        while view:  # one write may take only part of a large buffer
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_sealed(path: Path, key: bytes, associated_data: bytes = b"") -> bytes:
    return unseal(key, path.read_bytes(), associated_data)
