"""Send the webhook deliveries that are due, with retries.

A worker claims one row at a time with a conditional UPDATE (its `next_attempt_at` moves to the end of a lease,
guarded by the value it read), so two runs, in one process or two, never send the same row at once; a run that
dies mid-send leaves the row to be retried when the lease ends. The HTTP call runs outside any transaction; each
result is written in its own short one, again guarded by the lease. Delivery is at least once: a receiver
deduplicates on the event id (or the X-Appliance-Delivery header).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from appliance.store import Database
from appliance.webhooks import signing
from appliance.webhooks.outbox import iso

# Seconds to wait after the 1st, 2nd, ... failed attempt; the last step repeats. With the default 8 attempts an
# event is retried for about 11 hours (30 s + 2 min + 10 min + 30 min + 1 h + 3 h + 6 h), enough to ride out a
# receiver's overnight maintenance window.
BACKOFF_S = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
# Attempts per run: a run is bounded, and the periodic task runs every minute.
BATCH = 50
MAX_ERROR_CHARS = 200
USER_AGENT = "support-appliance-webhooks/1"


def backoff_s(attempts: int) -> int:
    """The wait after `attempts` failed attempts (attempts >= 1)."""
    return BACKOFF_S[min(max(attempts, 1), len(BACKOFF_S)) - 1]


def lease_s(timeout_s: float) -> float:
    # httpx applies the timeout to each phase (pool, connect, write, read), so one attempt can take up to four
    # times it; the margin covers the result's write.
    return 4 * timeout_s + 30


@dataclass(frozen=True)
class DeliveryRun:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0  # failed this time, tried again later
    failed: int = 0  # failed for the last time
    skipped: int = 0  # claimed by another run meanwhile, or its lease ended before the result was written


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _send(http: httpx.Client, row: Any, timestamp: int, timeout_s: float) -> _Outcome:
    body = str(row["payload"]).encode("utf-8")
    headers = signing.headers(str(row["secret"]), str(row["event"]), int(row["id"]), timestamp, body)
    try:
        # Streamed and never read: only the status matters, and a receiver cannot make us buffer a large reply.
        # Redirects are not followed: a signed event goes to the configured URL or nowhere.
        with http.stream("POST", str(row["url"]), content=body, headers=headers, timeout=timeout_s,
                         follow_redirects=False) as response:  # fmt: skip
            code = response.status_code
    except httpx.TimeoutException:
        return _Outcome(None, f"timed out after {timeout_s:g} s")
    except httpx.ConnectError as exc:
        return _Outcome(None, _short(f"connection failed: {exc}"))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _Outcome(None, _short(f"{type(exc).__name__}: {exc}"))
    if 200 <= code < 300:
        return _Outcome(code, None)
    note = " (redirects are not followed)" if 300 <= code < 400 else ""
    return _Outcome(code, f"HTTP {code}{note}")


def _claim(db: Database, delivery_id: int, seen: str, lease_until: datetime) -> str | None:
    lease = iso(lease_until)
    with db.write() as conn:
        claimed = conn.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending'"
            " AND next_attempt_at = ?", (lease, delivery_id, seen),
        ).rowcount  # fmt: skip
    return lease if claimed == 1 else None


def _record(db: Database, delivery_id: int, lease: str, outcome: _Outcome, at: datetime, max_attempts: int) -> str:
    """Write one attempt's result; the delivery's status afterwards ("skipped" when the claim was lost)."""
    with db.write() as conn:
        row = conn.execute(
            "SELECT attempts FROM webhook_deliveries WHERE id = ? AND status = 'pending' AND next_attempt_at = ?",
            (delivery_id, lease),
        ).fetchone()
        if row is None:  # the lease ran out and another run took the row over, or the hook was deleted meanwhile
            return "skipped"
        attempts = int(row[0]) + 1
        if outcome.ok:
            conn.execute(
                "UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, delivered_at = ?,"
                " next_attempt_at = ?, last_status_code = ?, last_error = NULL WHERE id = ?",
                (attempts, iso(at), iso(at), outcome.status_code, delivery_id),
            )  # fmt: skip
            return "delivered"
        status = "failed" if attempts >= max_attempts else "pending"
        retry_at = at if status == "failed" else at + timedelta(seconds=backoff_s(attempts))
        conn.execute(
            "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_status_code = ?,"
            " last_error = ? WHERE id = ?",
            (status, attempts, iso(retry_at), outcome.status_code, outcome.error, delivery_id),
        )  # fmt: skip
        return "failed" if status == "failed" else "retrying"


def _due(db: Database, now: datetime, after_id: int, skip_hooks: set[int], limit: int) -> list[Any]:
    skip = ",".join(str(int(h)) for h in sorted(skip_hooks))
    with db.read() as conn:
        return conn.execute(
            "SELECT d.id, d.webhook_id, d.event, d.payload, d.next_attempt_at, w.url, w.secret"
            " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
            " WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND d.id > ? AND w.active = 1"
            + (f" AND d.webhook_id NOT IN ({skip})" if skip else "")
            + " ORDER BY d.id LIMIT ?",
            (iso(now), after_id, limit),
        ).fetchall()


def deliver_due(
    db: Database, now: datetime | None = None, *, timeout_s: float, max_attempts: int,
    client: httpx.Client | None = None, batch: int = BATCH,
) -> DeliveryRun:  # fmt: skip
    """Send the pending deliveries due at `now` (default: the clock), oldest first, at most `batch` attempts.

    2xx: delivered. Anything else (another status, a timeout, a refused connection): tried again after
    `backoff_s(attempts)`, and marked failed after `max_attempts`. Deliveries of a deactivated hook wait, pending,
    until it is active again. Once a hook fails in a run, its other deliveries wait for the next run, so one dead
    receiver costs one timeout per run, not one per event. `client` is for tests; by default a client is made
    (and closed) per run.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    started = clock()
    own = client is None
    # trust_env=False: events go straight to the configured URL, never through a proxy named in the environment.
    http = client if client is not None else httpx.Client(trust_env=False, headers={"User-Agent": USER_AGENT})
    counts = {"delivered": 0, "retrying": 0, "failed": 0, "skipped": 0}
    attempted = 0
    failing_hooks: set[int] = set()
    last_id = 0
    try:
        while attempted < batch:
            rows = _due(db, started, last_id, failing_hooks, batch - attempted)
            if not rows:
                break
            for row in rows:
                last_id = int(row["id"])
                if int(row["webhook_id"]) in failing_hooks:
                    continue  # left pending, untouched: it is tried in a later run
                lease_until = clock() + timedelta(seconds=lease_s(timeout_s))
                lease = _claim(db, last_id, str(row["next_attempt_at"]), lease_until)
                if lease is None:
                    counts["skipped"] += 1
                    continue
                attempted += 1
                outcome = _send(http, row, int(clock().timestamp()), timeout_s)
                result = _record(db, last_id, lease, outcome, clock(), max_attempts)
                counts[result] += 1
                if not outcome.ok:
                    failing_hooks.add(int(row["webhook_id"]))
    finally:
        if own:
            http.close()
    return DeliveryRun(attempted, counts["delivered"], counts["retrying"], counts["failed"], counts["skipped"])
