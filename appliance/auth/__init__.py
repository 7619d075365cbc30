"""Identity and access: organisations, users, roles and permissions, sessions, API keys."""
