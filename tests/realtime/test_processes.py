"""Live delivery across processes: two gunicorn servers (``wsgi:app``, one gthread worker each)
sharing a SQLite database and a private Redis (Socket.IO's message queue, and the registry of
who has which socket open), with real Socket.IO clients over loopback.

Needs ``ESN_TEST_REDIS_URL`` (the marker for Redis tests) and ``redis-server`` on PATH. The
shared Redis named by that variable is never touched: this module starts its own redis-server
on a free port (without persistence, so that a restart comes back empty, as a cache server's
would), and stops and restarts it. The servers and Redis start once for the module (about
3 s: two application imports on loopback); each test uses people of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import socketio
from sqlalchemy import select

from esn import create_app
from esn.accounts.actions import do_create_token
from esn.accounts.models import User
from esn.clock import system_now
from esn.extensions import db
from esn.outbox.models import OutboxJob
from esn.realtime.models import Notification
from esn.realtime.notifications import NOTIFY
from tests.conftest import _base_config, fresh, make_user
from tests.realtime.live import Http, Live, free_port

REDIS_ENV = "ESN_TEST_REDIS_URL"
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHANNEL = "flask-socketio"  # Flask-SocketIO's message queue channel

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        not os.environ.get(REDIS_ENV) or shutil.which("redis-server") is None,
        reason=f"Redis tests skipped: set {REDIS_ENV} and put redis-server on PATH "
        "(these tests start a private redis-server)",
    ),
]


def wait_until(what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``check`` (every 50 ms) until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class PrivateRedis:
    """A redis-server of these tests only, without persistence: a restart starts empty."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> None:
        """Start on a free port; a restart takes the same port again."""
        restart = self.port != 0
        for _ in range(1 if restart else 5):  # a free port may be taken before we bind it
            self.port = self.port or free_port()
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--dir", str(self.workdir)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 10
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:  # ours answering, not someone else's on a port taken meanwhile
                    if self.client().info("server")["process_id"] == self.proc.pid:
                        return
                except redis.RedisError:
                    time.sleep(0.02)
            stop(self.proc)
            if not restart:
                self.port = 0
        raise AssertionError(f"could not start redis-server (port {self.port or 'free'})")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def subscribers(self) -> int:
        try:
            return int(dict(self.client().pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0))
        except redis.RedisError:
            return 0


class Server:
    """``gunicorn wsgi:app`` on loopback, as production runs it."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = workdir / f"{name}.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
                 "--worker-class", "gthread", "--threads", "16", "--graceful-timeout", "2",
                 "wsgi:app"],
                env=self.env, cwd=ROOT, stdout=log, stderr=log,
            )  # fmt: skip

    def ready(self) -> bool:
        if self.exited():
            raise AssertionError(f"{self.name} exited:\n{self.log()}")
        try:
            return requests.get(f"{self.base}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


class Cluster:
    def __init__(self, redis_server: PrivateRedis, env: dict[str, str]) -> None:
        self.redis = redis_server
        self.env = env
        self.servers: list[Server] = []
        self.sockets: list[Live] = []
        self.clients: list[Http] = []
        self.people = 0

    def person(self, name: str) -> dict[str, Any]:
        """Someone with a token, and an API client on each server."""
        self.people += 1
        user = make_user(f"{name}.{self.people}@example.org", display_name=name.title())
        _, token = do_create_token(user, "process test", None)
        db.session.commit()
        on = [Http(server.base, token) for server in self.servers]
        self.clients.extend(on)
        return {"id": user.id, "handle": user.handle, "token": token, "on": on}

    def connect(self, person: dict[str, Any], server: int) -> Live:
        live = Live(f"{person['handle']}@server{server + 1}")
        self.sockets.append(live)
        return live.connect(self.servers[server].base, auth={"token": person["token"]})

    def close_clients(self) -> None:
        for live in self.sockets:
            live.disconnect()
        for http in self.clients:
            http.session.close()  # no keep-alive connection holds a server's shutdown up
        self.sockets.clear()
        self.clients.clear()

    def listening(self) -> None:
        """Redis running and both servers subscribed to it (after a test that stopped it)."""
        if self.redis.proc is None or self.redis.proc.poll() is not None:
            self.redis.start()
        wait_until("both servers subscribed", lambda: self.redis.subscribers() == 2, 30)

    def worker_once(self) -> str:
        """``esn worker --once`` against the same database and Redis."""
        done = subprocess.run(
            [str(BIN / "esn"), "worker", "--once"],
            env=self.env, cwd=ROOT, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        output = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode == 0, output
        return output


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    """A private Redis, a SQLite file migrated to head, and two servers sharing both; started
    once for this module (each test uses people of its own)."""
    workdir = tmp_path_factory.mktemp("processes")
    database = workdir / "shared.sqlite3"
    shutil.copyfile(sqlite_template, database)
    url = f"sqlite:///{database}"
    private = PrivateRedis(workdir)
    private.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESN_")}
    env.update(
        ESN_DATABASE_URL=url,
        ESN_INSTANCE_PATH=str(workdir / "instance"),
        ESN_SECRET_KEY="process-test-secret-key-not-for-production",
        ESN_REDIS_URL=private.url,
        ESN_OUTBOX_DISPATCH="thread",
        ESN_COOKIE_SECURE="false",
        ESN_LOG_FORMAT="text",
        ESN_LOG_LEVEL="WARNING",
    )
    # This process only writes people and tokens, and reads what the servers wrote.
    app = create_app({**_base_config(workdir, url), "OUTBOX_DISPATCH": "sync"})
    ctx = app.app_context()
    ctx.push()
    cluster = Cluster(private, env)
    try:
        cluster.servers = [Server(name, env, workdir) for name in ("server1", "server2")]
        for server in cluster.servers:
            server.start()
        for server in cluster.servers:
            wait_until(f"{server.name} ready", server.ready, 60)
        # Socket.IO subscribes to the queue at a server's first Engine.IO connection: open one
        # (refused: no credentials) so that both listen before any test event is published.
        for server in cluster.servers:
            with pytest.raises(socketio.exceptions.ConnectionError):
                Live("probe").connect(server.base)
        yield cluster
    finally:
        cluster.close_clients()
        for server in cluster.servers:
            if server.proc is not None and server.proc.poll() is None:
                server.proc.terminate()
        for server in cluster.servers:
            if server.proc is not None:
                stop(server.proc)
        private.stop()
        db.session.remove()
        app.extensions["esn.outbox"].stop()
        db.engine.dispose()
        ctx.pop()


@pytest.fixture
def cluster(running: Cluster) -> Iterator[Cluster]:
    running.listening()
    try:
        yield running
    finally:
        running.close_clients()


def pending_jobs(since: datetime) -> list[OutboxJob]:
    fresh()
    return list(
        db.session.scalars(
            select(OutboxJob).where(OutboxJob.dead_at.is_(None), OutboxJob.created_at >= since)
        )
    )


def all_tried(jobs: list[OutboxJob]) -> list[OutboxJob] | None:
    """The pending jobs, once each of them has been tried (and has failed) at least once."""
    return jobs if jobs and all(j.attempts >= 1 for j in jobs) else None


def test_events_cross_processes_and_survive_a_redis_outage(cluster: Cluster) -> None:
    """A request to server 1 reaches a socket on server 2 through Redis. With Redis down,
    requests to both servers still succeed and the notifications are stored; their live
    delivery fails (the outbox job fails and backs off: 2 s after the first attempt). Redis is
    restarted empty; both servers reconnect and resubscribe. Once the retries are due,
    ``esn worker --once`` runs them (deterministic: no waiting for a running worker's next poll,
    and the web processes do not retry by themselves) and the held-back events reach the
    sockets on server 2 -- also one opened while Redis was down."""
    ann, bob, cai, dan = (cluster.person(n) for n in ("ann", "bob", "cai", "dan"))
    live_bob = cluster.connect(bob, 1)

    started = time.monotonic()
    post = ann["on"][0].post_in(f"Hello @{bob['handle']}, from server 1")
    got = live_bob.wait_for("notification:new", lambda d: d["post_id"] == post)
    assert (got["kind"], got["actor"]["id"]) == ("mention", ann["id"])
    crossed = time.monotonic() - started

    since = system_now()
    cluster.redis.stop()
    outage = time.monotonic()
    live_dan = cluster.connect(dan, 1)  # opened during the outage
    held = [
        ann["on"][0].post_in(f"Outage: @{bob['handle']} and @{dan['handle']} (1)"),
        cai["on"][1].post_in(f"During the outage, @{bob['handle']} (2)"),
    ]
    ann["on"][1].comment(held[1], "A comment during the outage")
    for http in bob["on"]:
        listed = {n["post_id"] for n in http.notifications() if n["kind"] == "mention"}
        assert set(held) <= listed
    assert [n["post_id"] for n in dan["on"][0].notifications()] == [held[0]]
    # Each server's outbox thread tried to deliver, found Redis away, and backed off.
    jobs = wait_until("the deliveries to fail", lambda: all_tried(pending_jobs(since)))
    for job in jobs:  # Redis refused: the ping before emitting, or the presence lookup
        assert "QueueUnavailable" in (job.last_error or "") or "redis.exceptions.Connection" in (
            job.last_error or ""
        ), job.last_error
    # Mentions of Bob (2) and Dan, Cai's comment notification, and the two feed pushes.
    assert sorted(j.topic for j in jobs) == sorted([NOTIFY] * 4 + ["realtime.feed"] * 2)
    live_bob.assert_none("notification:new", lambda d: d["post_id"] in held)
    live_dan.assert_none("notification:new")

    cluster.redis.start()  # empty: nothing of the old Redis survives
    wait_until("both servers resubscribed", lambda: cluster.redis.subscribers() == 2, 30)
    back = time.monotonic()
    due = max(j.available_at for j in jobs)
    time.sleep(max(0.0, (due - system_now()).total_seconds()) + 0.05)
    cluster.worker_once()
    for post_id in held:
        got = live_bob.wait_for("notification:new", lambda d, p=post_id: d["post_id"] == p)
        assert got["kind"] == "mention"
    live_dan.wait_for("notification:new", lambda d: d["post_id"] == held[0])
    assert pending_jobs(since) == []
    fresh()
    ids = [n["id"] for n in bob["on"][0].notifications() if n["post_id"] in held]
    assert all(db.session.get(Notification, i).delivered_at is not None for i in ids)
    # And live delivery works again without the worker.
    after = ann["on"][0].post_in(f"After the outage, @{bob['handle']}")
    live_bob.wait_for("notification:new", lambda d: d["post_id"] == after)
    print(
        f"\ncross-process delivery {crossed * 1000:.0f} ms; outage {back - outage:.1f} s "
        f"(until resubscribed); held-back events delivered {time.monotonic() - back:.1f} s later"
    )


def join_private_group(cluster: Cluster, owner: dict[str, Any], *people: dict[str, Any]) -> int:
    """Owner creates a private group through server 1 and invites; each accepts through
    server 2, where their sockets are: the sockets enter the room there."""
    group = owner["on"][0].create_group("Board", "private")
    for person in people:
        owner["on"][0].call(
            "POST", f"/groups/{group}/invitations", 201, json={"user_id": person["id"]}
        )
        person["on"][1].call("POST", f"/groups/{group}/invitation/accept", 200)
    return group


def assert_removal_moves_sockets(
    owner: dict[str, Any], group: int, lives: dict[str, Live], bob: dict[str, Any]
) -> None:
    """Owner removes Bob through server 1 and posts at once: Kim (server 2) and the owner
    (server 1) get the post, Bob (server 2) is told he left and gets nothing of it."""
    owner["on"][0].call("DELETE", f"/groups/{group}/members/{bob['id']}", 204)
    post = owner["on"][0].post_in("Right after the removal", group)  # no wait in between
    lives["kim"].wait_for("feed:new_item", lambda d: d["post_id"] == post)
    lives["owner"].wait_for("feed:new_item", lambda d: d["post_id"] == post)
    assert lives["bob"].wait_for(
        "group:membership_changed", lambda d: not d["member"] and d["group_id"] == group
    ) == {"group_id": group, "member": False}
    # Barrier: a later event to Bob's socket (server 2) through the same Redis channel.
    barrier = owner["on"][0].post_in(f"Barrier for @{bob['handle']}")
    lives["bob"].wait_for("notification:new", lambda d: d["post_id"] == barrier)
    lives["bob"].assert_none("feed:new_item", lambda d: d["post_id"] == post)


def test_removal_via_one_process_moves_sockets_on_another(cluster: Cluster) -> None:
    """Membership changed through server 1 moves the person's sockets on server 2 at once:
    the room change and the later emit travel the same Redis channel, in order."""
    owner, bob, kim = cluster.person("olga"), cluster.person("bob"), cluster.person("kim")
    lives = {
        "bob": cluster.connect(bob, 1),
        "kim": cluster.connect(kim, 1),
        "owner": cluster.connect(owner, 0),
    }
    group = join_private_group(cluster, owner, bob, kim)
    for name in ("bob", "kim"):  # joined while connected: the sockets entered the room
        assert lives[name].wait_for("group:membership_changed") == {
            "group_id": group,
            "member": True,
        }
    first = owner["on"][0].post_in("First", group)
    for live in lives.values():
        live.wait_for("feed:new_item", lambda d: d["post_id"] == first)
    assert_removal_moves_sockets(owner, group, lives, bob)


def test_removal_after_a_redis_restart_still_moves_sockets(cluster: Cluster) -> None:
    """Redis restarted (empty: no persistence) while people are connected: removal through
    server 1 still takes Bob's socket on server 2 out of the room at once, and notifications
    still reach him."""
    owner, bob, kim = cluster.person("olga"), cluster.person("bob"), cluster.person("kim")
    group = join_private_group(cluster, owner, bob, kim)
    lives = {
        "bob": cluster.connect(bob, 1),
        "kim": cluster.connect(kim, 1),
        "owner": cluster.connect(owner, 0),
    }
    cluster.redis.stop()
    cluster.redis.start()
    wait_until("both servers resubscribed", lambda: cluster.redis.subscribers() == 2, 30)
    first = owner["on"][0].post_in("First, after the restart", group)
    for live in lives.values():
        live.wait_for("feed:new_item", lambda d: d["post_id"] == first)
    assert_removal_moves_sockets(owner, group, lives, bob)


def test_revocation_via_one_process_closes_the_tokens_sockets_on_both(cluster: Cluster) -> None:
    """Bob revokes one of his two tokens through server 1: the sockets opened with it close on
    both servers (the instruction goes through his room, over Redis); his socket on server 2
    opened with the other token stays open and still gets his notifications."""
    ann, bob = cluster.person("ann"), cluster.person("bob")
    fresh()
    _, second = do_create_token(db.session.get(User, bob["id"]), "second", None)
    db.session.commit()
    tokens = bob["on"][0].call("GET", "/me/tokens")["items"]
    revoked = next(t["id"] for t in tokens if t["name"] == "process test")
    on_two, on_one = cluster.connect(bob, 1), cluster.connect(bob, 0)
    kept = Live("bob-second@server2")
    cluster.sockets.append(kept)
    kept.connect(cluster.servers[1].base, auth={"token": second})
    with_second = Http(cluster.servers[0].base, second)
    cluster.clients.append(with_second)

    with_second.call("DELETE", f"/me/tokens/{revoked}", 204)
    on_two.wait_for("disconnect")
    on_one.wait_for("disconnect")
    barrier = ann["on"][0].post_in(f"Still there, @{bob['handle']}?")
    kept.wait_for("notification:new", lambda d: d["post_id"] == barrier)
    assert kept.client.connected
