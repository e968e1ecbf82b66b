"""Enqueueing, claiming and running outbox jobs."""

from __future__ import annotations

import logging
import queue
import threading
import traceback
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import delete, event, func, or_, select, update
from sqlalchemy.orm import Session

from esn.clock import system_now
from esn.database import write_intent
from esn.extensions import db
from esn.outbox.models import OutboxJob

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("esn.outbox")

Handler = Callable[[dict[str, Any]], None]
_HANDLERS: dict[str, Handler] = {}
LEASE = timedelta(seconds=60)
_SESSION_KEY = "esn.outbox.pending"


class UnknownTopic(LookupError):
    pass


def register_handler(topic: str, handler: Handler) -> None:
    """Run ``handler(payload)`` for jobs of ``topic``. Handlers must be idempotent: a job whose
    worker dies after the effect but before the acknowledgement runs again. A handler that
    writes commits itself; anything it leaves uncommitted is rolled back."""
    _HANDLERS[topic] = handler


def unregister_handler(topic: str) -> None:
    _HANDLERS.pop(topic, None)


def enqueue(topic: str, payload: dict[str, Any], *, session: Session | None = None) -> OutboxJob:
    """Write a job into the current transaction; it runs only if the transaction commits."""
    if topic not in _HANDLERS:
        raise UnknownTopic(f"no outbox handler for topic {topic!r}")
    sess = session or db.session
    job = OutboxJob(topic=topic, payload=payload)
    sess.add(job)
    sess.info.setdefault(_SESSION_KEY, []).append(job)
    return job


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2**attempts, 3600))


class Dispatcher:
    """Runs committed jobs. One per application; ``mode`` comes from ``OUTBOX_DISPATCH``."""

    def __init__(self, app: Flask, mode: str, max_attempts: int) -> None:
        self.app = app
        self.mode = mode
        self.max_attempts = max_attempts
        self.worker_id = f"{uuid.uuid4().hex[:12]}"
        self._queue: queue.Queue[list[int] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # Called by the after_commit hook with the ids of the jobs that just became durable.
    def committed(self, job_ids: list[int]) -> None:
        if self.mode == "off" or not job_ids:
            return
        if self.mode == "sync":
            self.run_jobs(job_ids)
            return
        self._ensure_thread()
        self._queue.put(job_ids)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="esn-outbox", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            ids = self._queue.get()
            if ids is None:
                return
            try:
                self.run_jobs(ids)
            except Exception:  # keep the thread alive; the worker retries what is left
                log.exception("outbox dispatch failed")

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def run_jobs(self, job_ids: list[int] | None = None, *, limit: int = 100) -> int:
        """Claim and run jobs (the given ids, or any that are due). Returns how many ran OK."""
        with self.app.app_context():
            claimed = self._claim(job_ids, limit)
            done = 0
            for job_id, topic, payload, attempts in claimed:
                if self._run_one(job_id, topic, payload, attempts):
                    done += 1
            return done

    def _claim(self, job_ids: list[int] | None, limit: int) -> list[tuple[int, str, Any, int]]:
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
            return [(r.id, r.topic, r.payload, r.attempts) for r in rows]

    def _run_one(self, job_id: int, topic: str, payload: Any, attempts: int) -> bool:
        handler = _HANDLERS.get(topic)
        error: str | None = None
        if handler is None:
            error = f"no handler for topic {topic!r}"
        else:
            try:
                handler(payload)
            except Exception:
                error = traceback.format_exc(limit=5)
            finally:
                # A handler commits what it writes; whatever it left open ends here, so that
                # no transaction (on SQLite: no write lock) outlives it.
                db.session.rollback()
        with write_intent(), Session(db.engine) as session, session.begin():
            mine = (OutboxJob.id == job_id) & (OutboxJob.claimed_by == self.worker_id)
            if error is None:
                session.execute(delete(OutboxJob).where(mine))
                return True
            log.warning("outbox job failed", extra={"job_id": job_id, "topic": topic})
            tries = attempts + 1
            values: dict[str, Any] = {
                "attempts": tries,
                "last_error": error[-4000:],
                "claimed_by": None,
                "claimed_until": None,
                "available_at": system_now() + _backoff(tries),
            }
            if tries >= self.max_attempts:
                values["dead_at"] = system_now()
            session.execute(update(OutboxJob).where(mine).values(**values))
            return False


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
    jobs = session.info.pop(_SESSION_KEY, [])
    if jobs:
        dispatcher: Dispatcher = current_app.extensions["esn.outbox"]
        dispatcher.committed([job.id for job in jobs])


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
