"""argon2id password hashes (argon2-cffi) and the password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from appliance.config import Settings
from appliance.errors import WeakPassword

MAX_LENGTH = 1024  # bounds the hashing work one request can ask for


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self.min_length = settings.password_min_length
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verified against when the email is unknown, so a miss costs as much time as a wrong password.
        self._decoy = self._hasher.hash("decoy password that never matches")

    def check_policy(self, password: str, email: str = "") -> None:
        if len(password) < self.min_length:
            raise WeakPassword(f"password must be at least {self.min_length} characters")
        if len(password) > MAX_LENGTH:
            raise WeakPassword(f"password must be at most {MAX_LENGTH} characters")
        if len(set(password)) < 4:
            raise WeakPassword("password must use at least 4 different characters")
        local = email.split("@")[0].lower()
        if local and len(local) >= 4 and local in password.lower():
            raise WeakPassword("password must not contain the email address")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        if len(password) > MAX_LENGTH:
            return False
        try:
            return self._hasher.verify(stored_hash or self._decoy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
