"""The migrations build the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from esn import create_app
from esn.database import include_migration_object, render_migration_item
from esn.extensions import Base, db
from tests.conftest import postgresql_base_url


def test_models_and_migrations_agree(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "render_item": render_migration_item,
                "include_object": include_migration_object,
            },
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def _fresh_url(backend: str, tmp_path: Path) -> tuple[str, callable]:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.sqlite3'}", lambda: None
    base = postgresql_base_url()
    if base is None:
        pytest.skip("PostgreSQL tests skipped: set ESN_TEST_DATABASE_URL")
    schema = f"esn_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", drop


def test_upgrade_downgrade_upgrade(backend, tmp_path):
    url, cleanup = _fresh_url(backend, tmp_path)
    try:
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": url,
                "INSTANCE_PATH": str(tmp_path),
                "SECRET_KEY": "x",
                "LOG_FORMAT": "text",
                "PASSWORD_HASH_COST": "low",
            }
        )
        with app.app_context():
            upgrade()
            assert "usage_events" in inspect(db.engine).get_table_names()
            downgrade(revision="base")
            assert "usage_events" not in inspect(db.engine).get_table_names()
            upgrade()
            assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())
            db.session.remove()
            db.engine.dispose()
    finally:
        cleanup()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
