"""The Socket.IO server: who may connect, which rooms they are in, and what they may send.

A connection is authenticated when it opens: by the session cookie (the Origin must be the
site's own; Engine.IO refuses any other before this runs) or by a personal API token (``auth``
``{"token": ...}`` or an ``Authorization: Bearer`` header). Each person's sockets are in
``user:<id>``; a member's also in ``group:<id>`` for each of their groups, and nobody else's.
Clients cannot join or leave rooms: the server has no such event, and everything a client
sends is ignored. With ``REDIS_URL`` set, Redis carries every emit and room change to every
process.

Room changes and closing a person's sockets are instructions sent to the person's own room
(``user:<id>``), like an emit: every process applies them to the sockets it holds, in order with
the emits around them, and without needing to know socket ids held elsewhere. The registry of
who is online (``Presence``, in Redis) is only asked whether pushing is worth it; each process
writes its own sockets into it again whenever it (re)connects to Redis (a restarted Redis comes
back empty) and every hour (entries expire after a day).

Each socket remembers the credential that opened it (``esn.accounts.auth.Credential``: the
sign-in's identifier for a cookie, the token's row id for a token; never a secret), so that a
close can name the sockets of one sign-in or one token and leave the person's others open
(sign-out, revocation, a password change: ``esn/realtime/sessions.py``). A socket is also closed
by its own process when that credential runs out (``Expiry``): the token's expiry, or the
session lifetime after its cookie was signed. Nothing else re-checks an open socket (clients
send nothing the server acts on); the client must connect again, which authenticates afresh.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import socketio as python_socketio
from flask import Flask, current_app, request
from flask_socketio import SocketIO, join_room, leave_room
from sqlalchemy import select

from esn.accounts.auth import (
    Credential,
    current_credential,
    session_cookie_expires_at,
    signed_in_user,
    token_credential,
    token_holder,
)
from esn.accounts.models import ApiToken, User
from esn.clock import now
from esn.extensions import db
from esn.groups.models import GroupMember

log = logging.getLogger("esn.realtime")
socketio = SocketIO()
CHANNEL = "flask-socketio"  # the Redis channel of the message queue (Flask-SocketIO's default)
PRESENCE_TTL_S = 86400
PRESENCE_REFRESH_S = 3600.0
# An instruction to the processes holding a person's sockets; never sent to a client.
INSTRUCTION = "esn:sockets"
CREDENTIAL = "esn.socket_credential"  # where a socket's Credential is kept (its WSGI environ)


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def group_room(group_id: int) -> str:
    return f"group:{group_id}"


class Presence:
    """Which socket ids each person has open, across processes (Redis) or in this one."""

    def __init__(self, redis_url: str) -> None:
        self._lock = threading.Lock()
        self._local: dict[int, set[str]] = {}
        self._redis: Any = None
        self._refresher_started = False
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=2)

    def _key(self, user_id: int) -> str:
        return f"esn:sockets:{user_id}"

    def add(self, user_id: int, sid: str) -> None:
        with self._lock:
            self._local.setdefault(user_id, set()).add(sid)
            start = self._redis is not None and not self._refresher_started
            self._refresher_started = self._refresher_started or start
        if start:
            threading.Thread(target=self._refresh_forever, name="esn-presence", daemon=True).start()
        if self._redis is not None:
            try:
                self._redis.sadd(self._key(user_id), sid)
                self._redis.expire(self._key(user_id), PRESENCE_TTL_S)
            except Exception:  # Redis away: written again when this process reconnects
                log.warning("could not record a socket in Redis", exc_info=True)

    def restore(self) -> None:
        """Write this process's sockets into Redis again (with a fresh expiry): Redis may have
        restarted empty, or been away when they opened."""
        if self._redis is None:
            return
        with self._lock:
            mine = {u: set(sids) for u, sids in self._local.items() if sids}
        if not mine:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for user_id, sids in mine.items():
                pipe.sadd(self._key(user_id), *sids)
                pipe.expire(self._key(user_id), PRESENCE_TTL_S)
            pipe.execute()
        except Exception:
            log.warning("could not write this process's sockets into Redis", exc_info=True)

    def _refresh_forever(self) -> None:
        while True:
            time.sleep(PRESENCE_REFRESH_S)
            self.restore()

    def remove(self, user_id: int, sid: str) -> None:
        with self._lock:
            self._local.get(user_id, set()).discard(sid)
        if self._redis is not None:
            try:
                self._redis.srem(self._key(user_id), sid)
            except Exception:
                log.warning("could not forget a socket in Redis", exc_info=True)

    def sids(self, user_id: int) -> set[str]:
        with self._lock:
            found = set(self._local.get(user_id, ()))
        if self._redis is not None:
            found |= {s.decode() for s in self._redis.smembers(self._key(user_id))}
        return found

    def online(self, user_ids: Iterable[int]) -> set[int]:
        ids = list(user_ids)
        with self._lock:
            found = {u for u in ids if self._local.get(u)}
        if self._redis is not None and ids:
            pipe = self._redis.pipeline()
            for u in ids:
                pipe.scard(self._key(u))
            found |= {u for u, n in zip(ids, pipe.execute(), strict=True) if n}
        return found


def presence() -> Presence:
    found: Presence = current_app.extensions["esn.presence"]
    return found


class Expiry:
    """Closes this process's sockets when the credential that opened them runs out: one thread
    (started when there is something to wait for, gone when there is not) waits for the
    earliest deadline."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self._changed = threading.Condition()
        self._due: dict[str, float] = {}  # sid -> deadline (time.monotonic)
        self._heap: list[tuple[float, str]] = []
        self._running = False

    def add(self, sid: str, expires_at: datetime) -> None:
        due = time.monotonic() + max(0.0, (expires_at - now()).total_seconds())
        with self._changed:
            self._due[sid] = due
            heapq.heappush(self._heap, (due, sid))
            self._changed.notify()
            start, self._running = not self._running, True
        if start:
            threading.Thread(target=self._run, name="esn-socket-expiry", daemon=True).start()

    def forget(self, sid: str) -> None:
        with self._changed:
            if self._due.pop(sid, None) is not None and not self._due:
                self._heap.clear()
                self._changed.notify()

    def _next_due(self) -> str | None:
        """Wait for the earliest deadline; its sid, or None when nothing is left to wait for."""
        with self._changed:
            while True:
                while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # closed (or added again) meanwhile
                if not self._heap:
                    self._running = False
                    return None
                left = self._heap[0][0] - time.monotonic()
                if left <= 0:
                    sid = heapq.heappop(self._heap)[1]
                    del self._due[sid]
                    return sid
                self._changed.wait(left)

    def _run(self) -> None:
        while (sid := self._next_due()) is not None:
            try:
                if self._server.manager.is_connected(sid, "/"):
                    self._server.disconnect(sid, namespace="/", ignore_queue=True)
            except Exception:  # keep closing the others
                log.warning("could not close an expired socket", exc_info=True)


def expiry() -> Expiry:
    found: Expiry = current_app.extensions["esn.socket_expiry"]
    return found


def _authenticate(auth: Any) -> tuple[User, Credential] | None:
    """The person opening a socket and the credential they open it with, or None."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if isinstance(token, str):
        holder = token_holder(token)
        if holder is None or not holder[1].is_active:
            return None
        return holder[1], token_credential(holder[0])
    user = signed_in_user()  # the session cookie, or an Authorization header
    credential = current_credential()
    if user is None or credential is None:
        return None
    if credential.kind == "session":
        credential = replace(credential, expires_at=session_cookie_expires_at())
    return user, credential


def _still_accepted(credential: Credential, user_id: int) -> bool:
    """Whether the credential is still good (read afresh): a token not revoked or expired, a
    sign-in whose epoch has not moved on. (A sign-out leaves nothing to read: its close
    instruction is what ends the socket.)"""
    if credential.kind == "token":
        row = db.session.execute(
            select(ApiToken.revoked_at, ApiToken.expires_at).where(ApiToken.id == credential.id)
        ).first()
        return (
            row is not None
            and row.revoked_at is None
            and (row.expires_at is None or row.expires_at > now())
        )
    epoch = db.session.scalar(select(User.auth_epoch).where(User.id == user_id))
    return epoch == credential.epoch


def _memberships(user_id: int) -> set[int] | None:
    """The person's groups, read afresh; None if they are no longer active."""
    db.session.rollback()  # a new read: see every commit made so far
    if not db.session.scalar(select(User.is_active).where(User.id == user_id)):
        return None
    return set(
        db.session.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user_id))
    )


@socketio.on("connect")
def _on_connect(auth: Any = None) -> bool:
    found = _authenticate(auth)
    if found is None:
        return False  # refused: the client sees a connect_error
    user, credential = found
    user_id = user.id
    sid = request.sid  # type: ignore[attr-defined]
    # The credential before the room: a close instruction that reaches the socket must find it.
    request.environ[CREDENTIAL] = credential
    # The person's room first: every instruction from now on (room moves, closing) reaches
    # this socket. Memberships are read after that, and read again once joined: a removal
    # whose move arrived before its room was joined is undone here; so is a deactivation, a
    # revocation or a password change whose close came too early.
    join_room(user_room(user_id))
    joined = _memberships(user_id) or set()
    for group_id in joined:
        join_room(group_room(group_id))
    current = _memberships(user_id)
    accepted = current is not None and _still_accepted(credential, user_id)
    db.session.rollback()  # end the read: a socket must not hold a transaction open
    if current is None or not accepted:
        return False  # deactivated, revoked or signed out elsewhere meanwhile
    for group_id in joined - current:
        leave_room(group_room(group_id))
    for group_id in current - joined:
        join_room(group_room(group_id))
    presence().add(user_id, sid)
    request.environ["esn.socket_user"] = user_id
    if credential.expires_at is not None:
        expiry().add(sid, credential.expires_at)
    return True


@socketio.on("disconnect")
def _on_disconnect(*_: Any) -> None:
    user_id = request.environ.get("esn.socket_user")
    if user_id is not None:
        presence().remove(user_id, request.sid)  # type: ignore[attr-defined]
        expiry().forget(request.sid)  # type: ignore[attr-defined]


@socketio.on("*")
def _ignore(event: str, *_: Any) -> None:
    """Clients send nothing the server acts on (in particular, no room joins)."""
    log.info("ignored a client event", extra={"event": str(event)[:64]})


def was_opened_with(credential: Credential | None, wanted: dict[str, Any] | None) -> bool:
    """Whether a socket opened with ``credential`` is one that ``wanted`` names.

    ``wanted`` (it travels between processes, so it is plain data): None for every socket;
    ``{"kind": "token", "id": 7}`` for one token's; ``{"kind": "session", "id": "…"}`` for one
    sign-in's (``"id": None``: sessions from before sign-ins had an identifier);
    ``{"kind": "session", "epoch_below": 4, "keep_id": "…"}`` for sign-ins older than an auth
    epoch, but for one (``keep_id`` optional).
    """
    if wanted is None:
        return True
    if credential is None or credential.kind != wanted.get("kind"):
        return False
    if "id" in wanted and credential.id != wanted["id"]:
        return False
    if "epoch_below" in wanted and not (
        credential.epoch is not None and credential.epoch < wanted["epoch_below"]
    ):
        return False
    return not ("keep_id" in wanted and credential.id == wanted["keep_id"])


def _carry_out(server: Any, instruction: dict[str, Any]) -> None:
    """Apply an instruction to the sockets of the person that this process holds."""
    room = user_room(instruction["user_id"])
    sids = [sid for sid, _ in server.manager.get_participants("/", room)]
    for sid in sids:
        try:
            if instruction["action"] == "enter":
                server.enter_room(sid, group_room(instruction["group_id"]), namespace="/")
            elif instruction["action"] == "leave":
                server.leave_room(sid, group_room(instruction["group_id"]), namespace="/")
            elif instruction["action"] == "close":
                environ = server.get_environ(sid, namespace="/") or {}
                if was_opened_with(environ.get(CREDENTIAL), instruction.get("opened_with")):
                    server.disconnect(sid, namespace="/")
        except (KeyError, ValueError):  # a socket that has just closed
            continue


class _LocalManager(python_socketio.Manager):
    """One process: instructions are carried out here."""

    def emit(self, event: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        if event == INSTRUCTION:
            _carry_out(self.server, data)
            return None
        return super().emit(event, data, *args, **kwargs)


class _RedisManager(python_socketio.RedisManager):
    """Several processes: an instruction travels the queue like an emit, and every process
    (this one included) carries it out on its own sockets instead of sending it."""

    def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("event") == INSTRUCTION:
            _carry_out(self.server, message["data"][0])
            return
        super()._handle_emit(message)


def _presence_restorer(found: Presence) -> Any:
    def on_connect(connection: Any) -> None:
        connection.on_connect()  # the usual handshake, then (re)subscription
        found.restore()

    return on_connect


def install(app: Flask) -> None:
    origins = [o.strip() for o in app.config["SOCKETIO_ORIGINS"].split(",") if o.strip()]
    found = Presence(app.config["REDIS_URL"])
    manager: python_socketio.Manager
    if app.config["REDIS_URL"]:
        # Each (re)connection of the queue's own Redis connections writes this process's
        # sockets into the registry again, before the listener resubscribes.
        manager = _RedisManager(
            app.config["REDIS_URL"],
            channel=CHANNEL,
            redis_options={"redis_connect_func": _presence_restorer(found)},
        )
    else:
        manager = _LocalManager()
    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        # Always given: Flask-SocketIO would otherwise keep the queue of an earlier app.
        client_manager=manager,
        # None: only the site's own origin (Engine.IO compares Origin with the Host).
        cors_allowed_origins=origins or None,
        manage_session=False,
        logger=False,
        engineio_logger=False,
    )
    app.extensions["esn.presence"] = found
    app.extensions["esn.socket_expiry"] = Expiry(socketio.server)


def _instruct(
    user_id: int,
    action: str,
    group_id: int | None = None,
    opened_with: dict[str, Any] | None = None,
) -> None:
    if socketio.server is None:
        return
    socketio.emit(
        INSTRUCTION,
        {"user_id": user_id, "action": action, "group_id": group_id, "opened_with": opened_with},
        to=user_room(user_id),
    )


def move_sockets(user_id: int, group_id: int, *, member: bool) -> None:
    """Put the person's open sockets into a group's room, or take them out, in every process."""
    _instruct(user_id, "enter" if member else "leave", group_id)


def close_sockets(user_id: int, opened_with: dict[str, Any] | None = None) -> None:
    """Close the person's open sockets in every process: all of them, or those opened with the
    credential(s) that ``opened_with`` names (see ``was_opened_with()``)."""
    _instruct(user_id, "close", opened_with=opened_with)
