"""Background tasks, on huey with its own SQLite queue file in the data dir.

A task message carries ids only (an organisation id), never article or customer text: the queue file is outside
the encrypted database. The work itself is durable in the database (the index outbox), so a lost or failed message
costs nothing: the next message for the organisation, or the sweep when the consumer starts, picks it up.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from huey import SqliteHuey, crontab
from huey.consumer import Consumer

from appliance.analytics import rollup
from appliance.audit.events import Context
from appliance.instance import Instance
from appliance.retention import conversations
from appliance.webhooks import delivery

log = logging.getLogger("appliance.tasks")


class _EmbeddedConsumer(Consumer):
    """Worker threads inside the web process: the host (uvicorn) owns the signal handlers, not the consumer."""

    def _set_signal_handlers(self) -> None:
        pass


class Tasks:
    def __init__(self, inst: Instance, immediate: bool = False) -> None:
        """immediate: run each task in the caller's thread as it is enqueued (tests, and one-shot commands)."""
        self.inst = inst
        queue_file = inst.paths.task_queue
        if not immediate and not queue_file.exists():
            os.close(os.open(queue_file, os.O_WRONLY | os.O_CREAT, 0o600))
        self.huey = SqliteHuey("appliance", filename=str(queue_file), immediate=immediate, results=False)
        self._consumer: Consumer | None = None

        @self.huey.task(retries=2, retry_delay=5)
        def index_org(org_id: int) -> None:
            run = inst.knowledge.indexer.process_pending(org_id)
            if run.changed:
                log.info("indexed", extra={"fields": {"org_id": org_id, "articles": run.changed,
                                                       "chunks": run.chunks_added,
                                                       "flagged": len(run.flagged)}})  # fmt: skip

        self._index_org: Any = index_org

        @self.huey.periodic_task(crontab(hour="3", minute="17"))
        def purge_expired() -> None:
            purged = conversations.purge(inst.db, Context("system"), inst.settings.conversation_retention_days)
            total = sum(p.conversations for p in purged)
            if total:
                log.info("retention purge", extra={"fields": {"conversations": total}})

        self.purge_expired: Any = purge_expired

        # Every minute: retries fall due by the clock, not by any message. The message carries nothing at all;
        # the deliveries (and any customer text in their payloads) stay in the encrypted database.
        @self.huey.periodic_task(crontab(minute="*"))
        def deliver_webhooks() -> None:
            run = delivery.deliver_due(inst.db, timeout_s=inst.settings.webhook_timeout_s,
                                       max_attempts=inst.settings.webhook_max_attempts)  # fmt: skip
            if run.attempted:
                log.info("webhooks sent", extra={"fields": {"attempted": run.attempted, "delivered": run.delivered,
                                                             "retrying": run.retrying, "failed": run.failed}})  # fmt: skip

        self._deliver_webhooks: Any = deliver_webhooks

        # Every 15 minutes: each organisation's rollups for today, yesterday and the days changed since the last run.
        @self.huey.periodic_task(crontab(minute="*/15"))
        def rollup_analytics() -> None:
            runs = rollup.rollup_all(inst.db, retention_days=inst.settings.conversation_retention_days,
                                     idle_hours=inst.settings.resolution_idle_hours)
            log.info("analytics rolled up", extra={"fields": {"orgs": len(runs),
                                                               "days": sum(len(r.days) for r in runs)}})  # fmt: skip

        self.rollup_analytics: Any = rollup_analytics

    def index_org(self, org_id: int) -> None:
        """Bring the organisation's retrieval index up to date with its articles."""
        try:
            self._index_org(int(org_id))
        except Exception:  # the outbox keeps the work; the next message or the start-up sweep retries it
            log.exception("index task failed", extra={"fields": {"org_id": org_id}})

    def deliver_webhooks(self) -> None:
        """Send the webhook deliveries that are due (call it after a change that queued some)."""
        try:
            self._deliver_webhooks()
        except Exception:  # the deliveries stay pending in the database; the periodic run retries them
            log.exception("webhook delivery task failed")

    def sweep(self) -> None:
        """Queue the organisations with index work left over (after a restart or a crash)."""
        for org_id in self.inst.knowledge.indexer.pending_orgs():
            self.index_org(org_id)

    def start(self, workers: int = 1) -> None:
        """Run the consumer in background threads of this process (it shares the in-memory indexes)."""
        if self.huey.immediate or self._consumer is not None:
            return
        self._consumer = _EmbeddedConsumer(
            self.huey, workers=workers, worker_type="thread", periodic=True, max_delay=1.0, shutdown_timeout=30
        )
        self._consumer.start()
        self.sweep()

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None
