"""Escalation rules: when a conversation is tagged, or handed to a person or a team, and why."""
