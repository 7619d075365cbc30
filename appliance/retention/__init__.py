"""Retention: customer data is kept for a set time, then purged, and every purge is audited (counts, never text)."""
