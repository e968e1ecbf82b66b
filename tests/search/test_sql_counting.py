"""The SQL backend's cap on counting: past ``COUNT_CAP`` visible matches the total and facet
counts are lower bounds (``exact_counts`` false) and, on SQLite, only the newest
``RANK_WINDOW`` matches are ranked; below it everything is exact. The cap is lowered here so
that a small world crosses it."""

from __future__ import annotations

import pytest
from flask import Flask

from esn.extensions import db
from esn.search import sql
from tests.search.conftest import person


@pytest.fixture
def small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "COUNT_CAP", 6)
    monkeypatch.setattr(sql, "RANK_WINDOW", 3)


@pytest.mark.usefixtures("small_cap")
def test_counts_stop_at_the_cap_and_the_newest_are_ranked(app: Flask) -> None:
    ada = person(app, "ada@example.org", display_name="Ada Lovelace")
    bob = person(app, "bob@example.org", display_name="Bob Builder")
    secret = bob.group("Vault", visibility="secret")
    hidden = [bob.post(f"walrus hidden {n}", group_id=secret) for n in range(4)]
    posts = [ada.post(f"walrus number {n}") for n in range(9)]
    page = ada.search("walrus")
    assert page["exact_counts"] is False
    assert page["total"] == 6
    assert sum(page["facets"]["type"].values()) == 6
    found = {i["id"] for i in page["items"]}
    assert found <= set(posts) and not found & set(hidden)
    if db.engine.dialect.name == "sqlite":
        # Ranked among the three newest that Ada may read (PostgreSQL ranks them all).
        assert found == set(posts[-3:])
    # Bob sees his group's posts as well: still capped.
    assert bob.search("walrus")["total"] == 6
    # Below the cap, exact: the words of one post.
    one = ada.search("walrus number 4")
    assert (one["total"], one["exact_counts"]) == (1, True)
    assert [i["id"] for i in one["items"]] == [posts[4]]


@pytest.mark.usefixtures("small_cap")
def test_a_narrow_type_is_counted_on_its_own(app: Flask) -> None:
    ada = person(app, "ada@example.org", display_name="Ada Walrus")
    for n in range(8):
        ada.post(f"walrus number {n}")
    page = ada.search("walrus", type="person")
    # Every type together passes the cap (the type facet is a lower bound); people alone not.
    assert [(i["type"], i["id"]) for i in page["items"]] == [("person", ada.id)]
    assert page["total"] == 1
    assert page["exact_counts"] is False
    assert page["facets"]["type"]["person"] == 1


@pytest.mark.usefixtures("small_cap")
def test_a_word_in_many_documents_is_matched_whole(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite, a last word that FTS5's vocabulary has in more than WHOLE_WORD_DOCUMENTS
    documents is not also taken as a prefix; a rarer start of a word still is."""
    monkeypatch.setattr(sql, "WHOLE_WORD_DOCUMENTS", 4)
    ada = person(app, "ada@example.org", display_name="Ada Lovelace")
    posts = [ada.post(f"walrus number {n}") for n in range(7)]
    longer = ada.post("walruses galore")
    whole = {i["id"] for i in ada.search("walrus")["items"]}
    started = {i["id"] for i in ada.search("walru")["items"]}
    assert longer in started and started <= {*posts, longer}
    if db.engine.dialect.name == "sqlite":
        assert whole == set(posts[-3:])
    else:  # PostgreSQL keeps the prefix (its GIN index answers it from one list)
        assert longer in whole
