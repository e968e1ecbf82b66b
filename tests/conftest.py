"""Test fixtures: every database test runs on SQLite and, when configured, on PostgreSQL.

Schemas are built by running the migrations, never ``create_all``. PostgreSQL runs when
``ESN_TEST_DATABASE_URL`` names a server (``.ci/run`` sets it); each test process gets its own
schema, dropped at the end, and tables are emptied between tests.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from esn import create_app
from esn.accounts.actions import do_create_user
from esn.accounts.models import User
from esn.clock import reset_clock
from esn.extensions import Base, db

PG_ENV = "ESN_TEST_DATABASE_URL"
PASSWORD = "correct horse battery staple"


def _base_config(tmp_path: Path, url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key-not-for-production",
        "OUTBOX_DISPATCH": "sync",
        "PASSWORD_HASH_COST": "low",
        "LOG_FORMAT": "text",
    }


def _migrate(app: Flask) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (much faster than migrating each time)."""
    root = tmp_path_factory.mktemp("sqlite-template")
    path = root / "template.sqlite3"
    app = create_app(_base_config(root, f"sqlite:///{path}"))
    _migrate(app)
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def postgresql_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture(scope="session")
def postgresql_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated PostgreSQL schema of this test process; skips when none is configured."""
    base = postgresql_base_url()
    if base is None:
        pytest.skip(
            f"PostgreSQL tests skipped: set {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    schema = f"esn_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        pytest.skip(f"PostgreSQL tests skipped: cannot reach {PG_ENV}: {type(exc).__name__}: {exc}")
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    _migrate(create_app(_base_config(tmp_path_factory.mktemp("pg"), url)))
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "esn.sqlite3"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    return str(request.getfixturevalue("postgresql_url"))


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Override in a test module to change settings."""
    return {}


@pytest.fixture
def app(database_url: str, tmp_path: Path, app_config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app({**_base_config(tmp_path, database_url), **app_config})
    ctx = app.app_context()
    ctx.push()
    try:
        yield app
    finally:
        db.session.remove()
        app.extensions["esn.outbox"].stop()
        if db.engine.dialect.name == "postgresql":
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()
        ctx.pop()
        reset_clock()


class ApiClient:
    """A test client that speaks the API: JSON in and out, the CSRF token when signed in by
    cookie, or a bearer token."""

    def __init__(self, app: Flask, token: str | None = None) -> None:
        self.client: FlaskClient = app.test_client()
        self.token = token
        self.csrf_token: str | None = None

    def refresh_csrf(self) -> str:
        response = self.get("/api/v1/auth/session")
        self.csrf_token = response.get_json()["csrf_token"]
        return self.csrf_token

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        self.refresh_csrf()
        response = self.request(
            "POST", "/api/v1/auth/sign-in", json={"email": email, "password": password}
        )
        if response.status_code == 200:
            self.csrf_token = response.get_json()["csrf_token"]
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        headers = dict(headers or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        elif csrf and self.csrf_token and method not in ("GET", "HEAD"):
            headers.setdefault("X-CSRFToken", self.csrf_token)
        # Run the request outside the test's app context, as a server would: the request gets
        # its own app context and database session, torn down when it ends.
        return contextvars.Context().run(
            self.client.open,
            path,
            method=method,
            headers=headers,
            base_url="https://localhost",
            **kwargs,
        )

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


def make_user(
    email: str, *, roles: list[str] | None = None, password: str | None = PASSWORD, **fields: Any
) -> User:
    # Start from a fresh transaction: on SQLite a write on a stale read snapshot is refused.
    db.session.rollback()
    user = do_create_user(
        None,
        {
            "email": email,
            "display_name": fields.pop("display_name", email.split("@")[0].title()),
            "roles": roles or ["employee"],
            "password": password,
            **fields,
        },
    )
    db.session.commit()
    return user


def fresh() -> None:
    """End the test's own read transaction so that it sees what requests have committed."""
    db.session.rollback()


@pytest.fixture
def admin(app: Flask) -> User:
    return make_user("admin@example.org", roles=["admin", "employee"], display_name="Ada Admin")


@pytest.fixture
def employee(app: Flask) -> User:
    return make_user("erin@example.org", display_name="Erin Employee")


@pytest.fixture
def api(app: Flask) -> ApiClient:
    return ApiClient(app)


@pytest.fixture
def admin_api(app: Flask, admin: User) -> ApiClient:
    client = ApiClient(app)
    assert client.sign_in(admin.email).status_code == 200
    return client


@pytest.fixture
def employee_api(app: Flask, employee: User) -> ApiClient:
    client = ApiClient(app)
    assert client.sign_in(employee.email).status_code == 200
    return client


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say once, plainly, why tests were skipped (PostgreSQL or Redis not configured)."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"{count} tests skipped — {reason}")
