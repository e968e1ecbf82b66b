"""The configured backend: SQL by default; Elasticsearch from its module when configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from esn import create_app
from esn.config import load
from esn.search.service import backend_for
from esn.search.sql import SqlBackend


def test_sql_is_the_default(app: Flask) -> None:
    assert isinstance(backend_for(app), SqlBackend)
    assert backend_for(app) is backend_for(app)


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SEARCH_BACKEND"):
        load({"SEARCH_BACKEND": "solr", "INSTANCE_PATH": str(tmp_path)}, environ={})
    with pytest.raises(ValueError, match="ELASTICSEARCH_URL"):
        load({"SEARCH_BACKEND": "elasticsearch", "INSTANCE_PATH": str(tmp_path)}, environ={})


def test_elasticsearch_is_built_from_its_module(tmp_path: Path) -> None:
    pytest.importorskip("elasticsearch")
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "x",
            "PASSWORD_HASH_COST": "low",
            "LOG_FORMAT": "text",
            "SEARCH_BACKEND": "elasticsearch",
            "ELASTICSEARCH_URL": "http://127.0.0.1:9",
        }
    )
    assert backend_for(app).name == "elasticsearch"
