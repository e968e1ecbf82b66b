"""The search contract, through the HTTP API and the service, against ``search_backend``:
what is found, that private and secret content is never found by others (results, totals,
facets, autocomplete), that changes are reflected, and that bad input never fails."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from esn.accounts.actions import do_deactivate_user, do_update_profile
from esn.directory.models import Department
from esn.extensions import db
from esn.photos import pipeline
from esn.photos.actions import do_add_photo, do_create_album, do_edit_photo, store_files
from esn.photos.models import Photo
from esn.search.backend import SearchBackend
from esn.search.routes import snippet_html
from tests.conftest import fresh
from tests.photos import images
from tests.search.conftest import Person, person

pytestmark = pytest.mark.usefixtures("search_backend")


@pytest.fixture
def ada(app: Flask) -> Person:
    return person(app, "ada@example.org", display_name="Ada Lovelace", title="Engineer")


@pytest.fixture
def bob(app: Flask) -> Person:
    return person(app, "bob@example.org", display_name="Bob Builder")


def _department(name: str) -> int:
    fresh()
    dept = Department(code=name[:8].upper(), name=name)
    db.session.add(dept)
    db.session.commit()
    return dept.id


# --- what is found ------------------------------------------------------------------------------


def test_people_by_name_prefix_skill_department_with_facets(app: Flask, ada: Person) -> None:
    research = _department("Research")
    sales = _department("Sales")
    grace = person(
        app, "grace@example.org", display_name="Grace Hopper", skills=["COBOL", "Compilers"],
        department_id=research, location="Arlington",
    )  # fmt: skip
    person(
        app, "dennis@example.org", display_name="Dennis Hopperton", skills=["Sales"],
        department_id=sales, location="Berlin",
    )  # fmt: skip
    assert ("person", grace.id) in ada.found("Grace Hopper")
    assert ("person", grace.id) in ada.found("gra")  # a prefix
    assert ("person", grace.id) in ada.found("cobol")  # a skill
    page = ada.search("hopper")
    assert page["items"][0]["id"] == grace.id  # the exact name first
    assert page["total"] == 2
    assert page["facets"]["department"] == {"Research": 1, "Sales": 1}
    assert page["facets"]["type"] == {"person": 2}
    only = ada.search("hopper", department="Research")
    assert [i["id"] for i in only["items"]] == [grace.id] and only["total"] == 1
    by_skill = ada.search("", skill="COBOL")  # filters alone list people
    assert [i["id"] for i in by_skill["items"]] == [grace.id]
    names = [s["label"] for s in ada.suggest("people", "hop")]
    assert names[:2] == ["Grace Hopper", "Dennis Hopperton"] or set(names) >= {
        "Grace Hopper",
        "Dennis Hopperton",
    }


def test_content_of_every_kind_is_found(app: Flask, ada: Person, bob: Person) -> None:
    post = ada.post("Quarterly #roadmap for the zeppelin project")
    article = ada.post("Long text about airships", kind="article", title="Zeppelin history")
    comment = bob.comment(post, "Great zeppelin plans")
    group = bob.group("Zeppelin fans", description="Lighter than air")
    assert ada.found("zeppelin") >= {
        ("post", post),
        ("article", article),
        ("comment", comment),
        ("group", group),
    }
    page = bob.search("zeppelin")
    assert page["facets"]["type"] == {"post": 1, "article": 1, "comment": 1, "group": 1}
    item = next(i for i in page["items"] if i["type"] == "comment")
    assert "<mark>" in item["snippet_html"] and item["url"] == f"/api/v1/posts/{post}"
    assert [s["label"] for s in bob.suggest("hashtags", "road")] == ["roadmap"]
    assert any(t == "hashtag" for t, _ in ada.found("roadmap", type="hashtag"))


def test_photo_captions_are_found_and_caption_edits_reflected(app: Flask, ada: Person) -> None:
    fresh()
    tiny = pipeline.process(images.plain_jpeg((8, 6)))
    album = do_create_album(ada.user, {"title": "Trip"}, None)
    photo = do_add_photo(
        ada.user, tiny, store_files(tiny), {"caption": "Sunset at the fjord"}, album
    )
    db.session.commit()
    assert ("photo", photo.id) in ada.found("fjord")
    fresh()
    do_edit_photo(ada.user, db.session.get(Photo, photo.id), {"caption": "Sunrise over glaciers"})
    db.session.commit()
    assert ("photo", photo.id) not in ada.found("fjord")
    assert ("photo", photo.id) in ada.found("glaciers")


# --- never a leak -------------------------------------------------------------------------------


@pytest.mark.parametrize("visibility", ["private", "secret"])
def test_closed_group_content_only_for_members(
    app: Flask, ada: Person, bob: Person, visibility: str
) -> None:
    group = ada.group("Project Nightingale", visibility, join_policy="open")
    post = ada.post("The nightingale #launchplan is secret", group_id=group)
    comment = ada.comment(post, "nightingale budget approved")
    outsider = bob.search("nightingale")
    expected_groups = {("group", group)} if visibility == "private" else set()
    assert {(i["type"], i["id"]) for i in outsider["items"]} == expected_groups
    assert outsider["total"] == len(expected_groups)
    assert outsider["facets"]["type"] == ({"group": 1} if expected_groups else {})
    assert bob.suggest("hashtags", "launch") == []
    assert ada.found("nightingale") >= {("post", post), ("comment", comment), ("group", group)}
    assert [s["label"] for s in ada.suggest("hashtags", "launch")] == ["launchplan"]
    if visibility == "private":  # a member again: found at once (tokens carry membership)
        bob.join(group)
        assert bob.found("nightingale") >= {("post", post), ("comment", comment)}
        assert bob.api.post(f"/api/v1/groups/{group}/leave").status_code in (200, 204)
        assert ("post", post) not in bob.found("nightingale")


def test_drafts_only_for_their_author(ada: Person, bob: Person) -> None:
    draft = ada.post("Draft about quasars", kind="article", title="Quasars", publish=False)
    assert ("article", draft) in ada.found("quasars")
    assert bob.found("quasars") == set()
    assert ada.api.post(f"/api/v1/posts/{draft}/publish").status_code == 200
    assert ("article", draft) in bob.found("quasars")


def test_externals_see_only_their_own_personal_posts(app: Flask, ada: Person) -> None:
    ext = person(app, "ext@partner.example", display_name="Ext Partner", is_external=True)
    mine = ext.post("External zebra notes")
    ada.post("Internal zebra notes")
    assert ext.found("zebra") == {("post", mine)}
    assert ext.search("ada")["total"] == 0  # no directory for externals


def test_deactivated_people_are_removed(app: Flask, ada: Person, bob: Person) -> None:
    assert ("person", bob.id) in ada.found("builder")
    fresh()
    from esn.accounts.models import User

    do_deactivate_user(None, db.session.get(User, bob.id))
    db.session.commit()
    assert ("person", bob.id) not in ada.found("builder")


def test_third_layer_drops_and_logs_what_the_filter_let_through(
    app: Flask,
    ada: Person,
    bob: Person,
    search_backend: SearchBackend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    group = ada.group("Okapi circle", "secret")
    post = ada.post("okapi sighting", group_id=group)
    fresh()
    # Tamper with the index: the post claims to be for everyone.
    from esn.search.backend import INTERNAL
    from esn.search.documents import build

    doc = build("post", post)
    assert doc is not None
    search_backend.index([type(doc)(**{**doc.__dict__, "audience": frozenset({INTERNAL})})])
    with caplog.at_level(logging.ERROR, logger="esn.search"):
        page = bob.search("okapi")
    assert page["items"] == []
    assert any("search filter let through post" in r.getMessage() for r in caplog.records)


# --- changes are reflected ----------------------------------------------------------------------


def test_edits_deletes_and_visibility_changes(ada: Person, bob: Person) -> None:
    post = ada.post("Walrus migration")
    assert (
        ada.api.patch(f"/api/v1/posts/{post}", json={"body": "Penguin migration"}).status_code
        == 200
    )
    assert ("post", post) not in bob.found("walrus")
    assert ("post", post) in bob.found("penguin")
    comment = bob.comment(post, "penguin colony")
    assert bob.api.delete(f"/api/v1/comments/{comment}").status_code == 204
    assert ("comment", comment) not in ada.found("colony")
    assert ada.api.delete(f"/api/v1/posts/{post}").status_code == 204
    assert bob.found("penguin") == set()

    group = ada.group("Ibex watchers", "public")
    in_group = ada.post("ibex herd spotted", group_id=group)
    assert ("post", in_group) in bob.found("ibex")
    assert (
        ada.api.patch(f"/api/v1/groups/{group}", json={"visibility": "secret"}).status_code == 200
    )
    assert bob.found("ibex") == set()
    assert bob.search("ibex")["total"] == 0
    assert (
        ada.api.patch(f"/api/v1/groups/{group}", json={"visibility": "public"}).status_code == 200
    )
    assert ("post", in_group) in bob.found("ibex")


def test_profile_updates_are_reflected(ada: Person, bob: Person) -> None:
    fresh()
    from esn.accounts.models import User

    do_update_profile(
        bob.user, db.session.get(User, bob.id), {"skills": ["Origami"], "location": "Kyoto"}
    )
    db.session.commit()
    page = ada.search("origami")
    assert [i["id"] for i in page["items"]] == [bob.id]
    assert page["facets"]["location"] == {"Kyoto": 1}
    # People alone (their own full-text index), before and after a change of name.
    assert [i["id"] for i in ada.search("kyoto", type="person")["items"]] == [bob.id]
    do_update_profile(bob.user, db.session.get(User, bob.id), {"display_name": "Robert Kite"})
    db.session.commit()
    assert [s["id"] for s in ada.suggest("people", "rob")] == [bob.id]
    assert ada.suggest("people", "builder") == []
    assert [i["id"] for i in ada.search("kite", type="person")["items"]] == [bob.id]


def test_people_searches_find_people_only(ada: Person, bob: Person) -> None:
    """Titles and texts that share a name's first letters are not people."""
    ada.post("Lovelace and Anna", kind="article", title="Anneal the Lovelace batch")
    anna = person(ada.api.client.application, "anna@example.org", display_name="Anna Lind")
    assert [s["id"] for s in ada.suggest("people", "an")] == [anna.id]
    assert [s["id"] for s in bob.suggest("people", "lovel")] == [ada.id]
    page = bob.search("lovelace", type="person")
    assert [(i["type"], i["id"]) for i in page["items"]] == [("person", ada.id)]
    assert page["total"] == 1 and page["exact_counts"] is True
    assert page["facets"]["type"]["person"] == 1


# --- bad input ----------------------------------------------------------------------------------

BAD = [
    '"', '""', '"unbalanced', "*", "ada*", "-ada", "- -", "NEAR(ada bob)", "ada NEAR bob",
    "(", "((ada)", "ada OR bob", "AND", "NOT ada", "title:ada", "{title}: ada", "^ada",
    "ada + bob", "'; DROP TABLE users; --", "\\", "%", "_", "😀", "ada 😀", "עברית ada",
    "مرحبا", "\u202eada", "a\u0301da", "\uff46\uff55\uff4c\uff4c", "ß", "\ufeff", " ", "",
    "x" * 200, "ada " * 50,
]  # fmt: skip


@pytest.mark.parametrize("q", BAD)
def test_bad_input_never_fails(ada: Person, bob: Person, q: str) -> None:
    ada.post("ada was here")
    response = ada.api.get("/api/v1/search", query_string={"q": q})
    assert response.status_code == 200, response.get_json()
    for kind in ("people", "hashtags"):
        r = ada.api.get(f"/api/v1/search/{kind}", query_string={"prefix": q[:100]})
        assert r.status_code in (200, 422), r.get_json()


@pytest.mark.parametrize(
    "params",
    [
        {"q": "x" * 10_000},
        {"q": "a\x00b"},
        {"q": "ok", "limit": "0"},
        {"q": "ok", "limit": "1000"},
        {"q": "ok", "offset": "-1"},
        {"q": "ok", "type": "secret"},
        {"q": "ok", "unknown": "1"},
        {"q": "ok", "department": "d" * 300},
    ],
)
def test_bad_parameters_are_4xx(ada: Person, params: dict[str, str]) -> None:
    response = ada.api.get("/api/v1/search", query_string=params)
    assert response.status_code == 422, response.get_json()
    assert response.content_type == "application/problem+json"


def test_search_needs_sign_in(app: Flask) -> None:
    from tests.conftest import ApiClient

    assert ApiClient(app).get("/api/v1/search", query_string={"q": "x"}).status_code == 401


def test_snippets_are_escaped() -> None:
    from esn.search.backend import HIGHLIGHT_END, HIGHLIGHT_START

    html = snippet_html(f"<script>{HIGHLIGHT_START}x{HIGHLIGHT_END}</script>")
    assert html == "&lt;script&gt;<mark>x</mark>&lt;/script&gt;"
    assert snippet_html(f"{HIGHLIGHT_START}broken") == "broken"


def test_results_page_and_count(ada: Person) -> None:
    ids = [ada.post(f"lemur number {n}") for n in range(5)]
    first = ada.search("lemur", limit=2)
    second = ada.search("lemur", limit=2, offset=2)
    assert first["total"] == second["total"] == 5
    seen = [i["id"] for i in first["items"] + second["items"]]
    assert len(set(seen)) == 4 and set(seen) <= set(ids)
