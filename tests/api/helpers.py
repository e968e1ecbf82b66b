"""Checks shared by the API convention tests."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Flask
from sqlalchemy import Table, TextClause, inspect, select, text

from esn import create_app
from esn.extensions import Base, db
from tests.conftest import fresh

PROBLEM_JSON = "application/problem+json"

Rows = dict[str, list[tuple[Any, ...]]]


def document_app(instance_path: str) -> Flask:
    """An app that serves the OpenAPI document and nothing else: the document depends on the
    code only, so it needs no database (the in-memory one is never opened)."""
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "sqlite://",
            "INSTANCE_PATH": instance_path,
            "SECRET_KEY": "openapi-document-only",
            "PASSWORD_HASH_COST": "low",
            "OUTBOX_DISPATCH": "off",
        }
    )


def snapshot() -> Rows:
    """Every row of every table, read in a new transaction (so it sees what requests committed).

    Comparing two snapshots proves "nothing was written" more strictly than row counts: an
    update in place shows too."""
    fresh()
    with db.engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for table in _tables()
        }


_TABLES: dict[str, list[Table]] = {}


def _tables() -> list[Table]:
    """The tables of the metadata that the (migrated) database has; a model whose migration
    is still to be written is the migration tests' business, not a reason to fail here."""
    key = str(db.engine.url)
    if key not in _TABLES:
        present = set(inspect(db.engine).get_table_names())
        _TABLES[key] = [t for t in Base.metadata.sorted_tables if t.name in present]
    return _TABLES[key]


def check_problem(status: int, content_type: str | None, body: Any) -> None:
    """An RFC 9457 problem document of ``status``."""
    assert content_type is not None and content_type.split(";")[0].strip() == PROBLEM_JSON, (
        content_type
    )
    assert isinstance(body, dict), body
    assert isinstance(body.get("type"), str) and body["type"], body
    assert isinstance(body.get("title"), str) and body["title"], body
    assert body.get("status") == status, body


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """``response`` (a Flask test response) is a problem document of ``status``; returns it."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json(force=True, silent=True)
    check_problem(status, response.headers.get("Content-Type"), body)
    return body  # type: ignore[no-any-return]


class WriteWatch:
    """Tells cheaply whether anything was committed between two looks.

    SQLite: ``PRAGMA data_version`` on a connection of our own changes exactly when another
    connection commits a change (or checkpoints the WAL, which only a commit sets off here).
    PostgreSQL: one statement hashing the contents of every table on the server. Elsewhere a
    look is a full ``snapshot()``."""

    def __init__(self) -> None:
        self._sqlite: sqlite3.Connection | None = None
        self._digest: TextClause | None = None
        if db.engine.dialect.name == "sqlite":
            self._sqlite = sqlite3.connect(str(db.engine.url.database))
        elif db.engine.dialect.name == "postgresql":
            # Table names from our own metadata, not input.
            self._digest = text(
                " UNION ALL ".join(
                    f"SELECT '{t.name}', count(*), "  # noqa: S608
                    f"md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "
                    f'FROM "{t.name}" AS r'
                    for t in _tables()
                )
            )

    def look(self) -> object:
        if self._sqlite is not None:
            return self._sqlite.execute("PRAGMA data_version").fetchone()[0]
        if self._digest is not None:
            fresh()
            with db.engine.connect() as conn:
                return sorted(tuple(row) for row in conn.execute(self._digest))
        return snapshot()

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
