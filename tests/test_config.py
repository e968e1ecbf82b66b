from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta, timezone

import pytest

from esn import clock, config, create_app


def test_order_defaults_env_overrides(tmp_path):
    env = {"ESN_MAX_REQUEST_BYTES": "2048", "ESN_COOKIE_SECURE": "false", "ESN_LOG_LEVEL": "DEBUG"}
    settings = config.load({"LOG_LEVEL": "WARNING", "INSTANCE_PATH": str(tmp_path)}, environ=env)
    assert settings["MAX_REQUEST_BYTES"] == 2048  # environment over default
    assert settings["COOKIE_SECURE"] is False
    assert settings["LOG_LEVEL"] == "WARNING"  # override over environment
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'esn.sqlite3'}"


def test_bad_environment_values_are_refused():
    with pytest.raises(ValueError, match="ESN_MAX_REQUEST_BYTES"):
        config.load(environ={"ESN_MAX_REQUEST_BYTES": "lots"})
    with pytest.raises(ValueError, match="ESN_COOKIE_SECURE"):
        config.load(environ={"ESN_COOKIE_SECURE": "maybe"})
    with pytest.raises(ValueError, match="only allowed in tests"):
        config.load({"PASSWORD_HASH_COST": "low"}, environ={})


def test_postgresql_url_switches_the_backend(tmp_path):
    app = create_app(
        {
            "DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/x",
            "INSTANCE_PATH": str(tmp_path),
            "LOG_FORMAT": "text",
            "TESTING": True,
        }
    )
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")


def test_secret_key_is_generated_once_and_private(tmp_path):
    first = create_app({"INSTANCE_PATH": str(tmp_path), "LOG_FORMAT": "text", "TESTING": True})
    second = create_app({"INSTANCE_PATH": str(tmp_path), "LOG_FORMAT": "text", "TESTING": True})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 40
    mode = (tmp_path / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_clock_is_settable_and_always_aware():
    when = datetime(2025, 3, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    with clock.frozen_at(when) as frozen:
        assert clock.now() == when and clock.now().tzinfo == UTC
        frozen.set(datetime(2025, 3, 2, tzinfo=UTC))
        assert clock.now() == datetime(2025, 3, 2, tzinfo=UTC)
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5
    with pytest.raises(ValueError):
        clock.SettableClock(datetime(2025, 1, 1))
