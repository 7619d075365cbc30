"""Conversations between customers, the assistant and agents."""
