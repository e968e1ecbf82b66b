"""Benchmark of live delivery (Socket.IO) under the production server: a post in a group whose
members are all connected, and notifications to one person, next to the floor (a bare
python-socketio server doing the same emits on the same machine, with the same clients).

    .venv/bin/python bench/realtime.py [--clients 1000] [--posts 50] [--gap 1.0]
        [--rate 100,20,5] [--duration 10] [--notify mention] [--servers 1x1100]
        [--client-processes 4] [--database-url URL] [--gevent] [--keep]

Builds a fresh database from the migrations (SQLite, or a scratch schema on ``--database-url``)
with ``--clients`` people, each with an API token (``do_create_token``), all members of one
public group (``do_create_group`` and ``do_join``, not 1,000 HTTP calls); with ``--notify
comment`` also one post by each of them. For each ``--servers`` setting it starts gunicorn on
127.0.0.1 as the threading mode needs it: ONE worker (the rooms live in the process; more
workers need Redis) of the gthread class with THREADS threads, ``wsgi:app`` with
``ESN_OUTBOX_DISPATCH=thread`` (the push runs in a background thread of the committing process
right after the commit). Every open WebSocket holds one of the worker's threads for its whole
life, so THREADS must exceed the clients (the default is clients + 100), and gunicorn's
``--worker-connections`` (1,000 by default, which gthread also enforces) is raised above it.
Then ``--clients`` python-socketio clients (websocket transport, ``auth={"token": ...}``, one
per person) spread over ``--client-processes`` child processes connect, and each records the
receipt time (``time.time()``: one clock, one machine) of every ``feed:new_item`` and
``notification:new``. Measured:

(a) a post in the group (``POST /api/v1/posts`` with ``group_id``, by the group's owner, who
    is one of the connected members), ``--posts`` times, each sent ``--gap`` seconds after the
    previous one reached every client: the time from just before the request to the FIRST and
    to the LAST client's receipt (p50 and p99 over the posts), and the request's answer time;
(b) notifications to one person at each ``--rate`` (requests per second; by default 100, the
    issue's, then 20 and 5, which one process keeps up with here) for ``--duration`` seconds
    after a second of warm-up (open loop: each request is sent at its scheduled moment by a
    pool of ``--senders`` threads, whether or not the earlier ones were answered; a connection
    idle for more than a second is replaced before the clock starts, gunicorn closes idle
    keep-alive connections after 2 s): with ``--notify mention`` a post outside any group by
    member i mentioning member i + 1 (``@handle``), with ``comment`` a comment by member i on
    member i + 1's post; either way exactly one notification, for one person, whose client
    must be the only one to receive it. The figure is the time from just
    before the request to that client's receipt (p50, p99), measured until every notification
    has arrived (a backlog shows as it is, not cut off).

Also printed: the request's answer time, the server's CPU per post or request (the worker's
user + system time over the run, until the last receipt), the clients' CPU per post, and the
worker's memory and threads with every client connected. After the run the outbox is read:
jobs left behind (failed, waiting for ``esn worker``) are counted with their error.

The floor is a bare python-socketio ``Server`` (same async mode, simple-websocket, same
gunicorn settings; no Flask, no application, no database) with the same clients connected,
each put in a room of everyone and a room of its own; a plain HTTP request emits at once (in
the request's thread) to the room of everyone or to one client's room, and is measured the same
way: what any implementation costs on this machine, through this server, to these clients. The
clients handle each message in their read thread (python-socketio's client starts a thread
per message otherwise), so that as little client time as possible is in both figures.

With ``--gevent`` the same runs once more on gunicorn's gevent worker (``-k gevent -w 1``,
``ESN_SOCKETIO_ASYNC_MODE=gevent``; engine.io then serves WebSockets with simple-websocket on
gevent, gevent-websocket is not needed). gevent is not one of the project's dependencies:
install it for the benchmark only (``.venv/bin/pip install gevent``, or ``pip install --target
DIR gevent`` and run with ``PYTHONPATH=DIR``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engineio
import socketio

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FEED_EVENT = "feed:new_item"
NOTIFY_EVENT = "notification:new"
KEYS = {FEED_EVENT: "post_id", NOTIFY_EVENT: "object_id"}  # what names the request's item
EVERYONE = "everyone"  # the floor's room of every client
LAST_TARGET_MS = {"threading": 250.0, "gevent": 100.0}  # last client's receipt, p99
NOTIFY_TARGET_MS = 20.0  # a notification's receipt, p99, at NOTIFY_TARGET_RATE per second
NOTIFY_TARGET_RATE = 100.0


# --- the clients (child processes) -----------------------------------------------------------


class _EngineIOClient(engineio.Client):
    """An engine.io client that handles each message in its read thread: the stock one starts
    a new thread per message, which would put thread creation into every figure."""

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class _SocketIOClient(socketio.Client):
    def _engineio_client_class(self) -> type[engineio.Client]:
        return _EngineIOClient


Receipt = tuple[str, int, int, float]  # event, key (post or object id), client, time.time()


def _client_process(conn: Connection, base: str, tokens: list[str], first: int) -> None:
    """Connect one client per token, record what they receive, answer the parent."""
    received: list[Receipt] = []
    clients: list[socketio.Client] = []

    def handler(event: str, index: int) -> Callable[[Any], None]:
        key = KEYS[event]

        def on(data: Any) -> None:
            received.append((event, int(data[key]), index, time.time()))

        return on

    failures = []
    for i, token in enumerate(tokens):
        client = _SocketIOClient(reconnection=False)
        for event in KEYS:
            client.on(event, handler(event, first + i))
        try:
            client.connect(base, auth={"token": token}, transports=["websocket"], wait_timeout=60)
        except Exception as exc:  # reported to the parent, which stops
            failures.append(f"client {first + i}: {type(exc).__name__}: {exc}")
        clients.append(client)
    conn.send(("ready", sum(c.connected for c in clients), failures[:3]))
    while True:
        command = conn.recv()
        if command == "collect":
            batch = received.copy()
            del received[: len(batch)]  # what arrives meanwhile is appended after the batch
            conn.send((batch, sum(c.connected for c in clients)))
        elif command == "close":
            closers = [threading.Thread(target=c.disconnect) for c in clients if c.connected]
            for t in closers:
                t.start()
            for t in closers:
                t.join(timeout=10)
            conn.send("closed")
            return


class Clients:
    """One Socket.IO client per token, in ``processes`` child processes; client ``i`` holds
    ``tokens[i]``."""

    def __init__(self, base: str, tokens: list[str], processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.n = len(tokens)
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        size = math.ceil(len(tokens) / processes)
        for first in range(0, len(tokens), size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_client_process,
                args=(child, base, tokens[first : first + size], first),
                daemon=True,
            )
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def ready(self, timeout: float) -> None:
        connected, failures = 0, []
        for conn in self.conns:
            if not conn.poll(timeout):
                raise SystemExit("the clients did not connect in time")
            _, n, failed = conn.recv()
            connected += n
            failures += failed
        if connected != self.n:
            raise SystemExit(f"{connected} of {self.n} clients connected: {failures}")

    def collect(self) -> list[Receipt]:
        """Everything received since the last collect; every client must still be connected."""
        for conn in self.conns:
            conn.send("collect")
        receipts: list[Receipt] = []
        connected = 0
        for conn in self.conns:
            batch, n = conn.recv()
            receipts += batch
            connected += n
        if connected != self.n:
            raise SystemExit(f"only {connected} of {self.n} clients are still connected")
        return receipts

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def close(self) -> None:
        for conn in self.conns:
            with suppress(OSError):
                conn.send("close")
        for conn in self.conns:
            with suppress(OSError, EOFError):
                if conn.poll(60):
                    conn.recv()
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


# --- the floor: a bare python-socketio server -------------------------------------------------


def floor_app() -> Any:
    """WSGI app of the floor (gunicorn ``bench.realtime:floor_app()``): python-socketio alone.

    A client connecting with ``auth={"token": T}`` joins the room of everyone and ``user:T``;
    ``POST /emit`` with ``{"event", "room", "data"}`` emits at once, in the request's thread,
    and answers 201 with ``{"id": data["id"]}``."""
    mode = os.environ.get("BENCH_ASYNC_MODE", "threading")
    sio = socketio.Server(async_mode=mode, logger=False, engineio_logger=False)

    def connect(sid: str, _environ: dict[str, Any], auth: Any = None) -> bool:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            return False
        sio.enter_room(sid, EVERYONE)
        sio.enter_room(sid, f"user:{token}")
        return True

    sio.on("connect", connect)

    def http(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        status, out = "404 Not Found", b'{"error": "not found"}'
        if path == "/emit" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length))
            sio.emit(body["event"], body["data"], to=body["room"])
            status, out = "201 Created", json.dumps({"id": body["data"]["id"]}).encode()
        elif path == "/readyz":
            status, out = "200 OK", b'{"status": "ok"}'
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(out)))]
        start_response(status, headers)
        return [out]

    return socketio.WSGIApp(sio, http)


# --- the database -------------------------------------------------------------------------------


@dataclass
class World:
    url: str
    tokens: list[str]  # one per member; member 0 owns the group and writes the group posts
    handles: list[str]
    user_ids: list[int]
    group_id: int
    post_ids: list[int]  # one post outside the group by each member (for --notify comment)


@contextmanager
def database(database_url: str | None, workdir: Path) -> Iterator[str]:
    """The URL of an empty database migrated to head: a SQLite file in ``workdir``, or a fresh
    schema (``esn_bench_<random>``) on the PostgreSQL server of ``database_url``, dropped at
    the end."""
    from sqlalchemy import create_engine, text

    from bench.feed import migrate

    if database_url is None:
        url = f"sqlite:///{workdir / 'realtime.sqlite3'}"
        migrate(url, workdir)
        yield url
        return
    schema = f"esn_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in database_url else "?"
        url = f"{database_url}{sep}options=-csearch_path%3D{schema}"
        migrate(url, workdir)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def build(url: str, workdir: Path, members: int, posts: bool) -> World:
    """``members`` people with API tokens, all in one public group, and with ``posts`` one
    post each outside it; written with the application's own actions."""
    from sqlalchemy import delete

    from bench.feed import make_app
    from esn.accounts.actions import do_create_token, do_create_user
    from esn.extensions import db
    from esn.groups.actions import do_create_group, do_join
    from esn.groups.models import JoinPolicy, Visibility
    from esn.outbox.models import OutboxJob
    from esn.social.actions import check_create_post
    from esn.social.schemas import PostCreate

    app = make_app(url, workdir)  # ESN_OUTBOX_DISPATCH=off: nothing is pushed while building
    today = datetime.now(UTC).date()
    with app.app_context():
        people, tokens = [], []
        for i in range(members):
            user = do_create_user(None, {
                "email": f"member{i:05d}@example.org", "display_name": f"Member {i}",
                "roles": ["employee"], "password": None,
            })  # fmt: skip
            user.last_visit_on = today  # today's visit is recorded already
            _token, secret = do_create_token(user, "bench", None)
            people.append(user)
            tokens.append(secret)
        group = do_create_group(people[0], {
            "name": "Everyone", "description": "All of us",
            "visibility": Visibility.public, "join_policy": JoinPolicy.open,
        })  # fmt: skip
        for user in people[1:]:
            do_join(user, group)
        post_ids = []
        if posts:
            for i, user in enumerate(people):
                fields = PostCreate(body=f"What I am working on, by member {i}").model_dump()
                post_ids.append(check_create_post(user, fields, None).id)
        db.session.commit()
        # What the writes above queued (membership and feed pushes): nobody was connected.
        db.session.execute(delete(OutboxJob))
        db.session.commit()
        world = World(
            url, tokens, [p.handle for p in people], [p.id for p in people], group.id, post_ids
        )
        db.session.remove()
        db.engine.dispose()
    return world


def leftovers(world: World, workdir: Path) -> tuple[int, int, dict[str, int]]:
    """After a run: outbox jobs not done, live notifications not marked delivered, and why
    jobs failed (the last line of each stored traceback, counted). Empties the outbox."""
    from sqlalchemy import delete, func, select, update

    from bench.feed import make_app
    from esn.extensions import db
    from esn.outbox.models import OutboxJob
    from esn.realtime.models import Notification

    app = make_app(world.url, workdir)
    why: dict[str, int] = defaultdict(int)
    with app.app_context():
        errors = list(db.session.scalars(select(OutboxJob.last_error)))
        for error in errors:
            lines = (error or "(never run: pending when the server stopped)").strip().splitlines()
            causes = [x for x in lines if x and not x.startswith((" ", "[", "(Background"))]
            why[(causes or lines)[-1][:150]] += 1
        undelivered = db.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.delivered_at.is_(None))
        )
        # counted: the next setting starts with an empty outbox and counts its own
        db.session.execute(delete(OutboxJob))
        db.session.execute(
            update(Notification)
            .where(Notification.delivered_at.is_(None))
            .values(delivered_at=datetime.now(UTC))
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return len(errors), undelivered or 0, dict(why)


# --- the servers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    workers: int
    threads: int
    gevent: bool = False

    @property
    def mode(self) -> str:
        return "gevent" if self.gevent else "threading"

    @property
    def name(self) -> str:
        return "gevent 1 worker" if self.gevent else f"gthread {self.workers}x{self.threads}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(
    spec: str, env: dict[str, str], setting: Setting, connections: int, log: Path
) -> Iterator[tuple[str, int]]:
    """gunicorn serving ``spec`` on loopback; yields its base URL and its master's pid."""
    port = _free_port()
    if setting.gevent:
        worker = ["--worker-class", "gevent"]
    else:
        worker = ["--worker-class", "gthread", "--threads", str(setting.threads)]
    out = log.open("w")
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers",
         str(setting.workers), *worker, "--worker-connections", str(connections),
         "--backlog", "2048", "--graceful-timeout", "5", spec],
        env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=out,
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
                raise SystemExit(f"gunicorn did not start; see {log}")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time so far of these processes and their children (Linux)."""
    from bench.feed import cpu_seconds as of

    return sum(of(pid) for pid in pids)


def worker_memory(master: int) -> tuple[float, int]:
    """Resident memory (MB) and threads of the master's children (the worker)."""
    rss, threads = 0, 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == str(master):
                for line in (stat.parent / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, threads


# --- measuring ------------------------------------------------------------------------------------


class HTTP(http.client.HTTPConnection):
    """A keep-alive connection that is never reused once the server may have closed it:
    gunicorn closes a keep-alive connection idle for 2 s (``--keep-alive``), so one idle for
    more than a second is replaced, and ``ready()`` opens the TCP connection before the clock
    starts."""

    def __init__(self, base: str) -> None:
        super().__init__(base.removeprefix("http://"), timeout=60)
        self.used = 0.0

    def ready(self) -> None:
        if self.sock is None or time.monotonic() - self.used > 1.0:
            self.close()
            self.connect()

    def getresponse(self) -> http.client.HTTPResponse:
        response = super().getresponse()
        self.used = time.monotonic()
        return response


Trigger = Callable[[HTTP, int], int]  # (connection, n) -> the id of what was created


def _post(conn: HTTP, path: str, body: dict[str, Any], token: str | None) -> int:
    """POST JSON; the id of what was created (201)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", path, json.dumps(body), headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 201:
        raise RuntimeError(f"POST {path} answered {response.status}: {data[:300]!r}")
    return int(json.loads(data)["id"])


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the nearest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Broadcasts:
    first_ms: list[float] = field(default_factory=list)
    last_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)
    cpu_ms: float = 0.0  # the server's CPU per broadcast
    client_cpu_ms: float = 0.0  # all the clients' CPU per broadcast


@dataclass
class Singles:
    kind: str
    rate: float  # asked
    latency_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)
    sent: int = 0
    seconds: float = 0.0
    behind_ms: float = 0.0  # the latest a request was sent after its scheduled moment
    missing: int = 0
    cpu_ms: float = 0.0  # the server's CPU per request

    @property
    def achieved(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def _gather(
    clients: Clients, event: str, wanted: set[int], per_key: int, timeout: float, quiet: float
) -> dict[int, dict[int, float]]:
    """Receipts of ``event`` (key -> client -> time) until each key in ``wanted`` has
    ``per_key`` of them, nothing arrived for ``quiet`` seconds, or ``timeout`` passed."""
    got: dict[int, dict[int, float]] = defaultdict(dict)
    start = last_news = time.monotonic()
    while True:
        for ev, key, index, at in clients.collect():
            if ev != event:
                continue
            if index in got[key]:
                raise SystemExit(f"client {index} received {event} {key} twice")
            got[key][index] = at
            last_news = time.monotonic()
        now = time.monotonic()
        if all(len(got[k]) >= per_key for k in wanted):
            return got
        if now - start > timeout or now - last_news > quiet:
            return got
        time.sleep(0.1)


def broadcasts(
    base: str, clients: Clients, trigger: Trigger, count: int, gap: float, master: int,
    first_n: int = 0,
) -> Broadcasts:  # fmt: skip
    """``count`` broadcasts, one at a time; each must reach every client exactly once."""
    result = Broadcasts()
    conn = HTTP(base)
    cpu, client_cpu = cpu_seconds([master]), cpu_seconds(clients.pids())
    for n in range(first_n, first_n + count):
        conn.ready()
        started = time.time()
        key = trigger(conn, n)
        answered = time.time()
        time.sleep(gap)
        times = list(_gather(clients, FEED_EVENT, {key}, clients.n, 60, 10)[key].values())
        if len(times) != clients.n:
            raise SystemExit(f"broadcast {key} reached {len(times)} of {clients.n} clients")
        result.first_ms.append((min(times) - started) * 1000)
        result.last_ms.append((max(times) - started) * 1000)
        result.answer_ms.append((answered - started) * 1000)
    conn.close()
    # over the whole loop, idle gaps included (they cost next to nothing), per broadcast
    result.cpu_ms = (cpu_seconds([master]) - cpu) * 1000 / count
    result.client_cpu_ms = (cpu_seconds(clients.pids()) - client_cpu) * 1000 / count
    return result


def singles(
    base: str, clients: Clients, trigger: Trigger, kind: str, rate: float, duration: float,
    senders: int, master: int, first_n: int,
) -> Singles:  # fmt: skip
    """Open loop: request ``first_n + i`` at ``start + i / rate``; each gives one
    ``notification:new``, to client ``(first_n + i + 1) % clients``."""
    total = max(1, round(rate * duration))
    start = time.time() + 0.2
    schedule = [start + i / rate for i in range(total)]
    sent: list[tuple[float, float, int] | None] = [None] * total
    lock = threading.Lock()
    cursor = iter(range(total))
    errors: list[str] = []

    def sender() -> None:
        conn = HTTP(base)
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            delay = schedule[i] - time.time()
            if delay > 0:
                time.sleep(delay)
            conn.ready()
            began = time.time()
            try:
                key = trigger(conn, first_n + i)
            except (RuntimeError, OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                continue
            sent[i] = (began, time.time(), key)
        conn.close()

    cpu = cpu_seconds([master])
    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} of {total} requests failed, e.g. {errors[0]}")
    assert all(s is not None for s in sent)
    done = [s for s in sent if s is not None]
    result = Singles(kind, rate, sent=total, seconds=done[-1][0] - start + 1 / rate)
    result.behind_ms = max((s[0] - at) * 1000 for s, at in zip(done, schedule, strict=True))
    got = _gather(clients, NOTIFY_EVENT, {s[2] for s in done}, 1, 300, 15)
    # from the first request until the last notification arrived (a backlog is worked off)
    result.cpu_ms = (cpu_seconds([master]) - cpu) * 1000 / total
    for i, (began, answered, key) in enumerate(done):
        result.answer_ms.append((answered - began) * 1000)
        receipts = got.get(key, {})
        if not receipts:
            result.missing += 1
            continue
        expected = (first_n + i + 1) % clients.n
        if set(receipts) != {expected}:
            raise SystemExit(f"{key}: received by {sorted(receipts)}, meant for {expected}")
        result.latency_ms.append((receipts[expected] - began) * 1000)
    return result


@dataclass
class Run:
    setting: Setting
    label: str  # "app" or "floor"
    connect_s: float
    rss_mb: float  # the worker's resident memory with every client connected
    threads: int  # the worker's threads meanwhile (greenlets are not threads)
    posts: Broadcasts
    notes: list[Singles]
    jobs_left: int = 0  # outbox jobs not done at the end (failed and waiting for a retry)
    undelivered: int = 0  # live notifications never marked delivered
    failures: dict[str, int] = field(default_factory=dict)


def measure(
    label: str, base: str, master: int, world: World, post: Trigger,
    notify: dict[str, Trigger], args: argparse.Namespace, setting: Setting,
) -> Run:  # fmt: skip
    n = args.clients
    started = time.perf_counter()
    clients = Clients(base, world.tokens, args.client_processes)
    try:
        clients.ready(timeout=max(120, n / 5))
        connect_s = time.perf_counter() - started
        rss, threads = worker_memory(master)
        print(f"    {label}: {n} clients connected in {connect_s:.1f} s; worker RSS "
              f"{rss:.0f} MB, {threads} threads", flush=True)  # fmt: skip
        broadcasts(base, clients, post, args.warmup_posts, args.gap, master)
        posts = broadcasts(base, clients, post, args.posts, args.gap, master, args.warmup_posts)
        print(f"    {label}: post to {n}: last client p50 {percentile(posts.last_ms, 0.5):.0f} "
              f"ms, p99 {percentile(posts.last_ms, 0.99):.0f} ms", flush=True)  # fmt: skip
        notes, counter = [], 0
        for kind, trigger in notify.items():
            for rate in args.rate:
                # a warm-up second, then the measured run; a pause lets a backlog drain first
                for seconds, keep in ((1.0, False), (args.duration, True)):
                    s = singles(base, clients, trigger, kind, rate, seconds, args.senders, master,
                                counter)  # fmt: skip
                    counter += s.sent
                    if keep:
                        notes.append(s)
                time.sleep(1)
                print(f"    {label}: {kind} notifications at {s.achieved:.0f}/s: p50 "
                      f"{percentile(s.latency_ms, 0.5):.1f} ms, p99 "
                      f"{percentile(s.latency_ms, 0.99):.1f} ms", flush=True)  # fmt: skip
    finally:
        clients.close()
    return Run(setting, label, connect_s, rss, threads, posts, notes)


def app_triggers(world: World, kinds: list[str]) -> tuple[Trigger, dict[str, Trigger]]:
    n = len(world.tokens)

    def post(conn: HTTP, i: int) -> int:
        body = {"body": f"News for everyone, number {i}", "group_id": world.group_id}
        return _post(conn, "/api/v1/posts", body, world.tokens[0])

    def mention(conn: HTTP, i: int) -> int:
        # member i mentions member i + 1 in a post outside any group
        body = {"body": f"@{world.handles[(i + 1) % n]} have a look at this, number {i}"}
        return _post(conn, "/api/v1/posts", body, world.tokens[i % n])

    def comment(conn: HTTP, i: int) -> int:
        # member i comments on member i + 1's post
        path = f"/api/v1/posts/{world.post_ids[(i + 1) % n]}/comments"
        return _post(conn, path, {"body": f"Good point, number {i}"}, world.tokens[i % n])

    triggers = {"mention": mention, "comment": comment}
    return post, {k: triggers[k] for k in kinds}


def floor_triggers(world: World) -> tuple[Trigger, dict[str, Trigger]]:
    n = len(world.tokens)

    def post(conn: HTTP, i: int) -> int:
        data = {"id": i, "post_id": i, "group_id": world.group_id, "author_id": world.user_ids[0]}
        return _post(conn, "/emit", {"event": FEED_EVENT, "room": EVERYONE, "data": data}, None)

    def single(conn: HTTP, i: int) -> int:
        author, to = i % n, (i + 1) % n
        data = {  # about the size and shape of the application's notification
            "id": i, "kind": "mention", "count": 1, "group_id": None, "post_id": i,
            "actor": {"id": world.user_ids[author], "handle": world.handles[author],
                      "display_name": f"Member {author}", "avatar_url": None},
            "text": f"Member {author} mentioned you in a post", "object_type": "post",
            "object_id": i, "created_at": datetime.now(UTC).isoformat(),
        }  # fmt: skip
        body = {"event": NOTIFY_EVENT, "room": f"user:{world.tokens[to]}", "data": data}
        return _post(conn, "/emit", body, None)

    return post, {"emit": single}


def run_setting(
    setting: Setting, world: World, workdir: Path, args: argparse.Namespace
) -> tuple[Run, Run]:
    connections = args.worker_connections or max(setting.threads, args.clients) + 200
    app_env = {
        "ESN_DATABASE_URL": world.url,
        "ESN_INSTANCE_PATH": str(workdir / "instance"),
        "ESN_SECRET_KEY": "benchmark-secret-key-not-for-production",
        "ESN_OUTBOX_DISPATCH": "thread",
        "ESN_SOCKETIO_ASYNC_MODE": setting.mode,
        "ESN_LOG_LEVEL": "WARNING",
        "ESN_LOG_FORMAT": "text",
    }
    slug = setting.name.replace(" ", "-")
    print(f"  {setting.name} (worker connections {connections}):", flush=True)
    with gunicorn("bench.realtime:floor_app()", {"BENCH_ASYNC_MODE": setting.mode}, setting,
                  connections, workdir / f"floor-{slug}.log") as (base, master):  # fmt: skip
        floor = measure("floor", base, master, world, *floor_triggers(world), args, setting)
    with gunicorn("wsgi:app", app_env, setting, connections,
                  workdir / f"app-{slug}.log") as (base, master):  # fmt: skip
        post, notify = app_triggers(world, args.notify)
        app = measure("app", base, master, world, post, notify, args, setting)
    app.jobs_left, app.undelivered, app.failures = leftovers(world, workdir)
    return app, floor


# --- the report -----------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = f" ({line.split(':', 1)[1].strip()})"
                break
    names = ["python-socketio", "python-engineio", "simple-websocket", "Flask-SocketIO",
             "gunicorn", "websocket-client"]  # fmt: skip
    if gevent_version():
        names.append("gevent")
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in names)
    memory = ""
    with suppress(OSError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    return f"{os.cpu_count()} CPUs{model}{memory}; Python {platform.python_version()}; {versions}"


def server_version(url: str) -> str:
    from bench.feed import server_version as version

    return version(url)


def gevent_version() -> str | None:
    try:
        return metadata.version("gevent")
    except metadata.PackageNotFoundError:
        return None


def row(
    figure: str, value: float, floor: float | None, target: float | None = None, unit: str = "ms"
) -> None:
    ratio = f"{value / floor:8.1f}" if floor else f"{'':8}"
    shown = f"{floor:9.1f} {unit:3}" if floor is not None else f"{'':13}"
    goal = f"<= {target:.0f} {unit}" if target is not None else ""
    met = ("yes" if value <= target else "NO") if target is not None else ""
    print(f"{figure:50}{value:9.1f} {unit:3}{shown}{ratio}{goal:>12}{met:>6}")


def report(app: Run, floor: Run, args: argparse.Namespace) -> None:
    n, q = args.clients, percentile
    posts, fp = app.posts, floor.posts
    print()
    print(f"{app.setting.name}: {n:,} clients (connected in {app.connect_s:.1f} s; floor "
          f"{floor.connect_s:.1f} s); {len(posts.last_ms)} posts in the {n:,}-member group, "
          f"{args.gap:g} s apart")  # fmt: skip
    print(f"{'figure':50}{'value':>13}{'floor':>13}{'x floor':>8}{'target':>12}{'met?':>6}")
    row(f"post to {n:,}: first client, p50", q(posts.first_ms, 0.5), q(fp.first_ms, 0.5))
    row(f"post to {n:,}: last client, p50", q(posts.last_ms, 0.5), q(fp.last_ms, 0.5))
    row(f"post to {n:,}: last client, p99", q(posts.last_ms, 0.99), q(fp.last_ms, 0.99),
        LAST_TARGET_MS[app.setting.mode])  # fmt: skip
    row(f"post to {n:,}: last client, max", max(posts.last_ms), max(fp.last_ms))
    row("post: the request's answer, p50", q(posts.answer_ms, 0.5), q(fp.answer_ms, 0.5))
    row("post: the server's CPU per post", posts.cpu_ms, fp.cpu_ms)
    row("post: the clients' CPU per post", posts.client_cpu_ms, fp.client_cpu_ms)
    floors = {f.rate: f for f in floor.notes}
    for s in app.notes:
        f = floors[s.rate]
        target = NOTIFY_TARGET_MS if s.rate == NOTIFY_TARGET_RATE else None
        name = f"{s.kind} at {s.rate:g}/s"
        row(f"{name}: p50", q(s.latency_ms, 0.5), q(f.latency_ms, 0.5))
        row(f"{name}: p99", q(s.latency_ms, 0.99), q(f.latency_ms, 0.99), target)
        row(f"{name}: max", max(s.latency_ms, default=math.nan), max(f.latency_ms))
        row(f"{name}: the request's answer, p99", q(s.answer_ms, 0.99), q(f.answer_ms, 0.99))
        row(f"{name}: the server's CPU per request", s.cpu_ms, f.cpu_ms)
    row("server worker RSS, every client connected", app.rss_mb, floor.rss_mb, unit="MB")
    print(f"{'server worker threads, every client connected':50}{app.threads:9} {'':3}"
          f"{floor.threads:9}")  # fmt: skip
    for run in (app, floor):
        for s in run.notes:
            if s.missing or s.behind_ms > 100 or s.achieved < 0.95 * s.rate:
                print(f"  {run.label}, {s.kind} at {s.rate:g}/s: sent {s.sent} at "
                      f"{s.achieved:.1f}/s, up to {s.behind_ms:.0f} ms behind schedule; "
                      f"{s.missing} notifications never arrived")  # fmt: skip
    if app.jobs_left or app.undelivered:
        print(f"  app: {app.jobs_left} outbox jobs were left (they wait for `esn worker`), "
              f"{app.undelivered} notifications were never marked delivered; why:")  # fmt: skip
        for why, count in sorted(app.failures.items(), key=lambda kv: -kv[1]):
            print(f"    {count:5} x {why}")


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000,
                        help="connected people, all members of the group")  # fmt: skip
    parser.add_argument("--posts", type=int, default=50, help="measured group posts")
    parser.add_argument("--warmup-posts", type=int, default=3)
    parser.add_argument("--gap", type=float, default=1.0,
                        help="seconds from a post's last receipt to the next post")  # fmt: skip
    parser.add_argument("--rate", default="100,20,5",
                        help="notification requests per second, one run each")  # fmt: skip
    parser.add_argument("--duration", type=float, default=10,
                        help="seconds per rate (after 1 s of warm-up)")  # fmt: skip
    parser.add_argument("--notify", default="mention",
                        help="how a notification is made: mention, comment, or both")  # fmt: skip
    parser.add_argument("--senders", type=int, default=50,
                        help="threads sending the notification requests")  # fmt: skip
    parser.add_argument("--servers", default=None,
                        help="gunicorn gthread settings, WORKERSxTHREADS,... (one worker); "
                        "default 1x(clients + 100)")  # fmt: skip
    parser.add_argument("--worker-connections", type=int, default=0,
                        help="gunicorn --worker-connections; default max(threads, clients) + "
                        "200")  # fmt: skip
    parser.add_argument("--client-processes", type=int, default=4,
                        help="child processes the clients are spread over")  # fmt: skip
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server (a fresh schema is created and dropped); "
                        "default: a SQLite file")  # fmt: skip
    parser.add_argument("--gevent", action="store_true",
                        help="also run on gunicorn's gevent worker (needs gevent)")  # fmt: skip
    parser.add_argument("--gevent-only", action="store_true",
                        help="run on gunicorn's gevent worker only")  # fmt: skip
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (database, servers' logs)")  # fmt: skip
    args = parser.parse_args(argv)
    args.rate = [float(r) for r in args.rate.split(",") if r]
    args.notify = ["mention", "comment"] if args.notify == "both" else args.notify.split(",")
    if not set(args.notify) <= {"mention", "comment"}:
        raise SystemExit("--notify: mention, comment or both")
    settings = []
    if not args.gevent_only:
        for s in (args.servers or f"1x{args.clients + 100}").split(","):
            setting = Setting(*map(int, s.split("x")))
            if setting.workers != 1:
                raise SystemExit("one worker: without Redis the rooms live in one process")
            if setting.threads < args.clients + args.senders:
                raise SystemExit(f"{setting.threads} threads cannot hold {args.clients} "
                                 "WebSockets and serve requests: use more threads than "
                                 "clients")  # fmt: skip
            settings.append(setting)
    if args.gevent or args.gevent_only:
        if gevent_version() is None:
            raise SystemExit("gevent is not installed: .venv/bin/pip install gevent")
        settings.append(Setting(1, 0, gevent=True))

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    runs = []
    with tempfile.TemporaryDirectory(prefix="esn-bench-realtime-") as tmp:
        workdir = Path(tempfile.mkdtemp(prefix="esn-bench-realtime-") if args.keep else tmp)
        if args.keep:
            print(f"work directory (kept): {workdir}")
        with database(args.database_url, workdir) as url:
            started = time.perf_counter()
            world = build(url, workdir, args.clients, posts="comment" in args.notify)
            version = server_version(url)
            print(f"database: {version}; {args.clients:,} people with API tokens, all in one "
                  f"public group (built in {time.perf_counter() - started:.1f} s)",
                  flush=True)  # fmt: skip
            for setting in settings:
                runs.append(run_setting(setting, world, workdir, args))
    load_after = Path("/proc/loadavg").read_text().split()[:3]

    print()
    print(f"Realtime delivery. Machine: {machine()}")
    print(f"Database: {version}. Load average before {' '.join(load_before)}, after "
          f"{' '.join(load_after)}.")  # fmt: skip
    print(f"Clients: {args.clients:,} python-socketio clients (websocket transport) in "
          f"{args.client_processes} processes; times: time.time() just before the request, "
          "and in the client's event handler.")  # fmt: skip
    for app, floor in runs:
        report(app, floor, args)
    print()
    print("floor: a bare python-socketio Server (same async mode, same gunicorn settings; no "
          "app, no database) that emits from a plain HTTP request, in the request's thread, "
          "to a room of every client (posts) or to one client's room (notifications).")  # fmt: skip
    print(f"p99 of {args.posts} posts: interpolated between the two slowest. Targets (the "
          f"issue's): last client p99 {LAST_TARGET_MS['threading']:.0f} ms in threading mode, "
          f"{LAST_TARGET_MS['gevent']:.0f} ms with gevent; notifications p99 "
          f"{NOTIFY_TARGET_MS:.0f} ms at {NOTIFY_TARGET_RATE:.0f}/s.")  # fmt: skip


if __name__ == "__main__":
    main()
