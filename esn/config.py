"""Configuration: code defaults, then ``ESN_*`` environment variables, then factory overrides.

Every setting has a default that runs the embedded single-machine deployment (SQLite in the
instance directory, in-process side effects, memory rate limits). Environment variables use the
same names with an ``ESN_`` prefix; values are parsed by the type of the default.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    # Where the SQLite file, the generated secret key and (later) uploads live.
    "INSTANCE_PATH": "",
    # Empty means: a SQLite file ``esn.sqlite3`` in the instance directory.
    "DATABASE_URL": "",
    # Seconds SQLite waits for the write lock before giving up.
    "SQLITE_BUSY_TIMEOUT": 15.0,
    "SECRET_KEY": "",
    # Cookie flags. Secure is on by default; a plain-http local run turns it off explicitly.
    "COOKIE_SECURE": True,
    "SESSION_LIFETIME_HOURS": 12,
    # Largest request body accepted (bytes); bigger bodies get 413.
    "MAX_REQUEST_BYTES": 1_048_576,
    # Largest CSV accepted by the HR import endpoint (bytes).
    "MAX_IMPORT_BYTES": 20_971_520,
    # Sign-in limits, in the syntax of Flask-Limiter.
    "SIGNIN_LIMIT_PER_IP": "30 per minute",
    "SIGNIN_LIMIT_PER_ACCOUNT": "10 per 15 minutes",
    # Redis shared by several processes (rate limits now, Socket.IO later). Empty: in-process.
    "REDIS_URL": "",
    # Outbox dispatch after commit: "thread" (background thread), "sync" (right after the
    # commit, in the committing thread; used by tests) or "off" (only ``esn worker``).
    "OUTBOX_DISPATCH": "thread",
    "OUTBOX_MAX_ATTEMPTS": 8,
    # Argon2id cost. "low" is only for tests; it is refused outside TESTING.
    "PASSWORD_HASH_COST": "standard",
    # Telemetry: readings taken by ``esn worker`` ("monthly": the first run of each calendar
    # month, UTC; "off": only by hand), and an installation's own rulebook (a JSON file in the
    # format of telemetry/rulebooks/smg-thresholds-1.json; empty: that default).
    "READING_SCHEDULE": "monthly",
    "TELEMETRY_RULEBOOK": "",
    # Photos: where the files live ("local": PHOTO_DIR, by default <instance>/photos; "s3": an
    # S3-compatible bucket, credentials from the usual AWS variables), the largest upload,
    # the pixel limit checked before decoding, and each person's upload rate and storage quota.
    "PHOTO_STORE": "local",
    "PHOTO_DIR": "",
    "S3_BUCKET": "",
    "S3_ENDPOINT_URL": "",
    "S3_REGION": "",
    "S3_PREFIX": "photos",
    "MAX_PHOTO_BYTES": 26_214_400,
    "PHOTO_MAX_PIXELS": 50_000_000,
    "PHOTO_UPLOAD_LIMIT": "120 per hour",
    "PHOTO_QUOTA_BYTES": 2_147_483_648,
    # Realtime: Socket.IO's async mode ("threading" with simple-websocket; "gevent" needs the
    # gevent packages and gunicorn's gevent worker), and origins allowed to open sockets with
    # a session cookie besides the site's own (comma-separated; empty: the site's own only).
    "SOCKETIO_ASYNC_MODE": "threading",
    "SOCKETIO_ORIGINS": "",
    # E-mail for digests. Empty SMTP_HOST: digests are kept in the app and not e-mailed.
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_USER": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": False,
    "MAIL_FROM": "esn@localhost",
    # Search: "sql" (the embedded default: SQLite FTS5 or PostgreSQL full-text search in the
    # application's database) or "elasticsearch" (ELASTICSEARCH_URL names the cluster; the SQL
    # backend answers, marked degraded, while it is unavailable).
    "SEARCH_BACKEND": "sql",
    "ELASTICSEARCH_URL": "",
    "LOG_LEVEL": "INFO",
    # "json" (one object per line) or "text".
    "LOG_FORMAT": "json",
    "TESTING": False,
}


def _parse(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"ESN_{name} must be a boolean (true/false), got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"ESN_{name} must be an integer, got {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"ESN_{name} must be a number, got {raw!r}") from None
    return raw


def load(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Resolve the settings in order: defaults, ``ESN_*`` variables, then ``overrides``.

    Raises ValueError when an environment variable cannot be parsed as its setting's type.
    """
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for name, default in DEFAULTS.items():
        raw = environ.get(f"ESN_{name}")
        if raw is not None:
            settings[name] = _parse(name, raw, default)
    if overrides:
        settings.update(overrides)
    if not settings["INSTANCE_PATH"]:
        settings["INSTANCE_PATH"] = str(Path.cwd() / "instance")
    if not settings["DATABASE_URL"]:
        db_file = Path(settings["INSTANCE_PATH"]) / "esn.sqlite3"
        settings["DATABASE_URL"] = f"sqlite:///{db_file}"
    if settings["PASSWORD_HASH_COST"] == "low" and not settings["TESTING"]:  # noqa: S105
        raise ValueError("PASSWORD_HASH_COST=low is only allowed in tests")
    if settings["READING_SCHEDULE"] not in {"monthly", "off"}:
        raise ValueError("READING_SCHEDULE must be monthly or off")
    if settings["OUTBOX_DISPATCH"] not in {"thread", "sync", "off"}:
        raise ValueError("OUTBOX_DISPATCH must be one of thread, sync, off")
    if settings["SEARCH_BACKEND"] not in {"sql", "elasticsearch"}:
        raise ValueError("SEARCH_BACKEND must be sql or elasticsearch")
    if settings["SEARCH_BACKEND"] == "elasticsearch" and not settings["ELASTICSEARCH_URL"]:
        raise ValueError("SEARCH_BACKEND=elasticsearch needs ELASTICSEARCH_URL")
    if settings["PHOTO_STORE"] not in {"local", "s3"}:
        raise ValueError("PHOTO_STORE must be local or s3")
    if settings["PHOTO_STORE"] == "s3" and not settings["S3_BUCKET"]:
        raise ValueError("PHOTO_STORE=s3 needs S3_BUCKET")
    return settings


def instance_secret_key(instance_path: Path) -> str:
    """Return the instance's secret key, generating it on first start.

    The key is written with mode 0600 next to the database; it is never committed because the
    instance directory is outside version control.
    """
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.encode())
    finally:
        os.close(fd)
    return key
