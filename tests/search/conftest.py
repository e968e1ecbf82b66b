"""The search backend under test, in one place: the contract suite runs against every backend
this fixture names (the Elasticsearch helper adds its own parameter here)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from esn.accounts.models import User
from esn.search.backend import SearchBackend
from esn.search.service import sql_backend, use_backend
from tests.conftest import ApiClient, make_user
from tests.search.elastic_server import elastic_test_server  # noqa: F401 (a fixture)


@pytest.fixture(params=["sql", "elasticsearch"])
def search_backend(request: pytest.FixtureRequest, app: Flask) -> Iterator[SearchBackend]:
    if request.param == "sql":
        backend: SearchBackend = sql_backend(app)
        use_backend(app, backend)
        yield backend
        return
    if request.getfixturevalue("backend") != "sqlite":
        # What Elasticsearch is given does not depend on the database (the documents are the
        # same); the PostgreSQL run covers the SQL backend, and the suite stays fast.
        pytest.skip("the Elasticsearch backend runs with the SQLite database only")
    # A real cluster (ESN_TEST_ELASTICSEARCH_URL) or the in-memory test server; a fresh index
    # prefix per test, refreshed on every write so that what was written is found at once.
    server = request.getfixturevalue("elastic_test_server")
    with server.backend(refresh=True) as elastic:
        use_backend(app, elastic)
        yield elastic


@dataclass
class Person:
    user: User
    api: ApiClient

    @property
    def id(self) -> int:
        return self.user.id

    def search(self, q: str = "", **params: Any) -> dict[str, Any]:
        response = self.api.get("/api/v1/search", query_string={"q": q, **params})
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())

    def found(self, q: str, **params: Any) -> set[tuple[str, int]]:
        return {(i["type"], i["id"]) for i in self.search(q, **params)["items"]}

    def suggest(self, kind: str, prefix: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/search/{kind}", query_string={"prefix": prefix})
        assert response.status_code == 200, response.get_json()
        return list(response.get_json()["items"])

    def post(self, body: str, **fields: Any) -> int:
        response = self.api.post("/api/v1/posts", json={"body": body, **fields})
        assert response.status_code == 201, response.get_json()
        return int(response.get_json()["id"])

    def comment(self, post_id: int, body: str) -> int:
        response = self.api.post(f"/api/v1/posts/{post_id}/comments", json={"body": body})
        assert response.status_code == 201, response.get_json()
        return int(response.get_json()["id"])

    def group(self, name: str, visibility: str = "public", **fields: Any) -> int:
        response = self.api.post(
            "/api/v1/groups", json={"name": name, "visibility": visibility, **fields}
        )
        assert response.status_code == 201, response.get_json()
        return int(response.get_json()["id"])

    def join(self, group_id: int) -> None:
        response = self.api.post(f"/api/v1/groups/{group_id}/join")
        assert response.status_code in (200, 204), response.get_json()


def person(app: Flask, email: str, **fields: Any) -> Person:
    user = make_user(email, **fields)
    client = ApiClient(app)
    assert client.sign_in(email).status_code == 200
    return Person(user, client)
