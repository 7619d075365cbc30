"""Outbound webhooks: signed HTTP notifications of conversation events to the organisation's own systems.

The conversation code calls `outbox.enqueue` inside its write transaction (one delivery row per subscribed hook, so
an event is never lost); `delivery.deliver_due` sends them with retries; `manage` is the admin's CRUD and the
delivery log; `signing` is the signature scheme, shared with receivers (docs/webhooks.md).
"""
