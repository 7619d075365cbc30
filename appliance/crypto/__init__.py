"""Keys and cryptography: the database key, AES-256-GCM for files outside the database, Ed25519 signatures."""
