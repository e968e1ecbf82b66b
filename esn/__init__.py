"""The application factory: the table of contents of the whole service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, render_template, request
from sqlalchemy.exc import IntegrityError

from esn import config as config_module
from esn.api.problems import Problem, problem_response, register_error_handlers
from esn.api.spec import install_body_limits
from esn.database import (
    SAFE_WRITE_METHODS,
    configure_engine,
    include_migration_object,
    render_migration_item,
    reset_write_intent,
    set_write_intent,
)
from esn.extensions import csrf, db, limiter, migrate

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application. ``config`` overrides the defaults and the ``ESN_*`` environment."""
    settings = config_module.load(config)
    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"], instance_relative_config=False)
    configure(app, settings)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_request_hooks(app)
    register_commands(app)
    return app


def configure(app: Flask, settings: dict[str, Any]) -> None:
    from esn.logging import configure_logging

    app.config.update(settings)
    secret = settings["SECRET_KEY"] or config_module.instance_secret_key(Path(app.instance_path))
    app.config.update(
        SECRET_KEY=secret,
        SQLALCHEMY_DATABASE_URI=settings["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings["DATABASE_URL"]),
        MAX_CONTENT_LENGTH=settings["MAX_REQUEST_BYTES"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["COOKIE_SECURE"],
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings["SESSION_LIFETIME_HOURS"]),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings["COOKIE_SECURE"],
        # CSRF is enforced by our own policy (esn.accounts.auth) so that bearer requests skip it.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        RATELIMIT_STORAGE_URI=settings["REDIS_URL"] or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep documents in schema order
    configure_logging(app)
    _install_write_intent(app)
    install_body_limits(app)


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10}


def register_extensions(app: Flask) -> None:
    from esn import models  # noqa: F401  (every table on the metadata)
    from esn.accounts.auth import init_auth
    from esn.accounts.passwords import make_hasher
    from esn.outbox.dispatch import install as install_outbox
    from esn.photos.storage import install as install_photo_store
    from esn.realtime import delivery, sessions  # noqa: F401  (outbox handlers, usage listeners)
    from esn.realtime.sockets import install as install_sockets
    from esn.search import indexing  # noqa: F401  (outbox handler, usage listeners)

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine, busy_timeout_s=app.config["SQLITE_BUSY_TIMEOUT"])
    migrate.init_app(
        app,
        db,
        directory=MIGRATIONS_DIR,
        render_as_batch=True,
        compare_type=True,
        render_item=render_migration_item,
        include_object=include_migration_object,
    )
    csrf.init_app(app)
    limiter.init_app(app)
    init_auth(app)
    hasher = make_hasher(app.config["PASSWORD_HASH_COST"])
    app.extensions["esn.password_hasher"] = hasher
    app.extensions["esn.password_dummy_hash"] = hasher.hash("not a real password")
    install_outbox(app)
    install_photo_store(app)
    install_sockets(app)


def register_blueprints(app: Flask) -> None:
    from esn import health
    from esn.accounts.routes import bp as accounts_bp
    from esn.api.routes import bp as api_bp
    from esn.directory.routes import bp as directory_bp
    from esn.governance.dashboard import bp as dashboard_bp
    from esn.governance.routes import bp as governance_bp
    from esn.groups.routes import bp as groups_bp
    from esn.moderation.routes import bp as moderation_bp
    from esn.photos.routes import bp as photos_bp
    from esn.realtime.routes import bp as realtime_bp
    from esn.search.routes import bp as search_bp
    from esn.social.routes import bp as social_bp

    for bp in (
        health.bp,
        api_bp,
        accounts_bp,
        directory_bp,
        groups_bp,
        social_bp,
        moderation_bp,
        photos_bp,
        realtime_bp,
        search_bp,
        governance_bp,
        dashboard_bp,
    ):
        app.register_blueprint(bp)

    @app.get("/")
    def index() -> str:
        return render_template("index.html")


def _install_write_intent(app: Flask) -> None:
    # Registered before every other hook that may touch the database: it decides whether a
    # SQLite transaction of this request begins IMMEDIATE (see esn.database).
    @app.before_request
    def _write_intent() -> None:
        request.environ["esn.write_token"] = set_write_intent(
            request.method not in SAFE_WRITE_METHODS
        )

    @app.teardown_request
    def _end_write_intent(_exc: BaseException | None) -> None:
        token = request.environ.pop("esn.write_token", None)
        if token is not None:
            reset_write_intent(token)


def register_request_hooks(app: Flask) -> None:
    @app.errorhandler(IntegrityError)
    def _integrity(_exc: IntegrityError) -> Any:
        # A race lost to a concurrent writer (unique key, foreign key): the checks passed but
        # the database refused. Nothing was written.
        db.session.rollback()
        return problem_response(
            Problem(
                409,
                "Conflict",
                "The change conflicts with data written at the same time; reload and try again.",
                kind="conflict",
            )
        )

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def register_commands(app: Flask) -> None:
    from esn.cli import register

    register(app)
