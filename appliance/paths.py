"""Where everything lives inside the data dir. One place, so backups and retention know the whole list."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import DataDirError


@dataclass(frozen=True)
class DataPaths:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "appliance.db"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def db_key(self) -> Path:
        """Raw 256-bit database key, hex, mode 0600 (absent when the key is derived from a passphrase)."""
        return self.keys / "db.key"

    @property
    def kdf_params(self) -> Path:
        """argon2id salt and cost for passphrase-derived keys (not secret)."""
        return self.keys / "kdf.json"

    @property
    def audit_signing_key(self) -> Path:
        return self.keys / "audit-signing.pem"

    @property
    def audit_public_key(self) -> Path:
        return self.keys / "audit-signing.pub"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def uploads(self) -> Path:
        """Uploaded files while a request works on them (knowledge-base imports); each is deleted afterwards."""
        return self.root / "uploads"

    @property
    def index(self) -> Path:
        """Dense retrieval indexes, one AES-256-GCM sealed file per organisation (a cache of the database)."""
        return self.root / "index"

    @property
    def task_queue(self) -> Path:
        """The background task queue (SQLite, unencrypted: it carries ids only, never customer or article text)."""
        return self.root / "queue.db"

    def require_existing(self) -> None:
        """Fail with one clear line when the data dir is missing, is not a directory, or is read-only."""
        if not self.root.exists():
            raise DataDirError(f"data dir {self.root} does not exist; run `appliance init` first")
        if not self.root.is_dir():
            raise DataDirError(f"data dir {self.root} is not a directory")
        if not self.database.exists():
            raise DataDirError(f"data dir {self.root} holds no appliance database; run `appliance init` first")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise DataDirError(f"data dir {self.root} is not writable by this user")
