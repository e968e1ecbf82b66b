"""Indexing through the outbox: the consistency check is clean after writes and finds what
was tampered with; with the backend failing no write is lost and, once it is back and the
outbox has run again, the check is clean; the commands work; Elasticsearch being down makes
queries degrade to SQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, Literal

import pytest
from flask import Flask
from sqlalchemy import select, update

from esn.clock import system_now
from esn.extensions import db
from esn.outbox.models import OutboxJob
from esn.search.backend import (
    Audience,
    DocType,
    Document,
    Hit,
    SearchBackend,
    SearchQuery,
    SearchResult,
    SearchUnavailable,
)
from esn.search.commands import differences
from esn.search.indexing import TOPIC
from esn.search.service import use_backend
from tests.conftest import fresh
from tests.search.conftest import Person, person


class Flaky:
    """A backend that fails while ``down`` (as Elasticsearch does when the cluster is gone)."""

    name = "flaky"

    def __init__(self, inner: SearchBackend) -> None:
        self.inner = inner
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise SearchUnavailable("cluster unreachable")

    def index(self, documents: Sequence[Document]) -> None:
        self._check()
        self.inner.index(documents)

    def remove(self, refs: Sequence[tuple[DocType, int, int]]) -> None:
        self._check()
        self.inner.remove(refs)

    def search(self, query: SearchQuery, audience: Audience) -> SearchResult:
        self._check()
        return self.inner.search(query, audience)

    def suggest(
        self, kind: Literal["person", "hashtag"], prefix: str, audience: Audience, limit: int
    ) -> list[Hit]:
        self._check()
        return self.inner.suggest(kind, prefix, audience, limit)

    def stored(self, doc_type: DocType) -> Iterator[tuple[int, int]]:
        self._check()
        return self.inner.stored(doc_type)

    def counts(self) -> dict[str, int]:
        self._check()
        return self.inner.counts()

    def rebuild(self, documents: Iterable[Document]) -> int:
        self._check()
        return self.inner.rebuild(documents)


@pytest.fixture
def ada(app: Flask, search_backend: SearchBackend) -> Person:
    return person(app, "ada@example.org", display_name="Ada Lovelace")


def _writes(ada: Person, app: Flask) -> dict[str, int]:
    bob = person(app, "bob@example.org", display_name="Bob Builder")
    group = ada.group("Kestrel club", "private")
    post = ada.post("kestrel #birds nesting", group_id=group)
    comment = bob.comment(ada.post("a public kestrel"), "seen one")
    draft = ada.post("draft kestrel", kind="article", title="Kestrels", publish=False)
    ada.api.patch(f"/api/v1/posts/{post}", json={"body": "kestrel #raptors nesting"})
    ada.api.delete(f"/api/v1/comments/{comment}")
    ada.api.patch(f"/api/v1/groups/{group}", json={"visibility": "public"})
    return {"group": group, "post": post, "draft": draft}


def test_check_is_clean_after_writes_and_finds_tampering(
    app: Flask, ada: Person, search_backend: SearchBackend
) -> None:
    made = _writes(ada, app)
    fresh()
    assert differences() == []
    runner = app.test_cli_runner()
    result = runner.invoke(args=["search", "check"])
    assert result.exit_code == 0, result.output
    assert "0 differences" in result.output
    # Tamper: one removed, one at an old version, one that should not be there.
    search_backend.remove([("post", made["post"], 2**62)])
    doc = Document(type="article", id=made["draft"], version=1, audience=frozenset({"x"}))
    search_backend.remove([("article", made["draft"], 2**62)])
    search_backend.index([doc])
    search_backend.index(
        [Document(type="group", id=9999, version=1, audience=frozenset({"internal"}))]
    )
    fresh()
    found = {(t, i) for t, i, _ in differences()}
    assert found == {("post", made["post"]), ("article", made["draft"]), ("group", 9999)}
    result = runner.invoke(args=["search", "check"])
    assert result.exit_code == 1 and "3 differences" in result.output
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0 and "indexed" in result.output, result.output
    fresh()
    assert differences() == []
    assert ("post", made["post"]) in ada.found("raptors")


def test_status_reports_counts_and_lag(app: Flask, ada: Person) -> None:
    ada.post("hello status")
    result = app.test_cli_runner().invoke(args=["search", "status", "--json"])
    assert result.exit_code == 0, result.output
    assert '"post": 1' in result.output and '"pending_jobs": 0' in result.output


def test_a_failing_backend_loses_nothing(
    app: Flask, ada: Person, search_backend: SearchBackend
) -> None:
    flaky = Flaky(search_backend)
    use_backend(app, flaky)
    flaky.down = True
    made = _writes(ada, app)  # every write succeeds
    fresh()
    failed = list(db.session.scalars(select(OutboxJob).where(OutboxJob.topic == TOPIC)))
    assert failed and all(j.attempts == 1 and j.dead_at is None for j in failed)
    status = app.test_cli_runner().invoke(args=["search", "status", "--json"])
    assert '"failing_jobs": ' + str(len(failed)) in status.output
    assert "unavailable: cluster unreachable" in status.output
    flaky.down = False
    db.session.execute(update(OutboxJob).values(available_at=system_now() - timedelta(seconds=1)))
    db.session.commit()
    app.extensions["esn.outbox"].run_jobs(limit=1000)
    fresh()
    assert db.session.scalar(select(OutboxJob.id).where(OutboxJob.topic == TOPIC)) is None
    assert differences() == []
    assert ("post", made["post"]) in ada.found("raptors")


def test_queries_degrade_to_sql_when_the_backend_is_down(
    app: Flask, ada: Person, search_backend: SearchBackend
) -> None:
    post = ada.post("osprey over the lake")
    flaky = Flaky(search_backend)
    use_backend(app, flaky)
    flaky.down = True
    page = ada.search("osprey")
    assert page["degraded"] is True
    assert [(i["type"], i["id"]) for i in page["items"]] == [("post", post)]
    people = ada.api.get("/api/v1/search/people", query_string={"prefix": "ada"}).get_json()
    assert people["degraded"] is True and people["items"][0]["id"] == ada.id


def _unused(*_: Any) -> None:  # keeps the imported names used by type checkers
    return None
