"""Benchmark of the home feed (GET /api/v1/feed, first page) under the production server, next
to the framework ceiling (GET /healthz of the same app under the same server).

    .venv/bin/python bench/feed.py [--people 10000] [--groups 200] [--posts 1000000]
        [--database-url URL] [--duration 15] [--connections 16] [--servers 2x4,3x4]
        [--reuse]

Builds a world (people in departments, ~50 followed people each, ~5 groups each in a mix of
public, private and secret groups, followed groups and hashtags, posts spread over a year with
some in groups, hashtags, reactions and pinned announcements; see ``bench/feed_world.py``) in
a database whose schema comes from the migrations, then for each server setting starts
gunicorn (gthread workers x threads) on 127.0.0.1 with ``ESN_OUTBOX_DISPATCH=off`` and runs a
bounded load (``wrk`` if installed, otherwise a Python client) of ``--duration`` seconds:

(a) the home feed, first page (20 posts and the pinned announcements), each request with the
    bearer token of another person (thousands of different readers);
(b) the reference: GET /healthz of the same app under the same server, a JSON answer without
    authentication or database; no endpoint of this app can be faster.

and prints p50, p99 and requests per second of both, and the feed's share of the ceiling.
Before serving it checks that the feed answers 200 with a full page and that the optimised
feed query returns exactly what the straightforward one does for a sample of readers.

SQLite (the default) uses a file in a temporary directory, or ``bench/out/`` with ``--reuse``
(generated once, then migrated to the current head and reused). PostgreSQL: ``--database-url``
names a server and database; a fresh schema (``esn_bench_<random>``) is created, migrated,
filled and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask
from sqlalchemy import create_engine, select, text, update

from bench import loadgen
from bench.feed_world import World, bench_token, generate
from esn import create_app
from esn.extensions import db

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"
FEED = "/api/v1/feed"
CEILING = "/healthz"


# --- the database -------------------------------------------------------------------------------


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
def database(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, str]]:
    """(URL, what happened) of a migrated database holding the world."""
    world = World(args.people, args.groups, args.posts, seed=args.seed)
    if args.database_url is None:
        name = f"feed-{args.people}p-{args.groups}g-{args.posts}-s{args.seed}.sqlite3"
        path = (OUT if args.reuse else workdir) / name
        marker = path.with_suffix(".json")
        url = f"sqlite:///{path}"
        if args.reuse and path.exists() and marker.exists():
            started = time.perf_counter()
            migrate(url, workdir)  # a reused file is brought to the current head
            yield url, f"reused {path.relative_to(ROOT)} (migrated in " \
                f"{time.perf_counter() - started:.1f} s)"  # fmt: skip
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, marker, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        migrate(url, workdir)
        started = time.perf_counter()
        counts = generate(world, url, date.today())
        took = time.perf_counter() - started
        marker.write_text(json.dumps({"counts": counts, "generated": str(date.today())}))
        yield url, f"generated in {took:.0f} s: {_counts(counts)}"
        return
    schema = f"esn_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in args.database_url else "?"
        url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
        migrate(url, workdir)
        started = time.perf_counter()
        counts = generate(world, url, date.today())
        yield url, f"generated in {time.perf_counter() - started:.0f} s: {_counts(counts)}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _counts(counts: dict[str, int]) -> str:
    keys = ("users", "groups", "group_members", "follows", "posts", "post_hashtags")
    return ", ".join(f"{counts[k]:,} {k}" for k in keys)


def readers(url: str, workdir: Path, count: int, seed: int) -> list[int]:
    """Active people, in a random order, who have all visited today already.

    The first authenticated request of a person's day records a visit (one write per person
    per day); the benchmark measures the steady state of the rest of the day."""
    from esn.accounts.models import User

    app = make_app(url, workdir)
    with app.app_context():
        db.session.execute(update(User).values(last_visit_on=datetime.now(UTC).date()))
        db.session.commit()
        ids = list(db.session.scalars(select(User.id).where(User.is_active.is_(True))))
        db.session.remove()
        db.engine.dispose()
    random.Random(seed).shuffle(ids)
    return ids[:count]


def check(url: str, workdir: Path, sample: list[int]) -> dict[str, float]:
    """The feed answers a full page, and the optimised query agrees with the plain one; plus
    in-process timings (no HTTP server, one thread) of the query and the whole request."""
    from esn.accounts.models import User
    from esn.social import queries

    app = make_app(url, workdir)
    client = app.test_client()
    times: dict[str, list[float]] = {"query": [], "request": []}
    with app.app_context():
        for uid in sample:
            response = client.get(FEED, headers={"Authorization": f"Bearer {bench_token(uid)}"})
            assert response.status_code == 200, (uid, response.status_code, response.get_data())
            user = db.session.get(User, uid)
            assert user is not None
            fast, _, _ = queries.home_feed(user, None, 20)
            plain = queries.home_feed_reference(user, None, 20)[0]
            assert [p.id for p in fast] == [p.id for p in plain], uid
            db.session.remove()
        n = len(response.get_json()["items"])
        assert n == 20, f"a page of 20 expected, got {n}"
        for uid in sample:
            user = db.session.get(User, uid)
            assert user is not None
            started = time.perf_counter()
            queries.home_feed(user, None, 20)
            times["query"].append(time.perf_counter() - started)
            db.session.remove()
            started = time.perf_counter()
            client.get(FEED, headers={"Authorization": f"Bearer {bench_token(uid)}"})
            times["request"].append(time.perf_counter() - started)
        db.engine.dispose()
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


# --- the server --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    url: str, workdir: Path, workers: int, threads: int, *, outbox: str = "off"
) -> Iterator[tuple[str, int]]:
    """gunicorn serving ``wsgi:app`` on loopback, as production runs it; yields its base URL
    and the process id of its master. ``outbox`` is ``ESN_OUTBOX_DISPATCH`` (``off``: jobs wait
    in the outbox; ``thread``: they run after each commit, as in production)."""
    port = _free_port()
    env = {
        **os.environ,
        "ESN_DATABASE_URL": url,
        "ESN_INSTANCE_PATH": str(workdir / "instance"),
        "ESN_SECRET_KEY": "benchmark-secret-key-not-for-production",
        "ESN_OUTBOX_DISPATCH": outbox,
    }
    log = (workdir / f"gunicorn-{workers}x{threads}-{outbox}.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--backlog", "2048",
         "wsgi:app"],
        env=env, cwd=ROOT, stdout=log, stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=5) as r:  # noqa: S310
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start; see {log.name}")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children so far (Linux; 0 elsewhere)."""
    total = 0
    try:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if stat.parent.name == str(pid) or fields[1] == str(pid):  # itself, or a child
                total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    except OSError:
        return 0.0
    return total / os.sysconf("SC_CLK_TCK")


def measure(
    base: str, master: int, tokens: list[str], args: argparse.Namespace
) -> tuple[loadgen.Result, loadgen.Result]:
    """(feed, ceiling): the best of ``--repeat`` runs of each, taken in turns so that both see
    the same machine; each with the server's CPU time per request."""

    def load(path: str, toks: list[str], seconds: float) -> loadgen.Result:
        cpu = cpu_seconds(master)
        result = loadgen.run(
            base, path, toks, duration=seconds, connections=args.connections, tool=args.tool
        )
        result.cpu_ms = (cpu_seconds(master) - cpu) * 1000 / max(result.requests, 1)
        if result.bad_status or result.socket_errors or not result.requests:
            raise SystemExit(f"{path}: {result}")
        return result

    load(CEILING, [], args.warmup)
    load(FEED, tokens, args.warmup)
    ceilings, feeds = [], []
    for _ in range(args.repeat):
        ceilings.append(load(CEILING, [], args.duration))
        feeds.append(load(FEED, tokens, args.duration))
    return max(feeds, key=lambda r: r.rps), max(ceilings, key=lambda r: r.rps)


# --- main -----------------------------------------------------------------------------------------


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
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server (a fresh schema is created and dropped); "
                        "default: a SQLite file")  # fmt: skip
    parser.add_argument("--reuse", action="store_true",
                        help="SQLite: keep the generated file in bench/out/, reuse it")  # fmt: skip
    parser.add_argument("--duration", type=float, default=15, help="seconds per load run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds before each run")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each endpoint per setting; the best counts")  # fmt: skip
    parser.add_argument("--connections", type=int, default=8,
                        help="concurrent keep-alive connections of the load generator")  # fmt: skip
    parser.add_argument("--servers", default="2x4",
                        help="gunicorn settings to try: WORKERSxTHREADS,...")  # fmt: skip
    parser.add_argument("--readers", type=int, default=5000,
                        help="how many different people make the feed requests")  # fmt: skip
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args(argv)
    settings = [tuple(map(int, s.split("x"))) for s in args.servers.split(",")]

    if args.tool != "python" and not loadgen.wrk_path():
        if args.tool == "wrk":
            raise SystemExit("wrk is not installed: apt-get install wrk (or brew install wrk)")
        print("note: wrk is not installed (apt-get install wrk); using the Python load "
              "generator, which takes CPU from the server on a small machine",
              file=sys.stderr)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="esn-bench-") as tmp:
        workdir = Path(tmp)
        with database(args, workdir) as (url, what):
            print(f"database: {what}", flush=True)
            ids = readers(url, workdir, args.readers, args.seed)
            timings = check(url, workdir, ids[:50])
            tokens = [bench_token(uid) for uid in ids]
            results = []
            for workers, threads in settings:
                with server(url, workdir, workers, threads) as (base, master):
                    feed, ceiling = measure(base, master, tokens, args)
                results.append(((workers, threads), feed, ceiling))
                print(f"  {workers}x{threads}: feed {feed.rps:,.0f} req/s, "
                      f"healthz {ceiling.rps:,.0f} req/s", flush=True)  # fmt: skip
            version = server_version(url)

    tool = results[0][1].tool
    print()
    print(f"Home feed, first page: {args.people:,} people, {args.groups} groups, "
          f"{args.posts:,} posts; {version}; Python {platform.python_version()}; "
          f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"gunicorn gthread on 127.0.0.1, {tool}, {args.connections} connections, "
          f"{args.duration:.0f} s per run, best of {args.repeat}, "
          f"{len(tokens):,} different readers")  # fmt: skip
    print(f"in-process, one thread (median of 50 readers): feed query "
          f"{timings['query']:.2f} ms, whole request {timings['request']:.2f} ms")  # fmt: skip
    print(f"{'server':8}{'endpoint':22}{'p50 ms':>8}{'p99 ms':>8}{'req/s':>8}"
          f"{'x ceiling':>10}{'CPU ms/req':>11}")  # fmt: skip
    for (workers, threads), feed, ceiling in results:
        for label, r in (("(a) GET " + FEED, feed), ("(b) GET " + CEILING, ceiling)):
            name = f"{workers}x{threads}" if r is feed else ""
            print(f"{name:8}{label:22}{r.p50_ms:8.1f}{r.p99_ms:8.1f}{r.rps:8,.0f}"
                  f"{r.rps / ceiling.rps:10.2f}{r.cpu_ms:11.2f}")  # fmt: skip
    best = max(results, key=lambda r: r[1].rps)
    print(f"best: {best[0][0]}x{best[0][1]}, feed at {best[1].rps / best[2].rps:.2f} of the "
          f"ceiling in req/s (target: 1,500 req/s with p99 <= 25 ms on SQLite, >= 0.20 of the "
          f"ceiling); server CPU per request {best[1].cpu_ms / best[2].cpu_ms:.1f} x the "
          f"ceiling's")  # fmt: skip


if __name__ == "__main__":
    main()
