"""The webhook signature scheme: HMAC-SHA256 with the hook's secret over "<unix seconds>." + the raw body.

    X-Appliance-Signature: t=1718000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

The timestamp is signed with the body, so a captured request cannot be replayed later than the receiver's
tolerance (five minutes by default) or with another body. The HMAC key is the secret string as given to the admin
(`whsec_...`), UTF-8 encoded.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from appliance.errors import NotAuthenticated

SIGNATURE_HEADER = "X-Appliance-Signature"
EVENT_HEADER = "X-Appliance-Event"
DELIVERY_HEADER = "X-Appliance-Delivery"
SECRET_PREFIX = "whsec_"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300
# A header longer than this is not ours; refusing it early keeps a receiver from parsing junk of any size.
MAX_HEADER_CHARS = 1024


class SignatureInvalid(NotAuthenticated):
    """A webhook request whose signature header is malformed, does not match, or is outside the replay window."""

    code = "webhook_signature_invalid"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _key(secret: bytes | str) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: bytes | str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of f"{timestamp}." + body."""
    return hmac.new(_key(secret), f"{int(timestamp)}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes | str, timestamp: int, body: bytes) -> str:
    return f"t={int(timestamp)},{SCHEME}={sign(secret, timestamp, body)}"


def headers(secret: bytes | str, event: str, delivery_id: int, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header a delivery carries besides the transport's own."""
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(delivery_id),
        SIGNATURE_HEADER: signature_header(secret, timestamp, body),
    }


def _parse(header: str) -> tuple[int, list[str]]:
    if not header or len(header) > MAX_HEADER_CHARS:
        raise SignatureInvalid("missing or oversized signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureInvalid("malformed signature header: expected t=<unix seconds>,v1=<hex>")
        if name == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                raise SignatureInvalid("malformed signature header: bad timestamp")
            timestamp = int(value)
        elif name == SCHEME:
            signatures.append(value)
        # other schemes are ignored, so a later scheme can be added beside v1 without breaking receivers
    if timestamp is None or not signatures:
        raise SignatureInvalid("malformed signature header: expected t=<unix seconds>,v1=<hex>")
    return timestamp, signatures


def verify(
    secret: bytes | str, header: str, body: bytes, now: float, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> None:
    """Raise SignatureInvalid unless `header` signs `body` with `secret` at a time within tolerance_s of `now`
    (unix seconds). `body` must be the raw request body, byte for byte, before any JSON parsing."""
    timestamp, signatures = _parse(header)
    if abs(now - timestamp) > tolerance_s:
        raise SignatureInvalid(f"signature timestamp outside the {tolerance_s} s replay window")
    expected = sign(secret, timestamp, body)
    # bytes, not str: compare_digest refuses non-ASCII strings, and a forged header may carry any characters
    if not any(hmac.compare_digest(expected.encode(), c.encode("utf-8", "replace")) for c in signatures):
        raise SignatureInvalid("signature does not match the body")
