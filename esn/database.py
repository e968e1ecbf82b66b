"""Engine set-up and column types shared by every feature.

SQLite runs in WAL mode with foreign keys on, a busy timeout and ``synchronous=FULL`` (an
acknowledged commit survives a power cut, not only a process crash). The sqlite3 module's own
transaction handling is switched off so that we issue ``BEGIN`` ourselves: a request that will
write starts with ``BEGIN IMMEDIATE`` and so waits for the write lock up front, instead of
failing with ``SQLITE_BUSY`` when it upgrades a read snapshot that another writer has moved past.
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Enum, Integer, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator

SAFE_WRITE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "esn_write_intent", default=False
)

# A 64-bit key everywhere; on SQLite an INTEGER PRIMARY KEY (the rowid alias) is already 64-bit
# and only that spelling autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is stored in UTC and always read back timezone-aware.

    Naive datetimes are refused on the way in: every time in the system is aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC datetime is required")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite has no time zones; store naive UTC so text comparisons order correctly.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)


def as_utc(value: datetime | None) -> datetime | None:
    """A timestamp as the database driver returned it, read as ``UTCDateTime`` reads it:
    aware UTC (naive values are UTC already)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def set_write_intent(value: bool) -> contextvars.Token[bool]:
    return _write_intent.set(value)


def reset_write_intent(token: contextvars.Token[bool]) -> None:
    _write_intent.reset(token)


@contextmanager
def write_intent() -> Iterator[None]:
    """Within the block, new SQLite transactions start with ``BEGIN IMMEDIATE``."""
    token = _write_intent.set(True)
    try:
        yield
    finally:
        _write_intent.reset(token)


def _sqlite_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def configure_engine(engine: Engine, *, busy_timeout_s: float) -> None:
    """Install the per-connection settings for ``engine``'s dialect (idempotent per engine)."""
    if engine.dialect.name != "sqlite" or getattr(engine, "_esn_configured", False):
        return
    engine._esn_configured = True  # type: ignore[attr-defined]
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()
        # SQLite's own lower() folds ASCII only, so "émile" would not find "Émile"; Python's
        # folds all of Unicode, as PostgreSQL's does. Queries compare lower(column) with text
        # lower-cased in Python, so both sides must fold the same way.
        dbapi_conn.create_function("lower", 1, _sqlite_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


def insert_ignoring_conflicts(table: Any, dialect_name: str) -> Any:
    """An INSERT that skips rows violating a unique constraint (SQLite and PostgreSQL)."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


def render_migration_item(type_: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Alembic hook: write our column types as plain SQLAlchemy types, so that migrations do
    not import application code that may change after they were written."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# Full-text structures that only hand-written migrations create (0009, 0010): the FTS5 virtual
# tables with their shadow tables on SQLite, expression and trigram indexes on PostgreSQL.
# Autogenerate cannot describe them and must neither drop nor recreate them.
UNMODELLED_PREFIXES = ("search_fts", "search_people_fts")
UNMODELLED_INDEXES = frozenset(
    {"ix_search_documents_tsv", "ix_search_documents_trgm", "ix_search_documents_people_tsv"}
)


def include_migration_object(
    obj: Any, name: str | None, type_: str, reflected: bool, _compare_to: Any
) -> bool:
    """Alembic hook: leave out the search backend's unmodelled full-text structures."""
    if type_ == "table" and name is not None and name.startswith(UNMODELLED_PREFIXES):
        return False
    return not (type_ == "index" and name in UNMODELLED_INDEXES)


def enum_column(cls: type[enum.Enum], name: str, length: int = 16) -> Enum:
    """An enum stored as its value in a VARCHAR with a CHECK constraint (not a native enum
    type): adding a value is a migration of the constraint on every dialect alike."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        validate_strings=True,
    )
