"""Liveness and readiness probes."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, json
from sqlalchemy import text

from esn.extensions import db, migrate

bp = Blueprint("health", __name__)


def _json(body: dict[str, object], status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive (no dependencies are checked)."""
    return _json({"status": "ok"}, 200)


def migration_heads() -> tuple[set[str], set[str]]:
    """(revisions the code expects, revisions the database is at)."""
    config = migrate.get_config()
    expected = set(ScriptDirectory.from_config(config).get_heads())
    with db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return expected, current


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when the database answers and its schema is at the code's migration head."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        expected, current = migration_heads()
    except Exception as exc:  # any failure means: not ready
        current_app.logger.warning("readiness check failed: %s", type(exc).__name__)
        return _json({"status": "unavailable", "database": "unreachable"}, 503)
    if expected != current:
        return _json(
            {
                "status": "unavailable",
                "database": "ok",
                "migrations": "pending",
                "expected": sorted(expected),
                "current": sorted(current),
            },
            503,
        )
    return _json({"status": "ok", "database": "ok", "migrations": "current"}, 200)
