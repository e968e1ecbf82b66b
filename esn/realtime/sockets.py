"""The Socket.IO server: who may connect, which rooms they are in, and what they may send.

A connection is authenticated when it opens: by the session cookie (the Origin must be the
site's own; Engine.IO refuses any other before this runs) or by a personal API token (``auth``
``{"token": ...}`` or an ``Authorization: Bearer`` header). Each person's sockets are in
``user:<id>``; a member's also in ``group:<id>`` for each of their groups, and nobody else's.
Clients cannot join or leave rooms: the server has no such event, and everything a client
sends is ignored. With ``REDIS_URL`` set, Redis carries every emit and room change to every
process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app, request
from flask_socketio import SocketIO, join_room
from sqlalchemy import select

from esn.accounts.auth import signed_in_user, token_holder
from esn.accounts.models import User
from esn.extensions import db
from esn.groups.models import GroupMember

log = logging.getLogger("esn.realtime")
socketio = SocketIO()


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
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=2)

    def _key(self, user_id: int) -> str:
        return f"esn:sockets:{user_id}"

    def add(self, user_id: int, sid: str) -> None:
        with self._lock:
            self._local.setdefault(user_id, set()).add(sid)
        if self._redis is not None:
            try:
                self._redis.sadd(self._key(user_id), sid)
                self._redis.expire(self._key(user_id), 86400)
            except Exception:  # Redis away: this process still knows its own sockets
                log.warning("could not record a socket in Redis", exc_info=True)

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


def _authenticate(auth: Any) -> User | None:
    token = auth.get("token") if isinstance(auth, dict) else None
    if isinstance(token, str):
        holder = token_holder(token)
        return holder[1] if holder is not None and holder[1].is_active else None
    return signed_in_user()  # the session cookie, or an Authorization header


@socketio.on("connect")
def _on_connect(auth: Any = None) -> bool:
    user = _authenticate(auth)
    if user is None:
        return False  # refused: the client sees a connect_error
    sid = request.sid  # type: ignore[attr-defined]
    join_room(user_room(user.id))
    for group_id in db.session.scalars(
        select(GroupMember.group_id).where(GroupMember.user_id == user.id)
    ):
        join_room(group_room(group_id))
    presence().add(user.id, sid)
    request.environ["esn.socket_user"] = user.id
    db.session.rollback()  # end the read: a socket must not hold a transaction open
    return True


@socketio.on("disconnect")
def _on_disconnect(*_: Any) -> None:
    user_id = request.environ.get("esn.socket_user")
    if user_id is not None:
        presence().remove(user_id, request.sid)  # type: ignore[attr-defined]


@socketio.on("*")
def _ignore(event: str, *_: Any) -> None:
    """Clients send nothing the server acts on (in particular, no room joins)."""
    log.info("ignored a client event", extra={"event": str(event)[:64]})


def install(app: Flask) -> None:
    origins = [o.strip() for o in app.config["SOCKETIO_ORIGINS"].split(",") if o.strip()]
    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        message_queue=app.config["REDIS_URL"] or None,
        # None: only the site's own origin (Engine.IO compares Origin with the Host).
        cors_allowed_origins=origins or None,
        manage_session=False,
        logger=False,
        engineio_logger=False,
    )
    app.extensions["esn.presence"] = Presence(app.config["REDIS_URL"])


def move_sockets(user_id: int, group_id: int, *, member: bool) -> None:
    """Put the person's open sockets into a group's room, or take them out, in every process."""
    server = socketio.server
    if server is None:
        return
    for sid in presence().sids(user_id):
        try:
            if member:
                server.enter_room(sid, group_room(group_id), namespace="/")
            else:
                server.leave_room(sid, group_room(group_id), namespace="/")
        except (KeyError, ValueError):  # a socket of this process that has just closed
            continue
