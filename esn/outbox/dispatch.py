"""Enqueueing, claiming and running outbox jobs."""

from __future__ import annotations

import logging
import queue
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import Executable, delete, event, func, insert, inspect, or_, select, update
from sqlalchemy.orm import Session

from esn.clock import system_now
from esn.database import write_intent
from esn.extensions import db
from esn.outbox.models import OutboxJob

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("esn.outbox")

# A handler may return statements to run in the transaction that acknowledges its job (marks
# it done), e.g. recording that a push went out: one write for a whole batch of jobs.
Handler = Callable[[dict[str, Any]], Iterable[Executable] | None]
_HANDLERS: dict[str, Handler] = {}
LEASE = timedelta(seconds=60)
_SESSION_KEY = "esn.outbox.pending"


class UnknownTopic(LookupError):
    pass


@dataclass(frozen=True)
class Claimed:
    """A job this process holds the lease of, with what running it needs."""

    id: int
    topic: str
    payload: Any
    attempts: int = 0


def register_handler(topic: str, handler: Handler) -> None:
    """Run ``handler(payload)`` for jobs of ``topic``. Handlers must be idempotent: a job whose
    worker dies after the effect but before the acknowledgement runs again. A handler that
    writes commits itself, or returns its writes to be made with the acknowledgement; anything
    it leaves uncommitted is rolled back."""
    _HANDLERS[topic] = handler


def unregister_handler(topic: str) -> None:
    _HANDLERS.pop(topic, None)


def enqueue(
    topic: str,
    payload: dict[str, Any],
    *,
    session: Session | None = None,
    available_at: datetime | None = None,
) -> OutboxJob:
    """Write a job into the current transaction; it runs only if the transaction commits, not
    before ``available_at`` if given.

    A job due at once is written already claimed by this process's dispatcher (when it
    dispatches): after the commit it runs here with no claiming transaction, and should the
    process die first, the lease runs out and ``esn worker`` takes it."""
    if topic not in _HANDLERS:
        raise UnknownTopic(f"no outbox handler for topic {topic!r}")
    sess = session or db.session
    job = OutboxJob(topic=topic, payload=payload)
    if available_at is not None:
        job.available_at = available_at
    elif session in (None, db.session, db.session()):  # (what the commit hook watches)
        dispatcher: Dispatcher | None = current_app.extensions.get("esn.outbox")
        if dispatcher is not None and dispatcher.mode != "off":
            job.claimed_by = dispatcher.worker_id
            job.claimed_until = system_now() + LEASE
            sess.info.setdefault(_SESSION_KEY, []).append((job, topic, payload))
    sess.add(job)
    return job


def later(topic: str, payload: dict[str, Any], available_at: datetime) -> Executable:
    """A job due at ``available_at``, as a statement a handler returns with its writes."""
    if topic not in _HANDLERS:
        raise UnknownTopic(f"no outbox handler for topic {topic!r}")
    return insert(OutboxJob).values(topic=topic, payload=payload, available_at=available_at)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2**attempts, 3600))


class Dispatcher:
    """Runs committed jobs. One per application; ``mode`` comes from ``OUTBOX_DISPATCH``."""

    def __init__(self, app: Flask, mode: str, max_attempts: int) -> None:
        self.app = app
        self.mode = mode
        self.max_attempts = max_attempts
        self.worker_id = f"{uuid.uuid4().hex[:12]}"
        self._queue: queue.Queue[list[Claimed] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # Called by the after_commit hook with the jobs that just became durable (claimed by us).
    def committed(self, jobs: list[Claimed]) -> None:
        if self.mode == "off" or not jobs:
            return
        if self.mode == "sync":
            self.run_claimed(jobs)
            return
        self._ensure_thread()
        self._queue.put(jobs)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="esn-outbox", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            jobs = list(batch)
            stop = False
            # Whatever else was committed meanwhile runs in the same batch, acknowledged
            # together.
            while len(jobs) < 500:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.extend(more)
            try:
                self.run_claimed(jobs)
            except Exception:  # keep the thread alive; the worker retries what is left
                log.exception("outbox dispatch failed")
            if stop:
                return

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def run_jobs(self, job_ids: list[int] | None = None, *, limit: int = 100) -> int:
        """Claim and run jobs (the given ids, or any that are due). Returns how many ran OK."""
        with self.app.app_context():
            return self.run_claimed(self._claim(job_ids, limit))

    def run_claimed(self, jobs: list[Claimed]) -> int:
        """Run jobs this process holds, then acknowledge them all in one transaction."""
        if not jobs:
            return 0
        with self.app.app_context():
            done: list[int] = []
            writes: list[Executable] = []
            failed: list[tuple[Claimed, str]] = []
            for job in jobs:
                outcome = self._run_one(job)
                if isinstance(outcome, str):
                    failed.append((job, outcome))
                else:
                    done.append(job.id)
                    writes.extend(outcome)
            self._acknowledge(done, writes, failed)
            return len(done)

    def _claim(self, job_ids: list[int] | None, limit: int) -> list[Claimed]:
        now = system_now()
        with write_intent(), Session(db.engine) as session, session.begin():
            candidates = (
                select(OutboxJob.id)
                .where(
                    OutboxJob.dead_at.is_(None),
                    OutboxJob.available_at <= now,
                    or_(OutboxJob.claimed_until.is_(None), OutboxJob.claimed_until < now),
                )
                .order_by(OutboxJob.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            if job_ids is not None:
                candidates = candidates.where(OutboxJob.id.in_(job_ids))
            ids = list(session.scalars(candidates))
            if not ids:
                return []
            session.execute(
                update(OutboxJob)
                .where(OutboxJob.id.in_(ids))
                .values(claimed_by=self.worker_id, claimed_until=now + LEASE)
            )
            rows = session.execute(
                select(OutboxJob.id, OutboxJob.topic, OutboxJob.payload, OutboxJob.attempts)
                .where(OutboxJob.id.in_(ids))
                .order_by(OutboxJob.id)
            ).all()
            return [Claimed(r.id, r.topic, r.payload, r.attempts) for r in rows]

    def _run_one(self, job: Claimed) -> list[Executable] | str:
        """The handler's writes for the acknowledgement, or the error (a traceback)."""
        handler = _HANDLERS.get(job.topic)
        if handler is None:
            return f"no handler for topic {job.topic!r}"
        try:
            return list(handler(job.payload) or ())
        except Exception:
            return traceback.format_exc(limit=5)
        finally:
            # A handler commits what it writes; whatever it left open ends here, so that
            # no transaction (on SQLite: no write lock) outlives it.
            db.session.rollback()

    def _acknowledge(
        self, done: list[int], writes: list[Executable], failed: list[tuple[Claimed, str]]
    ) -> None:
        mine = OutboxJob.claimed_by == self.worker_id
        with write_intent(), Session(db.engine) as session, session.begin():
            for statement in writes:
                session.execute(statement)
            if done:
                session.execute(delete(OutboxJob).where(OutboxJob.id.in_(done), mine))
            for job, error in failed:
                log.warning("outbox job failed", extra={"job_id": job.id, "topic": job.topic})
                tries = job.attempts + 1
                values: dict[str, Any] = {
                    "attempts": tries,
                    "last_error": error[-4000:],
                    "claimed_by": None,
                    "claimed_until": None,
                    "available_at": system_now() + _backoff(tries),
                }
                if tries >= self.max_attempts:
                    values["dead_at"] = system_now()
                session.execute(
                    update(OutboxJob).where(OutboxJob.id == job.id, mine).values(**values)
                )


def status(session: Session) -> dict[str, Any]:
    """Counts for operators: pending, dead, and the age of the oldest pending job (seconds)."""
    pending = session.scalar(
        select(func.count()).select_from(OutboxJob).where(OutboxJob.dead_at.is_(None))
    )
    dead = session.scalar(
        select(func.count()).select_from(OutboxJob).where(OutboxJob.dead_at.is_not(None))
    )
    oldest = session.scalar(
        select(func.min(OutboxJob.created_at)).where(OutboxJob.dead_at.is_(None))
    )
    lag = (system_now() - oldest).total_seconds() if oldest else 0.0
    return {"pending": pending or 0, "dead": dead or 0, "oldest_pending_seconds": round(lag, 3)}


_hooked = False


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_SESSION_KEY, [])
    if pending:
        dispatcher: Dispatcher = current_app.extensions["esn.outbox"]
        # The ids from the identity keys: reading ``job.id`` would reload each expired row.
        dispatcher.committed(
            [Claimed(inspect(job).identity[0], topic, payload) for job, topic, payload in pending]
        )


def _after_rollback(session: Session) -> None:
    session.info.pop(_SESSION_KEY, None)


def install(app: Flask) -> Dispatcher:
    """Create the application's dispatcher and hook it to the session's commit."""
    global _hooked
    dispatcher = Dispatcher(app, app.config["OUTBOX_DISPATCH"], app.config["OUTBOX_MAX_ATTEMPTS"])
    app.extensions["esn.outbox"] = dispatcher
    if not _hooked:
        # Once per process: the scoped session is shared by every app; each commit finds its
        # own app's dispatcher through current_app.
        event.listen(db.session, "after_commit", _after_commit)
        event.listen(db.session, "after_rollback", _after_rollback)
        _hooked = True
    return dispatcher
