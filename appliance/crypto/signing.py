"""Ed25519 signatures for audit exports. The private key is stored wrapped with a key derived from the database
key, so a copy of the key file alone signs nothing."""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.crypto.keys import subkey, write_secret_file
from appliance.errors import BadInput, ConfigError


def _wrapping_password(db_key: bytes) -> bytes:
    return subkey(db_key, "audit-signing-key-wrap").hex().encode()


def create_signing_key(private_path: Path, public_path: Path, db_key: bytes) -> Ed25519PublicKey:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_wrapping_password(db_key)),
    )
    write_secret_file(private_path, pem)
    public = private.public_key()
    public_path.write_bytes(public_pem(public))
    public_path.chmod(0o644)
    return public


def load_signing_key(private_path: Path, db_key: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=_wrapping_password(db_key))
    except (OSError, ValueError, TypeError):
        raise ConfigError(f"cannot load the audit signing key {private_path}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{private_path} is not an Ed25519 key")
    return key


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(data: bytes, source: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise BadInput(f"{source}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BadInput(f"{source}: not an Ed25519 public key")
    return key


def verify_signature(public: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True
