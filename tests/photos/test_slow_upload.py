"""A slow upload must not hold other writers up: the body is read before any transaction
begins (on SQLite a write request's transaction holds the write lock). A real server on
loopback, a client that sends half a photo and stalls, and another person who writes
meanwhile."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

from esn.accounts.actions import do_create_token
from esn.extensions import db
from tests.conftest import make_user
from tests.photos import images


@pytest.fixture
def server(app: Flask) -> Iterator[int]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()


def token_for(email: str) -> str:
    user = make_user(email)
    _, token = do_create_token(user, "test", None)
    db.session.commit()
    return token


def test_a_stalled_upload_does_not_block_other_writes(app: Flask, server: int) -> None:
    slow, quick = token_for("slow@example.org"), token_for("quick@example.org")
    photo = images.noisy_jpeg((600, 400))
    boundary = "esn-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = head + photo + f"\r\n--{boundary}--\r\n".encode()
    stalled = socket.create_connection(("127.0.0.1", server))
    try:
        stalled.sendall(
            (
                "POST /api/v1/photos HTTP/1.1\r\nHost: localhost\r\n"
                f"Authorization: Bearer {slow}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[: len(body) // 2]
        )
        time.sleep(0.5)  # the server has the headers and half the body, and waits
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
        connection.request(
            "POST",
            "/api/v1/posts",
            body=json.dumps({"body": "Written while someone uploads slowly"}),
            headers={"Authorization": f"Bearer {quick}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        assert response.status == 201, response.read()
        assert time.monotonic() - started < 2.0  # not the busy timeout
        # The slow upload then completes normally.
        stalled.sendall(body[len(body) // 2 :])
        answer = stalled.recv(65536).split(b"\r\n", 1)[0]
        assert b" 201 " in answer, answer
    finally:
        stalled.close()
