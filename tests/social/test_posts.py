"""Posts and articles, edits, deletes, comments, reactions, answers, announcements, follows and
feeds, as employees use them through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from esn.accounts.models import User
from esn.api.pagination import encode_cursor
from esn.clock import frozen_at
from esn.directory.actions import do_create_department
from esn.extensions import db
from esn.social.models import Comment, Post, PostRevision, Reaction
from esn.usage.models import UsageEvent
from tests.conftest import ApiClient, fresh, make_user

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _person(app: Flask, email: str, **fields: Any) -> tuple[User, ApiClient]:
    user = make_user(email, **fields)
    client = ApiClient(app)
    assert client.sign_in(email).status_code == 200
    return user, client


def _post(client: ApiClient, body: str = "Hello", **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/posts", json={"body": body, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _group(client: ApiClient, name: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/groups", json={"name": name, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _ids(client: ApiClient, path: str, **params: Any) -> list[int]:
    response = client.get(path, query_string={"limit": 100, **params})
    assert response.status_code == 200, (path, response.get_json())
    return [p["id"] for p in response.get_json()["items"]]


def _counts() -> tuple[int, int, int, int]:
    fresh()
    return tuple(  # type: ignore[return-value]
        db.session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Post, Comment, Reaction, UsageEvent)
    )


@pytest.fixture
def anna(app: Flask) -> tuple[User, ApiClient]:
    return _person(app, "anna@example.org", display_name="Anna")


@pytest.fixture
def bob(app: Flask) -> tuple[User, ApiClient]:
    return _person(app, "bob@example.org", display_name="Bob")


# --- short posts and articles -------------------------------------------------------------------


def test_short_posts_and_articles(app, anna):
    _, a = anna
    post = _post(a, "Short and *sweet*")
    assert (post["kind"], post["status"], post["title"]) == ("post", "published", None)
    assert post["published_at"] is not None and "<em>sweet</em>" in post["body_html"]
    article = _post(a, "# Body\n\nLong text", kind="article", title="On widgets")
    assert (article["kind"], article["status"], article["title"]) == (
        "article",
        "published",
        "On widgets",
    )
    before = _counts()
    refused = [
        {"kind": "article", "body": "no title"},
        {"kind": "article", "body": "blank title", "title": ""},
        {"kind": "article", "body": "blank title", "title": "  \t "},
        {"kind": "post", "body": "a title", "title": "Not for posts"},
        {"kind": "post", "body": "draft", "publish": False},
        {"kind": "post", "body": "x" * 10_001},
        {"kind": "post", "body": "   \n  "},
        {"kind": "poem", "body": "x"},
    ]
    for body in refused:
        response = a.post("/api/v1/posts", json=body)
        assert response.status_code == 422, (body, response.get_json())
        assert response.headers["Content-Type"].startswith("application/problem+json")
    assert _counts() == before
    # Articles may be long.
    assert _post(a, "x" * 50_000, kind="article", title="Long")["status"] == "published"


def test_drafts_are_private_to_their_author_until_published(app, anna, bob):
    anna_user, a = anna
    _, b = bob
    assert b.put(f"/api/v1/people/{anna_user.id}/follow").status_code == 204
    assert a.put("/api/v1/hashtags/launch/follow").status_code == 404  # no such tag yet
    draft = _post(a, "Draft about #launch, @bob", kind="article", title="Soon", publish=False)
    assert (draft["status"], draft["published_at"]) == ("draft", None)
    pid = draft["id"]

    assert a.get(f"/api/v1/posts/{pid}").status_code == 200
    assert [p["id"] for p in a.get("/api/v1/me/drafts").get_json()["items"]] == [pid]
    assert b.get(f"/api/v1/posts/{pid}").status_code == 404
    assert b.get("/api/v1/me/drafts").get_json()["items"] == []
    for client in (a, b):
        assert pid not in _ids(client, "/api/v1/feed")
        assert pid not in _ids(client, f"/api/v1/people/{anna_user.id}/feed")
        assert client.get("/api/v1/hashtags/trending").get_json()["items"] == []
    # A tag used only in a draft does not exist for others yet.
    assert _ids(a, "/api/v1/hashtags/launch/feed") == []
    assert b.get("/api/v1/hashtags/launch/feed").status_code == 404
    assert b.get("/api/v1/hashtags/launch").status_code == 404
    # Nobody interacts with a draft, and only its author publishes it.
    assert b.post(f"/api/v1/posts/{pid}/comments", json={"body": "hi"}).status_code == 404
    assert b.put(f"/api/v1/posts/{pid}/reaction", json={"kind": "like"}).status_code == 404
    assert a.post(f"/api/v1/posts/{pid}/comments", json={"body": "hi"}).status_code == 403
    assert b.post(f"/api/v1/posts/{pid}/publish").status_code == 404

    published = a.post(f"/api/v1/posts/{pid}/publish")
    assert published.status_code == 200
    assert published.get_json()["status"] == "published"
    assert published.get_json()["published_at"] is not None
    assert a.post(f"/api/v1/posts/{pid}/publish").status_code == 409
    assert a.get("/api/v1/me/drafts").get_json()["items"] == []
    assert b.get(f"/api/v1/posts/{pid}").status_code == 200
    for client in (a, b):
        assert pid in _ids(client, "/api/v1/feed")
        assert pid in _ids(client, f"/api/v1/people/{anna_user.id}/feed")
        assert pid in _ids(client, "/api/v1/hashtags/launch/feed")
        trending = client.get("/api/v1/hashtags/trending").get_json()["items"]
        assert [(t["name"], t["posts"]) for t in trending] == [("launch", 1)]


def test_a_short_post_cannot_be_published_twice(app, anna):
    _, a = anna
    post = _post(a)
    assert a.post(f"/api/v1/posts/{post['id']}/publish").status_code == 409


# --- edits --------------------------------------------------------------------------------------


def test_edits_keep_the_history(app, anna, bob):
    _, a = anna
    _, b = bob
    article = _post(a, "First #alpha", kind="article", title="T1")
    pid = article["id"]
    assert a.get(f"/api/v1/posts/{pid}/revisions").get_json()["items"] == []

    edited = a.patch(f"/api/v1/posts/{pid}", json={"body": "Second #beta"})
    assert edited.status_code == 200
    assert edited.get_json()["edited_at"] is not None
    assert edited.get_json()["hashtags"] == ["beta"]
    assert "/hashtags/beta" in edited.get_json()["body_html"]
    edited = a.patch(f"/api/v1/posts/{pid}", json={"title": "T2", "body": "Third"})
    assert (edited.get_json()["title"], edited.get_json()["body"]) == ("T2", "Third")

    # Newest first; each revision is the text as it was before the edit.
    revisions = b.get(f"/api/v1/posts/{pid}/revisions").get_json()["items"]
    assert [(r["title"], r["body"]) for r in revisions] == [
        ("T1", "Second #beta"),
        ("T1", "First #alpha"),
    ]
    # The hashtags follow the current text: tags no post carries any more are gone.
    assert b.get("/api/v1/hashtags/alpha/feed").status_code == 404
    assert b.get("/api/v1/hashtags/beta/feed").status_code == 404

    # An edit that changes nothing leaves no revision.
    assert a.patch(f"/api/v1/posts/{pid}", json={"body": "Third"}).status_code == 200
    fresh()
    assert db.session.scalar(select(func.count()).where(PostRevision.post_id == pid)) == 2

    # Only the author edits; nulls, blank bodies and titles on short posts are refused.
    assert b.patch(f"/api/v1/posts/{pid}", json={"body": "hijack"}).status_code == 403
    assert a.patch(f"/api/v1/posts/{pid}", json={"title": None}).status_code == 422
    assert a.patch(f"/api/v1/posts/{pid}", json={"title": "   "}).status_code == 422
    assert a.patch(f"/api/v1/posts/{pid}", json={"body": "  "}).status_code == 422
    short = _post(a, "short")
    assert a.patch(f"/api/v1/posts/{short['id']}", json={"title": "No"}).status_code == 422
    fresh()
    assert db.session.scalar(select(func.count()).where(PostRevision.post_id == pid)) == 2
    assert db.session.get(Post, pid).body == "Third"


# --- deletion -----------------------------------------------------------------------------------


def test_a_deleted_post_disappears_from_every_read_path(app, anna, bob, admin_api):
    anna_user, a = anna
    _, b = bob
    group = _group(a, "Widgets")
    assert b.post(f"/api/v1/groups/{group['id']}/join").status_code == 200
    assert b.put(f"/api/v1/people/{anna_user.id}/follow").status_code == 204
    post = _post(a, "Gone soon #doomed", group_id=group["id"], is_question=True)
    pid = post["id"]
    comment = b.post(f"/api/v1/posts/{pid}/comments", json={"body": "answer"}).get_json()
    assert b.put(f"/api/v1/posts/{pid}/reaction", json={"kind": "like"}).status_code == 204
    assert a.put(f"/api/v1/comments/{comment['id']}/reaction", json={}).status_code == 204
    assert admin_api.post(f"/api/v1/posts/{pid}/pin", json={}).status_code == 201
    assert b.put("/api/v1/hashtags/doomed/follow").status_code == 204

    surfaces = [
        "/api/v1/feed",
        f"/api/v1/people/{anna_user.id}/feed",
        f"/api/v1/groups/{group['id']}/feed",
        "/api/v1/hashtags/doomed/feed",
    ]
    for path in surfaces:
        assert pid in _ids(b, path), path
    assert b.put(f"/api/v1/posts/{pid}/reaction", json={"kind": "love"}).status_code == 204

    assert b.delete(f"/api/v1/posts/{pid}").status_code == 403
    assert a.delete(f"/api/v1/posts/{pid}").status_code == 204

    for client in (a, b, admin_api):
        assert client.get(f"/api/v1/posts/{pid}").status_code == 404
        for path in surfaces[1:]:
            listed = client.get(path)
            # The tag's feed is empty for its follower, and the tag gone for everyone else.
            assert listed.status_code == (404 if "doomed" in path and client is not b else 200)
            assert pid not in [p["id"] for p in listed.get_json().get("items", [])], path
        feed = client.get("/api/v1/feed").get_json()
        assert pid not in [p["id"] for p in feed["items"] + feed["pinned"]]
        assert client.get("/api/v1/hashtags/trending").get_json()["items"] == []
        assert client.get(f"/api/v1/posts/{pid}/comments").status_code == 404
        assert client.get(f"/api/v1/posts/{pid}/reactions").status_code == 404
        assert client.get(f"/api/v1/posts/{pid}/revisions").status_code == 404
        assert client.get(f"/api/v1/comments/{comment['id']}/reactions").status_code == 404
    assert b.post(f"/api/v1/posts/{pid}/comments", json={"body": "x"}).status_code == 404
    assert b.put(f"/api/v1/posts/{pid}/reaction", json={"kind": "like"}).status_code == 404
    assert b.patch(f"/api/v1/comments/{comment['id']}", json={"body": "x"}).status_code == 404
    assert a.patch(f"/api/v1/posts/{pid}", json={"body": "back"}).status_code == 404
    assert a.post(f"/api/v1/posts/{pid}/publish").status_code == 404
    assert a.delete(f"/api/v1/posts/{pid}").status_code == 404


def test_who_may_delete(app, anna, bob, admin_api):
    _, a = anna
    bob_user, b = bob
    _, c = _person(app, "carol@example.org")
    group = _group(a, "Widgets")
    for client in (b, c):
        assert client.post(f"/api/v1/groups/{group['id']}/join").status_code == 200
    # In a group: the author and the group's owners and admins.
    in_group = _post(c, "by carol", group_id=group["id"])
    assert b.delete(f"/api/v1/posts/{in_group['id']}").status_code == 403
    assert admin_api.delete(f"/api/v1/posts/{in_group['id']}").status_code == 403
    role = a.put(f"/api/v1/groups/{group['id']}/members/{bob_user.id}/role", json={"role": "admin"})
    assert role.status_code == 204
    assert b.delete(f"/api/v1/posts/{in_group['id']}").status_code == 204
    # Outside groups: the author and site administrators.
    loose = _post(c, "by carol, no group")
    assert b.delete(f"/api/v1/posts/{loose['id']}").status_code == 403
    assert admin_api.delete(f"/api/v1/posts/{loose['id']}").status_code == 204


# --- comments -----------------------------------------------------------------------------------


def test_comments_have_one_level_of_replies(app, anna, bob):
    _, a = anna
    _, b = bob
    pid = _post(a, "Discuss")["id"]
    other = _post(a, "Elsewhere")["id"]
    top = b.post(f"/api/v1/posts/{pid}/comments", json={"body": "top"}).get_json()
    reply = a.post(f"/api/v1/posts/{pid}/comments", json={"body": "re", "parent_id": top["id"]})
    assert reply.status_code == 201 and reply.get_json()["parent_id"] == top["id"]
    second = b.post(f"/api/v1/posts/{pid}/comments", json={"body": "second"}).get_json()

    before = _counts()
    for body, where in [
        ({"body": "deeper", "parent_id": reply.get_json()["id"]}, pid),
        ({"body": "wrong post", "parent_id": top["id"]}, other),
        ({"body": "nobody", "parent_id": 999_999}, pid),
        ({"body": " "}, pid),
        ({"body": "x" * 10_001}, pid),
    ]:
        response = b.post(f"/api/v1/posts/{where}/comments", json=body)
        assert response.status_code == 422, (body, response.get_json())
    assert _counts() == before

    items = b.get(f"/api/v1/posts/{pid}/comments").get_json()["items"]
    assert [(c["body"], c["parent_id"]) for c in items] == [
        ("top", None),
        ("re", top["id"]),
        ("second", None),
    ]
    assert b.get(f"/api/v1/posts/{pid}").get_json()["comment_count"] == 3

    # Paging through comments: oldest first, no duplicates.
    first = b.get(f"/api/v1/posts/{pid}/comments", query_string={"limit": 2}).get_json()
    rest = b.get(
        f"/api/v1/posts/{pid}/comments", query_string={"limit": 2, "cursor": first["next_cursor"]}
    ).get_json()
    assert [c["id"] for c in first["items"] + rest["items"]] == [c["id"] for c in items]
    assert rest["next_cursor"] is None

    # Only the author edits a comment; the author or the post's managers delete it.
    assert a.patch(f"/api/v1/comments/{second['id']}", json={"body": "x"}).status_code == 403
    edited = b.patch(f"/api/v1/comments/{second['id']}", json={"body": "second, edited"})
    assert edited.status_code == 200 and edited.get_json()["edited_at"] is not None
    assert a.delete(f"/api/v1/comments/{second['id']}").status_code == 403
    assert b.delete(f"/api/v1/comments/{second['id']}").status_code == 204
    assert [c["id"] for c in b.get(f"/api/v1/posts/{pid}/comments").get_json()["items"]] == [
        top["id"],
        reply.get_json()["id"],
    ]
    assert b.get(f"/api/v1/posts/{pid}").get_json()["comment_count"] == 2
    assert b.delete(f"/api/v1/comments/{second['id']}").status_code == 404
    assert b.get(f"/api/v1/comments/{second['id']}/reactions").status_code == 404


# --- reactions ----------------------------------------------------------------------------------


def test_one_reaction_per_person_and_changing_it_replaces_it(app, anna, bob):
    _, a = anna
    bob_user, b = bob
    carol, c = _person(app, "carol@example.org")
    pid = _post(a, "React to me")["id"]

    assert b.put(f"/api/v1/posts/{pid}/reaction", json={"kind": "like"}).status_code == 204
    assert b.put(f"/api/v1/posts/{pid}/reaction", json={"kind": "like"}).status_code == 204
    assert b.put(f"/api/v1/posts/{pid}/reaction", json={"kind": "celebrate"}).status_code == 204
    assert c.put(f"/api/v1/posts/{pid}/reaction", json={}).status_code == 204  # like by default
    post = b.get(f"/api/v1/posts/{pid}").get_json()
    assert (post["reaction_count"], post["my_reaction"]) == (2, "celebrate")
    assert a.get(f"/api/v1/posts/{pid}").get_json()["my_reaction"] is None
    listed = a.get(f"/api/v1/posts/{pid}/reactions").get_json()
    assert listed["counts"] == {"celebrate": 1, "like": 1}
    assert [(r["user"]["id"], r["kind"]) for r in listed["items"]] == [
        (bob_user.id, "celebrate"),
        (carol.id, "like"),
    ]
    fresh()
    assert db.session.scalar(select(func.count()).select_from(Reaction)) == 2

    assert b.delete(f"/api/v1/posts/{pid}/reaction").status_code == 204
    assert b.delete(f"/api/v1/posts/{pid}/reaction").status_code == 204  # idempotent
    post = b.get(f"/api/v1/posts/{pid}").get_json()
    assert (post["reaction_count"], post["my_reaction"]) == (1, None)
    assert a.get(f"/api/v1/posts/{pid}/reactions").get_json()["counts"] == {"like": 1}
    assert b.put(f"/api/v1/posts/{pid}/reaction", json={"kind": "angry"}).status_code == 422

    # Comments take reactions the same way.
    comment = a.post(f"/api/v1/posts/{pid}/comments", json={"body": "c"}).get_json()
    for kind in ("insightful", "support"):
        response = b.put(f"/api/v1/comments/{comment['id']}/reaction", json={"kind": kind})
        assert response.status_code == 204
    assert c.put(f"/api/v1/comments/{comment['id']}/reaction", json={}).status_code == 204
    mine = b.get(f"/api/v1/posts/{pid}/comments").get_json()["items"][0]
    assert (mine["reaction_count"], mine["my_reaction"]) == (2, "support")
    counts = a.get(f"/api/v1/comments/{comment['id']}/reactions").get_json()["counts"]
    assert counts == {"support": 1, "like": 1}
    # A comment's reactions do not count on the post.
    assert a.get(f"/api/v1/posts/{pid}").get_json()["reaction_count"] == 1
    # The author may react to their own post too.
    assert a.put(f"/api/v1/posts/{pid}/reaction", json={}).status_code == 204


# --- accepted answers ---------------------------------------------------------------------------


def test_accepted_answer_only_on_questions_by_the_asker_or_group_managers(app, anna, bob):
    _, a = anna
    _, b = bob
    _, c = _person(app, "carol@example.org")
    statement = _post(a, "Not a question")
    answer = b.post(f"/api/v1/posts/{statement['id']}/comments", json={"body": "hm"}).get_json()
    response = a.put(f"/api/v1/posts/{statement['id']}/answer", json={"comment_id": answer["id"]})
    assert response.status_code in (403, 422)

    question = _post(a, "How do I X?", is_question=True)
    qid = question["id"]
    first = b.post(f"/api/v1/posts/{qid}/comments", json={"body": "Like so"}).get_json()
    second = c.post(f"/api/v1/posts/{qid}/comments", json={"body": "Or so"}).get_json()
    assert b.put(f"/api/v1/posts/{qid}/answer", json={"comment_id": first["id"]}).status_code == 403
    elsewhere = a.put(f"/api/v1/posts/{qid}/answer", json={"comment_id": answer["id"]})
    assert elsewhere.status_code == 422
    accepted = a.put(f"/api/v1/posts/{qid}/answer", json={"comment_id": first["id"]})
    assert accepted.status_code == 200 and accepted.get_json()["accepted_comment_id"] == first["id"]
    flags = {
        x["id"]: x["accepted"] for x in c.get(f"/api/v1/posts/{qid}/comments").get_json()["items"]
    }
    assert flags == {first["id"]: True, second["id"]: False}
    # Accepting another answer replaces the first; deleting the accepted one clears it.
    assert (
        a.put(f"/api/v1/posts/{qid}/answer", json={"comment_id": second["id"]}).status_code == 200
    )
    assert c.delete(f"/api/v1/comments/{second['id']}").status_code == 204
    assert a.get(f"/api/v1/posts/{qid}").get_json()["accepted_comment_id"] is None

    # In a group, its owners and admins decide too; plain members do not.
    group = _group(a, "Helpdesk")
    for client in (b, c):
        assert client.post(f"/api/v1/groups/{group['id']}/join").status_code == 200
    asked = _post(c, "Printer?", is_question=True, group_id=group["id"])
    reply = b.post(f"/api/v1/posts/{asked['id']}/comments", json={"body": "Reboot"}).get_json()
    body = {"comment_id": reply["id"]}
    assert b.put(f"/api/v1/posts/{asked['id']}/answer", json=body).status_code == 403
    assert a.put(f"/api/v1/posts/{asked['id']}/answer", json=body).status_code == 200


# --- announcements ------------------------------------------------------------------------------


@pytest.fixture
def departments(app: Flask) -> dict[str, int]:
    db.session.rollback()
    org = do_create_department(None, "ORG", "Organisation", None)
    db.session.flush()
    sales = do_create_department(None, "SAL", "Sales", org.id)
    eng = do_create_department(None, "ENG", "Engineering", org.id)
    db.session.flush()
    north = do_create_department(None, "SALN", "Sales North", sales.id)
    db.session.commit()
    return {"org": org.id, "sales": sales.id, "eng": eng.id, "north": north.id}


def _pinned(client: ApiClient) -> list[int]:
    feed = client.get("/api/v1/feed").get_json()
    return [p["id"] for p in feed["pinned"]]


def test_announcements_for_everyone_and_for_a_department(app, departments, admin_api):
    _, comms = _person(app, "comms@example.org", roles=["communications"])
    _, seller = _person(app, "seller@example.org", department_id=departments["north"])
    _, engineer = _person(app, "engineer@example.org", department_id=departments["eng"])
    _, nobody = _person(app, "nobody@example.org")
    _, writer = _person(app, "writer@example.org")

    everyone = _post(writer, "Canteen closed Friday")["id"]
    for_sales = _post(writer, "Sales kick-off")["id"]
    assert writer.post(f"/api/v1/posts/{everyone}/pin", json={}).status_code == 403
    assert admin_api.post(f"/api/v1/posts/{everyone}/pin", json={}).status_code == 201
    pinned = comms.post(
        f"/api/v1/posts/{for_sales}/pin", json={"department_id": departments["sales"]}
    )
    assert pinned.status_code == 201 and pinned.get_json()["pinned"] is True
    again = admin_api.post(f"/api/v1/posts/{everyone}/pin", json={})
    assert again.status_code == 409

    # Sub-departments are included; other departments, and people in none, are not.
    assert _pinned(seller) == [for_sales, everyone]
    assert _pinned(engineer) == [everyone]
    assert _pinned(nobody) == [everyone]
    assert for_sales in _ids(seller, "/api/v1/feed")
    assert for_sales not in _ids(engineer, "/api/v1/feed")
    assert everyone in _ids(engineer, "/api/v1/feed")
    # The post itself is an ordinary post for the others: readable, not pinned for them.
    assert engineer.get(f"/api/v1/posts/{for_sales}").status_code == 200

    # Unpinning: communications and admins only.
    assert writer.delete(f"/api/v1/posts/{for_sales}/pin").status_code == 403
    assert comms.delete(f"/api/v1/posts/{for_sales}/pin").status_code == 204
    assert _pinned(seller) == [everyone]
    assert for_sales not in _ids(seller, "/api/v1/feed")


def test_pins_expire_and_must_end_in_the_future(app, admin_api):
    _, writer = _person(app, "writer@example.org")
    with frozen_at(T0) as clock:
        pid = _post(writer, "Until Friday")["id"]
        before = _counts()
        for until in [
            "2025-03-03T08:59:00+00:00",
            "2025-03-03T09:00:00+00:00",
            "2025-03-07T12:00:00",
        ]:
            response = admin_api.post(f"/api/v1/posts/{pid}/pin", json={"pinned_until": until})
            assert response.status_code == 422, (until, response.get_json())
        assert (
            admin_api.post(f"/api/v1/posts/{pid}/pin", json={"department_id": 999}).status_code
            == 422
        )
        assert _counts() == before
        pinned = admin_api.post(
            f"/api/v1/posts/{pid}/pin", json={"pinned_until": "2025-03-07T12:00:00+00:00"}
        )
        assert pinned.status_code == 201, pinned.get_json()["errors"]
        assert _pinned(writer) == [pid]
        clock.set(datetime(2025, 3, 7, 12, 0, 1, tzinfo=UTC))
        assert _pinned(writer) == []
        assert writer.get(f"/api/v1/posts/{pid}").get_json()["pinned"] is False


def test_only_posts_everyone_can_read_are_pinned(app, admin, admin_api):
    _, o = _person(app, "owner@example.org")
    private = _group(o, "Board", visibility="private", join_policy="invite")
    invite = o.post(f"/api/v1/groups/{private['id']}/invitations", json={"user_id": admin.id})
    assert invite.status_code == 201
    assert admin_api.post(f"/api/v1/groups/{private['id']}/invitation/accept").status_code == 200
    secret = _post(o, "Board only", group_id=private["id"])["id"]
    assert admin_api.get(f"/api/v1/posts/{secret}").status_code == 200
    assert admin_api.post(f"/api/v1/posts/{secret}/pin", json={}).status_code == 403
    draft = _post(admin_api, "Draft", kind="article", title="t", publish=False)["id"]
    assert admin_api.post(f"/api/v1/posts/{draft}/pin", json={}).status_code == 403


# --- follows ------------------------------------------------------------------------------------


def test_follows_of_people_public_groups_and_hashtags(app, anna, bob):
    anna_user, a = anna
    _, b = bob
    public = _group(a, "Open", visibility="public")
    private = _group(a, "Closed", visibility="private", join_policy="request")
    secret = _group(a, "Hidden", visibility="secret", join_policy="invite")
    _post(a, "#widgets are great")

    assert b.put(f"/api/v1/people/{anna_user.id}/follow").status_code == 204
    assert b.put(f"/api/v1/people/{anna_user.id}/follow").status_code == 204  # idempotent
    assert b.put(f"/api/v1/groups/{public['id']}/follow").status_code == 204
    assert b.put(f"/api/v1/groups/{private['id']}/follow").status_code == 403
    assert b.put(f"/api/v1/groups/{secret['id']}/follow").status_code == 404
    assert b.put("/api/v1/hashtags/Widgets/follow").status_code == 204
    assert b.put("/api/v1/hashtags/nosuchtag/follow").status_code == 404
    assert b.put("/api/v1/people/999999/follow").status_code == 404

    following = b.get("/api/v1/me/following").get_json()["items"]
    assert sorted((f["target_type"], f["label"]) for f in following) == [
        ("group", "Open"),
        ("hashtag", "widgets"),
        ("user", "Anna"),
    ]
    assert b.get("/api/v1/hashtags/widgets").get_json()["following"] is True

    assert b.delete(f"/api/v1/people/{anna_user.id}/follow").status_code == 204
    assert b.delete(f"/api/v1/groups/{public['id']}/follow").status_code == 204
    assert b.delete("/api/v1/hashtags/WIDGETS/follow").status_code == 204
    assert b.get("/api/v1/me/following").get_json()["items"] == []
    # Members of a private group still cannot "follow" it: they are members already.
    assert a.put(f"/api/v1/groups/{private['id']}/follow").status_code == 403


# --- the home feed ------------------------------------------------------------------------------


def test_home_feed_holds_exactly_what_it_should(app, admin_api):
    _, m = _person(app, "me@example.org")
    friend, f = _person(app, "friend@example.org")
    _, s = _person(app, "stranger@example.org")
    joined = _group(s, "Joined")
    followed = _group(s, "Followed")
    other = _group(s, "Other")
    closed = _group(s, "Closed", visibility="private", join_policy="request")
    assert m.post(f"/api/v1/groups/{joined['id']}/join").status_code == 200
    assert m.put(f"/api/v1/groups/{followed['id']}/follow").status_code == 204
    assert m.put(f"/api/v1/people/{friend.id}/follow").status_code == 204
    first = _post(s, "the first post about #ours")["id"]
    assert m.put("/api/v1/hashtags/ours/follow").status_code == 204

    expected = [
        first,
        _post(m, "my own")["id"],
        _post(f, "from a friend")["id"],
        _post(s, "in my group", group_id=joined["id"])["id"],
        _post(s, "in a group I follow", group_id=followed["id"])["id"],
        _post(s, "about #ours")["id"],
        _post(s, "about #Ours in another group", group_id=other["id"])["id"],
    ]
    announcement = _post(s, "for everyone")["id"]
    assert admin_api.post(f"/api/v1/posts/{announcement}/pin", json={}).status_code == 201
    expected.append(announcement)
    unexpected = {
        _post(s, "a stranger's post")["id"],
        _post(s, "in a group I neither joined nor follow", group_id=other["id"])["id"],
        _post(s, "closed group #ours", group_id=closed["id"])["id"],
        _post(s, "a draft #ours", kind="article", title="t", publish=False)["id"],
        _post(f, "friend's draft", kind="article", title="t", publish=False)["id"],
        _post(f, "friend, deleted")["id"],
    }
    assert f.delete(f"/api/v1/posts/{max(unexpected)}").status_code == 204
    # Newest first, and nothing else.
    feed = _ids(m, "/api/v1/feed")
    assert feed == sorted(expected, reverse=True)
    assert not set(feed) & unexpected


# --- cursor pagination --------------------------------------------------------------------------


def _walk(client: ApiClient, path: str, limit: int, between: Any = None) -> list[int]:
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = client.get(path, query_string=params)
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        assert len(body["items"]) <= limit
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            return seen
        if between is not None:
            between()


def test_feeds_paginate_by_cursor_without_duplicates_even_as_posts_arrive(app):
    author, a = _person(app, "author@example.org")
    _, r = _person(app, "reader@example.org")
    group = _group(a, "Stream")
    assert r.post(f"/api/v1/groups/{group['id']}/join").status_code == 200
    assert r.put(f"/api/v1/people/{author.id}/follow").status_code == 204
    with frozen_at(T0) as clock:
        ids = []
        for i in range(14):
            # Several posts share a timestamp: the id breaks the tie.
            clock.set(T0 + timedelta(minutes=i // 3))
            ids.append(_post(a, f"post {i} #stream", group_id=group["id"])["id"])
        newest_first = sorted(ids, key=lambda i: (ids.index(i) // 3, i), reverse=True)

        arrived: list[int] = []
        turns = [0]

        def a_new_post_arrives() -> None:
            # New posts arrive after the first and the second page of each walk.
            turns[0] += 1
            if turns[0] <= 2:
                clock.set(clock.current + timedelta(minutes=1))
                arrived.append(_post(a, "late #stream", group_id=group["id"])["id"])

        for path in (
            "/api/v1/feed",
            f"/api/v1/people/{author.id}/feed",
            f"/api/v1/groups/{group['id']}/feed",
            "/api/v1/hashtags/stream/feed",
        ):
            for limit in (2, 5):
                turns[0] = 0
                # Exactly the posts there when the walk began, newest first, each once; the
                # ones that arrive meanwhile wait for the next first page.
                expected = arrived[::-1] + newest_first
                assert _walk(r, path, limit, between=a_new_post_arrives) == expected, (path, limit)
        assert len(arrived) == 4 * 2 * 2

    # Forged cursors are a 400, never a 500: garbage, a naive time, a time out of range.
    forged = [
        "not-a-cursor",
        encode_cursor("yesterday", 1),
        encode_cursor("2025-03-03T09:00:00", 1),
        encode_cursor("0001-01-01T00:00:00+05:00", 1),
        encode_cursor("2025-03-03T09:00:00+00:00", -1),
    ]
    for cursor in forged:
        for path in ("/api/v1/feed", f"/api/v1/groups/{group['id']}/feed"):
            response = r.get(path, query_string={"cursor": cursor})
            assert response.status_code == 400, (cursor, path, response.get_json())


# --- trending -----------------------------------------------------------------------------------


def test_trending_counts_the_visible_posts_of_the_last_seven_days(app, anna, bob):
    _, a = anna
    _, b = bob
    closed = _group(a, "Closed", visibility="private", join_policy="invite")
    with frozen_at(T0 - timedelta(days=8)):
        for _ in range(5):
            _post(a, "#old news")
    with frozen_at(T0 - timedelta(days=6, hours=23)):
        _post(a, "#recent and #Busy")
    with frozen_at(T0 - timedelta(days=1)):
        for _ in range(3):
            _post(a, "#busy day")
        _post(a, "#busy in private", group_id=closed["id"])
        deleted = _post(a, "#busy but deleted")["id"]
        assert a.delete(f"/api/v1/posts/{deleted}").status_code == 204
        _post(a, "#busy draft", kind="article", title="t", publish=False)
        _post(a, "#OLD again")
    with frozen_at(T0):
        trending = b.get("/api/v1/hashtags/trending").get_json()
        assert datetime.fromisoformat(trending["since"]) == T0 - timedelta(days=7)
        assert [(t["name"], t["posts"]) for t in trending["items"]] == [
            ("busy", 4),
            ("old", 1),
            ("recent", 1),
        ]
        # A member of the private group counts its post too.
        mine = [
            (t["name"], t["posts"]) for t in a.get("/api/v1/hashtags/trending").get_json()["items"]
        ]
        assert mine[0] == ("busy", 5)
