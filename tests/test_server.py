"""The product as an operator starts it: `esn init`, then gunicorn, then HTTP over loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_init_then_serve_then_sign_in(tmp_path):
    env = {
        **os.environ,
        "ESN_INSTANCE_PATH": str(tmp_path),
        "ESN_COOKIE_SECURE": "false",
        "ESN_LOG_FORMAT": "text",
    }
    env.pop("ESN_DATABASE_URL", None)
    init = subprocess.run(
        [str(BIN / "esn"), "init"], env=env, capture_output=True, text=True, timeout=120
    )
    assert init.returncode == 0, init.stderr
    assert "Administrator sign-in: admin@example.org / " in init.stdout
    password = init.stdout.split(" / ")[1].split()[0]
    # A second init changes nothing and prints the same sign-in.
    again = subprocess.run(
        [str(BIN / "esn"), "init"], env=env, capture_output=True, text=True, timeout=120
    )
    assert password in again.stdout

    port = _free_port()
    server = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "wsgi:app",
        ],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        assert requests.get(f"{base}/readyz", timeout=5).json()["migrations"] == "current"
        browser = requests.Session()
        csrf = browser.get(f"{base}/api/v1/auth/session", timeout=5).json()["csrf_token"]
        signed = browser.post(
            f"{base}/api/v1/auth/sign-in",
            json={"email": "admin@example.org", "password": password},
            headers={"X-CSRFToken": csrf},
            timeout=5,
        )
        assert signed.status_code == 200, signed.text
        me = browser.get(f"{base}/api/v1/me", timeout=5).json()
        assert "admin" in me["roles"]
        assert requests.get(f"{base}/api/v1/me", timeout=5).status_code == 401
        spec = requests.get(f"{base}/api/v1/openapi.json", timeout=5).json()
        assert spec["openapi"] == "3.1.0"
    finally:
        server.terminate()
        server.wait(timeout=10)
