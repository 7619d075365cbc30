"""Hybrid retrieval: lexical (FTS5) and dense (FAISS) legs and their fusion."""
