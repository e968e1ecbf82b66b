"""Side effects after commit: the transactional outbox and the worker."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from esn.clock import system_now
from esn.extensions import db
from esn.outbox.dispatch import UnknownTopic, enqueue, register_handler, unregister_handler
from esn.outbox.models import OutboxJob


@pytest.fixture
def calls():
    seen: list[dict] = []
    register_handler("test.record", seen.append)
    yield seen
    unregister_handler("test.record")


def _pending() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(OutboxJob)) or 0


def test_job_runs_after_commit_and_is_removed(app, calls):
    enqueue("test.record", {"n": 1})
    assert calls == []  # nothing before the commit
    db.session.commit()
    assert calls == [{"n": 1}]
    assert _pending() == 0


def test_rollback_drops_the_job(app, calls):
    enqueue("test.record", {"n": 2})
    db.session.flush()
    db.session.rollback()
    db.session.commit()
    assert calls == []
    assert _pending() == 0


def test_unknown_topic_is_refused(app):
    with pytest.raises(UnknownTopic):
        enqueue("nobody.listens", {})


@pytest.mark.parametrize("app_config", [{"OUTBOX_DISPATCH": "off"}])
def test_worker_drains_what_the_request_left(app, calls):
    enqueue("test.record", {"n": 3})
    db.session.commit()
    assert calls == [] and _pending() == 1
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert calls == [{"n": 3}]
    assert _pending() == 0


@pytest.mark.parametrize("app_config", [{"OUTBOX_DISPATCH": "off", "OUTBOX_MAX_ATTEMPTS": 2}])
def test_failures_back_off_then_die_and_are_kept(app):
    attempts: list[int] = []

    def flaky(payload: dict) -> None:
        attempts.append(1)
        raise RuntimeError("downstream is down")

    register_handler("test.flaky", flaky)
    try:
        enqueue("test.flaky", {})
        db.session.commit()
        dispatcher = app.extensions["esn.outbox"]
        assert dispatcher.run_jobs() == 0
        job = db.session.scalars(select(OutboxJob)).one()
        assert job.attempts == 1 and "downstream is down" in job.last_error
        assert job.available_at > system_now()  # backed off
        assert dispatcher.run_jobs() == 0 and len(attempts) == 1  # not due yet
        db.session.execute(update(OutboxJob).values(available_at=system_now()))
        db.session.commit()
        assert dispatcher.run_jobs() == 0
        db.session.rollback()
        job = db.session.scalars(select(OutboxJob)).one()
        assert job.attempts == 2 and job.dead_at is not None
        assert len(attempts) == 2
    finally:
        unregister_handler("test.flaky")


@pytest.mark.parametrize("app_config", [{"OUTBOX_DISPATCH": "thread"}])
def test_thread_mode_runs_in_the_background(app, calls):
    import time

    enqueue("test.record", {"n": 4})
    db.session.commit()
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == [{"n": 4}]


def test_a_job_left_by_a_process_that_died_runs_once_its_lease_is_over(app, calls):
    """A job due at once is written already claimed by the committing process; if that
    process dies between the commit and the dispatch, the worker takes it after the lease."""
    from esn.outbox.dispatch import _SESSION_KEY

    enqueue("test.record", {"n": 5})
    db.session.info.pop(_SESSION_KEY)  # the process "dies" before it dispatches
    db.session.commit()
    assert calls == []
    job = db.session.scalars(select(OutboxJob)).one()
    assert job.claimed_by == app.extensions["esn.outbox"].worker_id
    assert job.claimed_until > system_now()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["worker", "--once"]).exit_code == 0
    assert calls == []  # leased: nobody else runs it yet
    db.session.execute(update(OutboxJob).values(claimed_until=system_now()))
    db.session.commit()
    assert runner.invoke(args=["worker", "--once"]).exit_code == 0
    assert calls == [{"n": 5}] and _pending() == 0


def test_writes_returned_by_a_handler_are_made_with_the_acknowledgement(app):
    from esn.directory.models import Department

    made: list[int] = []

    def rename(payload: dict):
        made.append(payload["id"])
        return [update(Department).where(Department.id == payload["id"]).values(name="Done")]

    register_handler("test.rename", rename)
    try:
        department = Department(code="WAIT", name="Waiting")
        db.session.add(department)
        db.session.flush()
        enqueue("test.rename", {"id": department.id})
        db.session.commit()
        db.session.rollback()
        assert made == [department.id]
        assert db.session.get(Department, department.id).name == "Done"
        assert _pending() == 0
    finally:
        unregister_handler("test.rename")


# --- several worker processes -------------------------------------------------------------------


def _worker_process(url: str, instance: str, out: str, ready) -> None:  # pragma: no cover (child)
    from esn import create_app
    from esn.outbox.dispatch import register_handler

    def append(payload: dict) -> None:
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{payload['n']}\n".encode())
        finally:
            os.close(fd)

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "INSTANCE_PATH": instance,
            "SECRET_KEY": "x",
            "OUTBOX_DISPATCH": "off",
            "PASSWORD_HASH_COST": "low",
            "LOG_FORMAT": "text",
        }
    )
    register_handler("test.append", append)
    ready.wait()
    dispatcher = app.extensions["esn.outbox"]
    idle = 0
    while idle < 3:
        ran = dispatcher.run_jobs(limit=5)
        idle = idle + 1 if ran == 0 else 0


@pytest.mark.parametrize("app_config", [{"OUTBOX_DISPATCH": "off"}])
def test_several_workers_never_run_a_job_twice(app, database_url, tmp_path: Path):
    register_handler("test.append", lambda payload: None)
    try:
        for n in range(300):
            enqueue("test.append", {"n": n})
        db.session.commit()
    finally:
        unregister_handler("test.append")
    out = tmp_path / "ran.txt"
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    procs = [
        ctx.Process(
            target=_worker_process, args=(database_url, str(tmp_path / f"i{i}"), str(out), ready)
        )
        for i in range(3)
    ]
    for p in procs:
        p.start()
    ready.set()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    ran = [int(line) for line in out.read_text().split()]
    assert sorted(ran) == list(range(300))  # every job exactly once
    assert _pending() == 0
