"""Helpers for tests with real Socket.IO clients over loopback: a client that records every
event it receives and waits for one with a bounded poll, and a small HTTP client for the API.

Negative assertions ("this person got nothing") use a barrier where possible: a later event
that legitimately goes to the same socket. A socket delivers in order, so once the barrier has
arrived, anything emitted to that socket before it has arrived too.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import socketio
import websocket

WAIT = 5.0  # seconds: the longest any expected event may take (they take milliseconds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _QuickClose(websocket.WebSocket):
    """Closing waits 0.1 s for the server's close frame, not 3 s: the client's own reader
    thread has usually taken that frame already, so the wait would always run out."""

    def close(self, status: int = websocket.STATUS_NORMAL, reason: bytes = b"", timeout: Any = 3):
        super().close(status, reason, timeout=0.1)


class Live:
    """A real ``socketio.Client`` (websocket transport) that records what it receives."""

    def __init__(self, name: str, **client_options: Any) -> None:
        self.name = name
        extra = {"class_": _QuickClose, **client_options.pop("websocket_extra_options", {})}
        self.client = socketio.Client(
            reconnection=False, websocket_extra_options=extra, **client_options
        )
        self.events: list[tuple[str, Any]] = []
        self._changed = threading.Condition()
        self.client.on("*", self._record)
        # Recorded as an event too, so that a test can wait for the server to close it.
        self.client.on("disconnect", lambda *args: self._record("disconnect", *args))

    def _record(self, event: str, *args: Any) -> None:
        with self._changed:
            self.events.append((event, args[0] if args else None))
            self._changed.notify_all()

    def connect(self, base: str, *, transports: list[str] | None = None, **options: Any) -> Live:
        self.client.connect(
            base, transports=transports or ["websocket"], wait_timeout=WAIT, **options
        )
        return self

    def disconnect(self) -> None:
        if self.client.connected:
            self.client.disconnect()

    def matching(self, event: str, where: Callable[[Any], bool] | None = None) -> list[Any]:
        with self._changed:
            return [d for e, d in self.events if e == event and (where is None or where(d))]

    def wait_for(
        self, event: str, where: Callable[[Any], bool] | None = None, timeout: float = WAIT
    ) -> Any:
        """The first matching event, waiting for it at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for e, d in self.events:
                    if e == event and (where is None or where(d)):
                        return d
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name}: no {event} within {timeout}s; got {self.events!r}"
                    )
                self._changed.wait(left)

    def assert_none(
        self, event: str, where: Callable[[Any], bool] | None = None, within: float = 0.0
    ) -> None:
        """No matching event arrives (watching for ``within`` seconds, if given)."""
        deadline = time.monotonic() + within
        with self._changed:
            while True:
                found = [d for e, d in self.events if e == event and (where is None or where(d))]
                assert not found, f"{self.name} received {event}: {found!r}"
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)


class Http:
    """The JSON API of a running server, as one person (a bearer token) or a browser session."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}/api/v1{path}", timeout=15, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def post_in(self, body: str, group_id: int | None = None) -> int:
        data: dict[str, Any] = {"body": body}
        if group_id is not None:
            data["group_id"] = group_id
        return int(self.call("POST", "/posts", 201, json=data)["id"])

    def comment(self, post_id: int, body: str, parent_id: int | None = None) -> int:
        data: dict[str, Any] = {"body": body}
        if parent_id is not None:
            data["parent_id"] = parent_id
        return int(self.call("POST", f"/posts/{post_id}/comments", 201, json=data)["id"])

    def create_group(self, name: str, visibility: str, join_policy: str = "invite") -> int:
        data = {"name": name, "visibility": visibility, "join_policy": join_policy}
        return int(self.call("POST", "/groups", 201, json=data)["id"])

    def notifications(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.call("GET", "/notifications")["items"]
        return items

    def sign_in(self, email: str, password: str) -> str:
        """Sign in as a browser does; returns the Cookie header to send with a socket."""
        csrf = self.call("GET", "/auth/session")["csrf_token"]
        self.call(
            "POST",
            "/auth/sign-in",
            json={"email": email, "password": password},
            headers={"X-CSRFToken": csrf},
        )
        return "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
