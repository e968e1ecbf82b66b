"""The rollup job is crash-safe and safe to run concurrently.

A job killed (SIGKILL, in a separate process against the same database) between two days or in
the middle of a day's transaction, then run again to completion, leaves exactly the rollups of
one clean rebuild; so do several runs at once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from esn.clock import frozen_at
from esn.extensions import db
from esn.usage.rollup_job import RollupRun, done_through, rebuild_rollups, run_rollups
from esn.usage.rollups import PersonDay, Thread, TieDay
from tests.telemetry import world
from tests.telemetry.dashboard_helpers import lead, needs_readings
from tests.telemetry.rollup_tables import busy_world, dump, first_event_day

ROOT = Path(__file__).resolve().parents[2]
# The `esn` command installed next to this interpreter.
ESN = str(Path(sys.executable).with_name("esn"))

# The child: the rollup job in its own process, stopped for good at a chosen point so that the
# test can kill it there. "between": after the n-th day has been committed; "inside": in the
# (n+1)-th day's transaction, after its rows were written and before the fill state and the
# commit.
CHILD = r"""
import os, sys, time
from datetime import date
from pathlib import Path

from esn import create_app
from esn.extensions import db
from esn.usage import rollup_job

mode, through, marker = sys.argv[1], date.fromisoformat(sys.argv[2]), Path(sys.argv[3])
stop_at, span_days = int(sys.argv[4]), int(sys.argv[5])
built = []


def note(line):
    with marker.open("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def hang(line):
    note(line)
    time.sleep(600)


if mode == "inside":
    real = rollup_job.roll_days

    def roll_days(conn, first, last, *args):
        count = real(conn, first, last, *args)
        if len(built) == stop_at:
            hang(f"stopped inside {first.isoformat()}..{last.isoformat()}")
        return count

    rollup_job.roll_days = roll_days


def after_day(day):
    built.append(day)
    note(f"done {day.isoformat()}")
    if mode == "between" and len(built) == stop_at:
        hang(f"stopped after {day.isoformat()}")


app = create_app()
with app.app_context():
    rollup_job.run_rollups(db.engine, through, after_day=after_day, span_days=span_days)
note("finished")
"""


def child_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ESN_DATABASE_URL": database_url,
            "ESN_INSTANCE_PATH": str(tmp_path / "child-instance"),
            "ESN_SECRET_KEY": "child-secret-key-not-for-production",
            "ESN_LOG_FORMAT": "text",
            "ESN_OUTBOX_DISPATCH": "off",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def wait_for(
    marker: Path, prefix: str, process: subprocess.Popen[bytes], timeout: float = 60
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists():
            for line in marker.read_text().splitlines():
                if line.startswith(prefix):
                    return line
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"the child ended ({process.returncode}) early:\n{err.decode()}")
        time.sleep(0.02)
    process.kill()
    raise AssertionError(f"no {prefix!r} in {marker} after {timeout} s")


def rows_of_day(day: Any) -> int:
    db.session.rollback()
    return sum(
        db.session.scalar(select(func.count()).select_from(model).where(column == day)) or 0
        for model, column in (
            (PersonDay, PersonDay.day),
            (TieDay, TieDay.day),
            (Thread, Thread.start_day),
        )
    )


@pytest.mark.parametrize(("mode", "span"), [("between", 1), ("inside", 1), ("inside", 4)])
def test_killing_the_job_midway_then_running_it_again_equals_a_clean_build(
    app, database_url, tmp_path, mode, span
):
    """Killed after a committed span ("between"), or inside a span's transaction after its
    rows were written ("inside", one day or four days per transaction)."""
    built = busy_world(days=20)
    through = built["last_day"]
    first = first_event_day()
    total_days = (through - first).days + 1
    stop_at = 3  # spans committed when the child is killed
    marker = tmp_path / "marker.txt"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = child_env(database_url, tmp_path)
    db.session.commit()

    args = [mode, through.isoformat(), str(marker), str(stop_at), str(span)]
    child = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(marker, "stopped", child)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL

    # Complete spans only: the fill state says how far, and the interrupted span left nothing.
    done = stop_at * span
    killed = [first + timedelta(days=done + i) for i in range(span)]
    with db.engine.connect() as conn:
        assert done_through(conn) == killed[0] - timedelta(days=1)
    assert rows_of_day(killed[0] - timedelta(days=1)) > 0
    for day in killed:
        assert rows_of_day(day) == 0, day
    if mode == "inside":
        last_line = marker.read_text().splitlines()[-1]
        assert last_line == f"stopped inside {killed[0]}..{killed[-1]}"

    # Run again, this time with the command an operator would use, to completion.
    rerun = subprocess.run(
        [ESN, "telemetry", "rollup", "--through", through.isoformat()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"built {total_days - done} days" in rerun.stdout, rerun.stdout
    assert f"done through {through}" in rerun.stdout, rerun.stdout

    db.session.rollback()
    resumed = dump(db.engine)
    assert resumed["done_through"] == through
    assert all(
        resumed[t]
        for t in (
            "telemetry_person_days",
            "telemetry_tie_days",
            "telemetry_threads",
            "telemetry_first_contributions",
            "telemetry_reports",
        )
    )

    clean = rebuild_rollups(db.engine, through)
    assert clean.days == total_days
    assert dump(db.engine) == resumed


def test_the_command_killed_at_any_moment_and_run_again_equals_a_clean_build(
    app, database_url, tmp_path
):
    """The real command, killed as soon as the fill state shows a few days done (wherever it
    is then), then run again."""
    built = busy_world(days=20, seed=5)
    through = built["last_day"]
    env = child_env(database_url, tmp_path)
    db.session.commit()
    command = [ESN, "telemetry", "rollup", "--through", through.isoformat()]
    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and child.poll() is None:
            with db.engine.connect() as conn:
                done = done_through(conn)
            if done is not None and done >= first_event_day() + timedelta(days=3):
                break
            time.sleep(0.005)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    with db.engine.connect() as conn:
        stopped_at = done_through(conn)
    # It was killed midway (a few days done, most not), not after it had finished.
    assert child.returncode == -signal.SIGKILL, "the command ended before it was killed"
    assert stopped_at is not None and stopped_at < through
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    db.session.rollback()
    resumed = dump(db.engine)
    assert resumed["done_through"] == through
    rebuild_rollups(db.engine, through)
    assert dump(db.engine) == resumed


def test_concurrent_runs_build_every_day_once_and_equal_one_run(app):
    built = busy_world(days=20, seed=3)
    through = built["last_day"]
    first = first_event_day()
    total_days = (through - first).days + 1
    db.session.commit()
    engine = db.engine
    runs: list[RollupRun] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait()
            # Short pauses between days make the runs interleave.
            runs.append(
                run_rollups(engine, through, after_day=lambda _d: time.sleep(rng.random() / 200))
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(runs) == 3
    # Each day was built by exactly one of the runs.
    assert sum(r.days for r in runs) == total_days
    together = dump(engine)
    assert together["done_through"] == through

    rebuild_rollups(engine, through)
    assert dump(engine) == together


def test_a_run_in_steps_equals_one_run(app):
    """Incremental runs (a few days at a time, as the daily job does) equal one run."""
    built = busy_world(days=12, seed=8)
    through = built["last_day"]
    db.session.commit()
    day = first_event_day()
    while day < through:
        day = min(day + timedelta(days=4), through)
        run_rollups(db.engine, day)
    stepwise = dump(db.engine)
    # Nothing left to do.
    assert run_rollups(db.engine, through).days == 0
    rebuild_rollups(db.engine, through)
    assert dump(db.engine) == stepwise


def test_the_world_is_not_trivial(app):
    """The comparisons above compare real rows of every kind."""
    built = busy_world(days=20)
    db.session.commit()
    run_rollups(db.engine, built["last_day"])
    tables = dump(db.engine)
    assert len(tables["telemetry_person_days"]) > 100
    assert len(tables["telemetry_tie_days"]) > 50
    assert any(r[-1] is not None for r in tables["telemetry_threads"])  # answered threads
    assert any(r[-1] is not None for r in tables["telemetry_reports"])  # resolved reports
    assert any(r[-1] is not None for r in tables["telemetry_person_days"])  # gaps between days
    assert first_event_day() < world.START


@needs_readings
def test_a_reading_is_the_same_from_resumed_or_rebuilt_rollups_and_from_the_command(app):
    """The same events and versions give the same reading: taken through the API from
    rollups built in steps, again after the rollups were rebuilt from scratch, and by
    ``esn telemetry reading --json``."""
    built = busy_world(days=20, seed=4)
    through = built["last_day"]
    db.session.commit()
    run_rollups(db.engine, through - timedelta(days=9))  # part of the way: the API does the rest
    api = lead(app)
    asked = world.at(25)
    with frozen_at(asked):
        first = api.post("/api/v1/governance/readings", json={"at": through.isoformat()})
        assert first.status_code == 201, first.get_json()
        rebuild_rollups(db.engine, through)
        second = api.post("/api/v1/governance/readings", json={"at": through.isoformat()})
        assert second.status_code == 201, second.get_json()
        command = app.test_cli_runner().invoke(
            args=["telemetry", "reading", "--at", through.isoformat(), "--json"]
        )
        assert command.exit_code == 0, command.output
    a, b = first.get_json(), second.get_json()
    c = json.loads(command.output)
    assert a["id"] != b["id"] != c["id"]
    for other in (b, c):
        assert other["definitions_version"] == a["definitions_version"]
        assert other["thresholds_version"] == a["thresholds_version"]
        assert other["measured_through"] == a["measured_through"]
        assert other["indicators"] == a["indicators"]
        # Only the "recent reading" gate may differ: the first reading exists for the others.
        assert gates(other) == gates(a)
    # Not vacuous: figures are shown.
    shown = [i for i in a["indicators"]["org"]["indicators"] if not i["suppressed"]]
    assert len(shown) >= 8, shown


def gates(reading: dict[str, Any]) -> list[Any]:
    return [
        (p["process"], [g for g in p["gates"] if g["gate"] != "recent_reading"])
        for p in reading["processes"]
    ]
