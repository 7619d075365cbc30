"""Encrypted storage: the SQLCipher database, its migrations and the one write path."""

from appliance.store.db import Connection, Database, now_iso, parse_iso, unique_violation

__all__ = ["Connection", "Database", "now_iso", "parse_iso", "unique_violation"]
