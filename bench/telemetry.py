"""Benchmark of the telemetry rollups and the dashboard's indicator query, next to the floor
(one raw ``GROUP BY`` count over the same event table).

    .venv/bin/python bench/telemetry.py [--events 10000000] [--people 10000] [--days 395]
        [--database-url URL] [--reuse] [--runs 5] [--profile]

Generates a usage event log (``bench/telemetry_world.py``: people in departments and time
zones, bots and externals, Zipf-like activity, office hours, visits, posts with processes and
questions, comments and reactions on earlier posts, mentions, follows, edits, reports) over
``--days`` days ending on the last weekday before today, in a database whose schema comes from
the migrations, then, with the application's clock set to the morning after that last day:

(a) the rollups from scratch: ``rebuild_rollups(engine, through=<the day before the last>)``,
    one UTC day per transaction as the job runs (target on SQLite: 60 s);
(b) one incremental day: ``run_rollups(engine, through=<the last day>)`` once the rest is
    built, as the nightly job does (target: 1 s);
(c) a reading from the rollups: the dashboard's indicator query,
    ``measure(Scope("org"), <last day>, 90)``, and the same over 183 days and for
    ``Scope("process", "innovation")`` (an audience of two divisions), each the median of
    ``--runs`` runs after one warm-up (target: 200 ms);
(d) the floor: ``SELECT kind, count(*) FROM usage_events GROUP BY kind`` with the raw driver
    (sqlite3 / psycopg), best of 3 — the least any computation over the log costs; and, as a
    second reference, the same count per UTC day.

Before that it checks, on a small world, that the raw rows read exactly as the application's
own (the rollups built from rows written by the raw driver equal those built from the same
events written through the ORM), and after (a) and (b) that the rollups are plausible (one
person-day row per active person-day, one thread per post, ties, responses).

SQLite (the default) uses a file in a temporary directory, or ``bench/out/`` with ``--reuse``
(generated once, then migrated to the current head and reused). PostgreSQL: ``--database-url``
names a server and database; a fresh schema (``esn_bench_<random>``) is created, migrated,
filled and dropped at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import platform
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask
from sqlalchemy import create_engine, delete, event, func, make_url, select, text

from bench.telemetry_world import VERSION, Row, World, generate, last_weekday_before, to_datetime
from esn import create_app
from esn.clock import frozen_at
from esn.extensions import db
from esn.governance.measure import Scope, measure
from esn.usage.models import UsageEvent
from esn.usage.rollup_job import FILL_STATE, ROLLUP_TABLES, rebuild_rollups, run_rollups
from esn.usage.rollups import ALL, FillState, FirstContribution, PersonDay, Report, Thread, TieDay

try:  # computed figures kept by the application (not in every version of it)
    from esn.usage.rollups import Figures
except ImportError:  # pragma: no cover
    Figures = None

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
TARGETS = {"rebuild": 60.0, "day": 1.0, "measure": 0.2}  # seconds, on SQLite


# --- databases ------------------------------------------------------------------------------------


def make_app(url: str, workdir: Path) -> Flask:
    return create_app({
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(workdir / "instance"),
        "SECRET_KEY": "benchmark-secret-key-not-for-production",
        "OUTBOX_DISPATCH": "off",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
    })  # fmt: skip


def migrate(url: str, workdir: Path) -> None:
    from flask_migrate import upgrade

    app = make_app(url, workdir)
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


@contextmanager
def fresh_database(base_url: str | None, workdir: Path, name: str) -> Iterator[str]:
    """The URL of a new, migrated database: a SQLite file in ``workdir`` or a new schema of the
    PostgreSQL server at ``base_url`` (dropped at the end)."""
    if base_url is None:
        url = f"sqlite:///{workdir / f'{name}-{uuid.uuid4().hex[:8]}.sqlite3'}"
        migrate(url, workdir)
        yield url
        return
    schema = f"esn_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in base_url else "?"
        url = f"{base_url}{sep}options=-csearch_path%3D{schema}"
        migrate(url, workdir)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def database(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(URL, what happened, the world's statistics) of a migrated database holding the log."""
    world = World(args.people, args.events, args.days, args.seed, args.daily_active)
    last_day = last_weekday_before(datetime.now(UTC).date())
    if args.database_url is None and args.reuse:
        name = (
            f"telemetry-{args.events}e-{args.people}p-{args.days}d-"
            f"{args.daily_active}a-s{args.seed}-v{VERSION}.sqlite3"
        )
        path = OUT / name
        marker = path.with_suffix(".json")
        url = f"sqlite:///{path}"
        fresh = (
            marker.exists()
            and json.loads(marker.read_text()).get("migrations") == migrations_fingerprint()
        )
        if path.exists() and fresh:
            started = time.perf_counter()
            migrate(url, workdir)  # a reused file is brought to the current head
            stats = json.loads(marker.read_text())
            took = time.perf_counter() - started
            yield url, f"reused {path.relative_to(ROOT)} (migrated in {took:.1f} s)", stats
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, marker, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        migrate(url, workdir)
        started = time.perf_counter()
        stats = generate(world, url, last_day)
        took = time.perf_counter() - started
        stats["migrations"] = migrations_fingerprint()
        marker.write_text(json.dumps(stats, indent=1))
        yield url, f"generated {path.relative_to(ROOT)} in {took:.0f} s", stats
        return
    with fresh_database(args.database_url, workdir, "telemetry") as url:
        started = time.perf_counter()
        stats = generate(world, url, last_day)
        yield url, f"generated in {time.perf_counter() - started:.0f} s", stats


def morning_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), dtime(6), UTC)


def clear_rollups(app: Flask) -> None:
    """Empty the rollups (not timed), so that (a) starts from nothing on a reused file too."""
    with app.app_context():
        for table in ROLLUP_TABLES:
            db.session.execute(delete(table))
        db.session.execute(delete(FillState).where(FillState.name == FILL_STATE))
        db.session.commit()
        db.session.remove()


# --- the check on a small world -------------------------------------------------------------------


def rollup_snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every rollup table, sorted."""
    with app.app_context():
        out = {}
        for model in ROLLUP_TABLES:
            table = model.__table__
            rows = db.session.execute(select(table)).tuples().all()
            out[table.name] = sorted(rows, key=repr)
        raw = db.session.execute(
            text("SELECT id, occurred_at, kind, payload FROM usage_events ORDER BY id")
        ).all()
        out["usage_events (as stored)"] = [tuple(map(str, r)) for r in raw]
        db.session.remove()
    return out


def orm_sink(app: Flask) -> Callable[[date, Iterator[Row]], int]:
    """Writes events as ``record_usage`` does: ORM rows, aware datetimes, payload dicts."""

    def sink(first_day: date, rows: Iterator[Row]) -> int:
        n = 0
        with app.app_context():
            for r in rows:
                db.session.add(
                    UsageEvent(
                        id=r[0], occurred_at=to_datetime(first_day, r[1], r[2]), kind=r[3],
                        actor_id=r[4], actor_department_id=r[5], object_type=r[6],
                        object_id=r[7], owner_id=r[8], group_id=r[9], process=r[10],
                        thread_root_id=r[11], payload=json.loads(r[12]),
                    )
                )  # fmt: skip
                n += 1
            db.session.commit()
            db.session.remove()
        return n

    return sink


def self_check(args: argparse.Namespace, workdir: Path) -> str:
    """The same small world written by the raw driver and through the ORM gives the same stored
    rows and the same rollups; the rollups agree with what the generator counted."""
    last_day = last_weekday_before(datetime.now(UTC).date())
    snapshots, stats = [], {}
    for how in ("raw", "orm"):
        world = World(people=400, events=40_000, days=40, seed=args.seed, daily_active=0.3)
        with fresh_database(args.database_url, workdir, f"check-{how}") as url:
            app = make_app(url, workdir)
            stats = generate(world, url, last_day, None if how == "raw" else orm_sink(app))
            with frozen_at(morning_after(last_day)), app.app_context():
                run = rebuild_rollups(db.engine)
                assert run.days == world.days and run.events == stats["events"], (run, stats)
                db.session.remove()
            snapshots.append(rollup_snapshot(app))
            with app.app_context():
                db.engine.dispose()
    raw, orm = snapshots
    for table in raw:
        if raw[table] != orm[table]:
            diff = [(a, b) for a, b in zip(raw[table], orm[table], strict=False) if a != b][:3]
            raise SystemExit(f"check: {table} differs between raw and ORM rows: {diff}")
    days = raw["telemetry_person_days"]
    everyone = [r for r in days if r[0] == ALL]
    assert len(everyone) == stats["counted_person_days"], (len(everyone), stats)
    assert len(raw["telemetry_threads"]) == stats["counted_posts"], stats
    assert raw["telemetry_tie_days"] and raw["telemetry_first_contributions"]
    assert any(r[6] is not None for r in raw["telemetry_threads"])  # answered threads
    return (
        f"check: {stats['events']:,} events written raw and through the ORM give identical "
        f"rows and rollups ({len(days):,} person-day rows, {len(raw['telemetry_threads']):,} "
        f"threads, {len(raw['telemetry_tie_days']):,} tie rows)"
    )


# --- the measurements -----------------------------------------------------------------------------


def floor(url: str) -> dict[str, float]:
    """Best of 3 of the raw GROUP BY counts (seconds), with the raw driver."""
    by_kind = "SELECT kind, count(*) FROM usage_events GROUP BY kind"
    if url.startswith("sqlite"):
        path = make_url(url).database
        assert path is not None
        conn: Any = sqlite3.connect(path)
        by_day = "SELECT substr(occurred_at, 1, 10), count(*) FROM usage_events GROUP BY 1"
    else:
        import psycopg

        conn = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
        by_day = (
            "SELECT (occurred_at AT TIME ZONE 'UTC')::date, count(*) FROM usage_events GROUP BY 1"
        )
    out = {}
    for key, sql in (("kind", by_kind), ("day", by_day)):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            rows = conn.execute(sql).fetchall()
            best = min(best, time.perf_counter() - started)
            assert rows
        out[key] = best
    conn.close()
    return out


def warm_file(url: str) -> None:
    """Read the SQLite file once, so that every figure starts from the OS page cache."""
    if not url.startswith("sqlite"):
        return
    path = make_url(url).database
    assert path is not None
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def rollup_counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        s = db.session
        out = {
            "person_days": s.scalar(select(func.count()).select_from(PersonDay)) or 0,
            "person_days_all": s.scalar(
                select(func.count()).select_from(PersonDay).where(PersonDay.process == ALL)
            )
            or 0,
            "tie_days": s.scalar(select(func.count()).select_from(TieDay)) or 0,
            "threads": s.scalar(select(func.count()).select_from(Thread)) or 0,
            "answered": s.scalar(
                select(func.count())
                .select_from(Thread)
                .where(Thread.first_response_at.is_not(None))
            )
            or 0,
            "questions": s.scalar(
                select(func.count()).select_from(Thread).where(Thread.is_question.is_(True))
            )
            or 0,
            "first_contributions": s.scalar(select(func.count()).select_from(FirstContribution))
            or 0,
            "reports": s.scalar(select(func.count()).select_from(Report)) or 0,
        }
        db.session.remove()
    return out


def timed_measure(app: Flask, scope: Scope, at: date, window: int, runs: int) -> dict[str, Any]:
    """Seconds of the dashboard's query as its route runs it (``measure`` then commit, in a new
    session): "computed" from the rollups (no figures kept: the first view after the rollups
    changed, or a scope, day or window not asked before), the median of ``runs`` after one
    warm-up; and, where the application keeps computed figures (``telemetry_figures``), "kept":
    the median of ``runs`` views that find them."""
    computed, kept = [], []
    with app.app_context():
        for _ in range(runs + 1):
            if Figures is not None:
                db.session.execute(delete(Figures))
                db.session.commit()
            started = time.perf_counter()
            population, values = measure(scope, at, window)
            db.session.commit()
            computed.append(time.perf_counter() - started)
            db.session.remove()
        for _ in range(runs if Figures is not None else 0):
            started = time.perf_counter()
            measure(scope, at, window)
            db.session.commit()
            kept.append(time.perf_counter() - started)
            db.session.remove()
    shown = {k: round(values[k].value, 3) for k in ("A1", "A2", "A4", "N1", "R1") if
             k in values and values[k].value is not None}  # fmt: skip
    return {
        "first": computed[0],
        "computed": statistics.median(computed[1:]),
        "kept": statistics.median(kept) if kept else None,
        "population": population,
        "values": shown,
    }


@contextmanager
def statement_times(engine: Any) -> Iterator[dict[str, list[float]]]:
    """Seconds spent in each SQL statement (by its first words) while the block runs."""
    times: dict[str, list[float]] = {}

    def before(conn: Any, _cursor: Any, _sql: str, *_: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        took = time.perf_counter() - conn.info["bench_started"].pop()
        key = " ".join(sql.split())[:110]
        times.setdefault(key, []).append(took)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield times
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


@contextmanager
def session_query_times() -> Iterator[dict[str, list[float]]]:
    """Seconds of each ORM session query (by its first words) while the block runs, fetching
    and converting its rows included (the result is read whole at once, then replayed)."""
    from sqlalchemy.engine import Result
    from sqlalchemy.orm import Session

    times: dict[str, list[float]] = {}
    original = Session._execute_internal

    def timed(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = original(self, statement, *args, **kwargs)
        if isinstance(result, Result):
            result = result.freeze()()
        key = " ".join(str(statement).split())[:110]
        times.setdefault(key, []).append(time.perf_counter() - started)
        return result

    Session._execute_internal = timed  # type: ignore[method-assign]
    try:
        yield times
    finally:
        Session._execute_internal = original  # type: ignore[method-assign]


def profiled(
    label: str, call: Callable[[], Any], out: Path, engine: Any, *, session: bool = False
) -> None:
    """``call`` under cProfile (the stats kept in ``out``), and the time of each statement:
    in the database (``engine``), or with ``session`` each ORM query with its rows fetched."""
    profile = cProfile.Profile()
    with session_query_times() if session else statement_times(engine) as times:
        started = time.perf_counter()
        profile.enable()
        call()
        profile.disable()
        total = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    profile.dump_stats(out)
    print(f"\nprofile of {label}, {total:.2f} s under the profiler ({out.relative_to(ROOT)}):")
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)
    in_sql = sum(sum(v) for v in times.values())
    what = "queries, rows fetched" if session else "SQL statements"
    print(f"{what}: {in_sql:.2f} s of {total:.2f} s; the costliest:")
    for key, spent in sorted(times.items(), key=lambda kv: -sum(kv[1]))[:14]:
        print(f"  {sum(spent):8.2f} s {len(spent):5}x  {key}")


# --- main -----------------------------------------------------------------------------------------


def code_version() -> str:
    """The commit of the code under test, marked when it differs from the commit."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "esn", "telemetry",
                                "migrations"], cwd=ROOT, check=True, capture_output=True,
                               text=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (modified)' if dirty else ''}"


def migrations_fingerprint() -> str:
    """Of the migration files: a reused file is generated again when they change."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def server_version(url: str) -> str:
    if url.startswith("sqlite"):
        return f"SQLite {sqlite3.sqlite_version} (file, WAL, synchronous=FULL)"
    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    return f"PostgreSQL {version}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=395, help="days of log, ending yesterday")
    parser.add_argument("--daily-active", type=float, default=0.18,
                        help="average share of the people active on a day")  # fmt: skip
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server (a fresh schema is created and dropped); "
                        "default: a SQLite file")  # fmt: skip
    parser.add_argument("--reuse", action="store_true",
                        help="SQLite: keep the generated file in bench/out/, reuse it")  # fmt: skip
    parser.add_argument("--runs", type=int, default=5, help="runs of each reading (median)")
    parser.add_argument("--skip-check", action="store_true",
                        help="skip the check on a small world")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, run (a), (b) and (c) again under cProfile "
                        "(stats in bench/out/)")  # fmt: skip
    args = parser.parse_args(argv)
    code = code_version()

    with tempfile.TemporaryDirectory(prefix="esn-bench-") as tmp:
        workdir = Path(tmp)
        if not args.skip_check:
            print(self_check(args, workdir), flush=True)
        with database(args, workdir) as (url, what, stats):
            last = date.fromisoformat(stats["last_day"])
            print(f"database: {what}: {stats['events']:,} events, {stats['people']:,} people "
                  f"({stats['bots']} bots, {stats['externals']} externals) in "
                  f"{stats['departments']} departments, {stats['first_day']} to {last}, "
                  f"{stats['daily_active']:.1%} of the people active on an average day, "
                  f"{stats['posts']:,} posts", flush=True)  # fmt: skip
            total = stats["events"]
            shares = ", ".join(
                f"{k.split(':', 1)[1]} {n / total:.1%}" for k, n in list(stats["kinds"].items())[:7]
            )
            print(f"kinds: {shares}", flush=True)
            app = make_app(url, workdir)
            clear_rollups(app)
            warm_file(url)
            floors = floor(url)
            print(f"(d) floor {floors['kind']:.3f} s", flush=True)
            with frozen_at(morning_after(last)), app.app_context():
                engine = db.engine
                started = time.perf_counter()
                rebuilt = rebuild_rollups(engine, through=last - timedelta(days=1))
                t_rebuild = time.perf_counter() - started
                print(f"(a) rebuild {t_rebuild:.1f} s: {rebuilt}", flush=True)
                assert rebuilt.days == args.days - 1, rebuilt
                assert rebuilt.events == total - stats["last_day_events"], rebuilt
                started = time.perf_counter()
                day = run_rollups(engine, through=last)
                t_day = time.perf_counter() - started
                print(f"(b) one day {t_day:.3f} s: {day}", flush=True)
                assert day.days == 1 and day.events == stats["last_day_events"], day
                db.session.remove()
            counts = rollup_counts(app)
            # Plausibility: one "*" row per active person-day of a counted person (not a bot),
            # one thread per post by a counted person, most threads answered.
            assert counts["person_days_all"] == stats["counted_person_days"], (counts, stats)
            assert counts["threads"] == stats["counted_posts"], (counts, stats)
            assert 0.5 < counts["answered"] / counts["threads"] <= 1, counts
            assert counts["tie_days"] > counts["person_days_all"], counts
            print("rollups: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()), flush=True)
            readings = []
            with frozen_at(morning_after(last)):
                for scope, window in ((Scope("org"), 90), (Scope("org"), 183),
                                      (Scope("process", "innovation"), 90)):  # fmt: skip
                    m = timed_measure(app, scope, last, window, args.runs)
                    readings.append((scope, window, m))
                    print(f"(c) {scope.name} {window} d: {m}", flush=True)
                if args.profile:
                    tag = "sqlite" if url.startswith("sqlite") else "postgresql"
                    with app.app_context():
                        engine = db.engine
                        profiled("(a) rebuild", lambda: rebuild_rollups(
                            engine, through=last - timedelta(days=1)),
                            OUT / f"telemetry-{tag}-rebuild.prof", engine)  # fmt: skip
                        profiled("(b) one day", lambda: run_rollups(engine, through=last),
                                 OUT / f"telemetry-{tag}-day.prof", engine)  # fmt: skip
                        profiled("(c) org 90 d, computed",
                                 lambda: measure(Scope("org"), last, 90),
                                 OUT / f"telemetry-{tag}-measure.prof", engine,
                                 session=True)  # fmt: skip
                        db.session.rollback()
                        db.session.remove()
            floors_after = floor(url)
            floors = {k: min(v, floors_after[k]) for k, v in floors.items()}
            version = server_version(url)
            if args.reuse and url.startswith("sqlite"):
                clear_rollups(app)  # the reused file stays as generated
            with app.app_context():
                db.engine.dispose()

    sqlite = url.startswith("sqlite")
    f = floors["kind"]
    print()
    print(f"Telemetry: {total:,} events over {args.days} days, {stats['people']:,} people; "
          f"{version}; Python {platform.python_version()}; {os.cpu_count()} CPUs; "
          f"load {os.getloadavg()[0]:.1f}; code at {code}")  # fmt: skip
    print(f"{'':58}{'seconds':>9}{'target':>8}{'x floor':>9}")

    def line(label: str, seconds: float, target: float | None, extra: str = "") -> None:
        goal = f"{target:g} s" if target is not None and sqlite else ""
        mark = "" if target is None or not sqlite else (" ok" if seconds <= target else " MISSED")
        print(f"{label:58}{seconds:9.3f}{goal:>8}{seconds / f:9.1f}{mark}{extra}")

    line(f"(a) rollups from scratch ({rebuilt.days} days)", t_rebuild, TARGETS["rebuild"],
         f"  {rebuilt.events / t_rebuild:,.0f} events/s")  # fmt: skip
    line(f"(b) one incremental day ({last}, {day.events:,} events)", t_day, TARGETS["day"])
    for scope, window, m in readings:
        extra = f"  population {m['population']:,}; first {m['first']:.3f} s"
        line(f"(c) measure({scope.name}, {window} d), computed", m["computed"],
             TARGETS["measure"], extra)  # fmt: skip
        if m["kept"] is not None:
            line("    the same, figures kept", m["kept"], TARGETS["measure"])
    line("(d) floor: SELECT kind, count(*) ... GROUP BY kind", f, None)
    line("    the same count per UTC day", floors["day"], None)


if __name__ == "__main__":
    main()
