"""The permission matrix of the social core: who sees what, on which surface.

Ten viewers (the nine of the issue plus an external partner) look at the content of a public,
a private and a secret group through every read surface of the API: the object itself, the
lists it appears in, the home, group, profile and hashtag feeds, and the counts that could
betray it (comment and reaction counts, member counts, trending hashtag counts).

Every expected outcome is written out below, denials included, one table per group
visibility: a row per object and surface, a column per viewer. Each (group, viewer) pair is one
test that builds the world with that group and compares every cell of its column, reporting all
the cells that differ at once.

The world:

* ``owner`` created the group with join policy "request" (so that a request can be pending;
  an invitation works for any policy). ``group_admin`` is an admin, ``member`` and ``author``
  plain members, and ``deactivated`` was a member too (before deactivation it could read
  everything: its denials prove that deactivation, not membership, closes the door). So the
  group has 5 members.
* ``requester`` has a pending join request (to the secret group it was made while the group
  was still private; the group turned secret later). ``invitee`` has a pending invitation.
  ``nonmember`` is an ordinary employee, ``external`` a partner account, ``site_admin`` a site
  administrator who is not a member.
* ``author`` wrote a post and an article (published), a draft article and a post that was then
  deleted, all tagged ``#news`` and ``#<visibility>news``. ``member`` commented on the post;
  ``owner`` and ``member`` reacted to the post, ``owner`` to the comment.
* Every person follows ``author`` and ``#news``, so the home feed would show any post that
  leaked past the access policy.

Cell values: an HTTP status (the request's answer); ``IN``/``OUT``: the object is or is not in
the list or feed, which answered 200; a number: the count that is served; ``HID``: the object is
listed but its count is withheld (null). ``<object>.feeds`` is ``IN`` when any feed that answered
200 (group, home, profile, hashtag) holds the object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from esn import access
from esn.accounts.actions import do_deactivate_user
from esn.accounts.models import User
from esn.extensions import db
from esn.groups.actions import (
    check_change_role,
    check_invite,
    check_leave,
    check_request,
    do_create_group,
    do_join,
    do_update_group,
)
from esn.groups.models import GroupRole, JoinPolicy, Visibility
from esn.social.actions import (
    do_create_comment,
    do_create_post,
    do_delete_post,
    do_follow,
    do_react,
    hashtag_by_name,
)
from esn.social.models import FollowType, ReactionKind, TargetType
from tests.conftest import ApiClient, fresh, make_user

IN, OUT, HID = "in", "out", "hidden"

VIEWERS = (
    "anonymous",
    "nonmember",
    "external",
    "requester",
    "invitee",
    "member",
    "group_admin",
    "owner",
    "site_admin",
    "deactivated",
)

# fmt: off
MATRIX: dict[str, dict[str, tuple[Any, ...]]] = {
    "public": {
        #                       anon nonmem extern reqstr invite member gadmin owner  sadmin deact
        "group.get":           (401, 200,   404,   200,   200,   200,   200,   200,   200,   401),
        "group.list":          (401, 5,     OUT,   5,     5,     5,     5,     5,     5,     401),
        "group.profile":       (401, 5,     404,   5,     5,     5,     5,     5,     5,     401),
        "members.get":         (401, 200,   404,   200,   200,   200,   200,   200,   200,   401),
        "members.count":       (401, 5,     404,   5,     5,     5,     5,     5,     5,     401),
        "requests.get":        (401, 403,   404,   403,   403,   403,   200,   200,   403,   401),
        "post.get":            (401, 200,   404,   200,   200,   200,   200,   200,   200,   401),
        "post.comment_count":  (401, 1,     404,   1,     1,     1,     1,     1,     1,     401),
        "post.reaction_count": (401, 2,     404,   2,     2,     2,     2,     2,     2,     401),
        "post.group_feed":     (401, IN,    404,   IN,    IN,    IN,    IN,    IN,    IN,    401),
        "post.home_feed":      (401, IN,    OUT,   IN,    IN,    IN,    IN,    IN,    IN,    401),
        "post.profile_feed":   (401, IN,    404,   IN,    IN,    IN,    IN,    IN,    IN,    401),
        "post.tag_feed":       (401, IN,    OUT,   IN,    IN,    IN,    IN,    IN,    IN,    401),
        "article.get":         (401, 200,   404,   200,   200,   200,   200,   200,   200,   401),
        "article.group_feed":  (401, IN,    404,   IN,    IN,    IN,    IN,    IN,    IN,    401),
        "article.home_feed":   (401, IN,    OUT,   IN,    IN,    IN,    IN,    IN,    IN,    401),
        "article.profile_feed":(401, IN,    404,   IN,    IN,    IN,    IN,    IN,    IN,    401),
        "article.tag_feed":    (401, IN,    OUT,   IN,    IN,    IN,    IN,    IN,    IN,    401),
        "draft.get":           (401, 404,   404,   404,   404,   404,   404,   404,   404,   401),
        "draft.feeds":         (401, OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   401),
        "deleted.get":         (401, 404,   404,   404,   404,   404,   404,   404,   404,   401),
        "deleted.feeds":       (401, OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   401),
        "comment.list":        (401, IN,    404,   IN,    IN,    IN,    IN,    IN,    IN,    401),
        "comment.reactions":   (401, 200,   404,   200,   200,   200,   200,   200,   200,   401),
        "reactions.get":       (401, 200,   404,   200,   200,   200,   200,   200,   200,   401),
        "tag.get":             (401, 200,   404,   200,   200,   200,   200,   200,   200,   401),
        "tag.trending":        (401, 2,     0,     2,     2,     2,     2,     2,     2,     401),
    },
    "private": {
        #                       anon nonmem extern reqstr invite member gadmin owner  sadmin deact
        "group.get":           (401, 200,   404,   200,   200,   200,   200,   200,   200,   401),
        "group.list":          (401, HID,   OUT,   HID,   HID,   5,     5,     5,     HID,   401),
        "group.profile":       (401, HID,   404,   HID,   HID,   5,     5,     5,     HID,   401),
        "members.get":         (401, 403,   404,   403,   403,   200,   200,   200,   403,   401),
        "members.count":       (401, HID,   404,   HID,   HID,   5,     5,     5,     HID,   401),
        "requests.get":        (401, 403,   404,   403,   403,   403,   200,   200,   403,   401),
        "post.get":            (401, 404,   404,   404,   404,   200,   200,   200,   404,   401),
        "post.comment_count":  (401, 404,   404,   404,   404,   1,     1,     1,     404,   401),
        "post.reaction_count": (401, 404,   404,   404,   404,   2,     2,     2,     404,   401),
        "post.group_feed":     (401, 403,   404,   403,   403,   IN,    IN,    IN,    403,   401),
        "post.home_feed":      (401, OUT,   OUT,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "post.profile_feed":   (401, OUT,   404,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "post.tag_feed":       (401, OUT,   OUT,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "article.get":         (401, 404,   404,   404,   404,   200,   200,   200,   404,   401),
        "article.group_feed":  (401, 403,   404,   403,   403,   IN,    IN,    IN,    403,   401),
        "article.home_feed":   (401, OUT,   OUT,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "article.profile_feed":(401, OUT,   404,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "article.tag_feed":    (401, OUT,   OUT,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "draft.get":           (401, 404,   404,   404,   404,   404,   404,   404,   404,   401),
        "draft.feeds":         (401, OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   401),
        "deleted.get":         (401, 404,   404,   404,   404,   404,   404,   404,   404,   401),
        "deleted.feeds":       (401, OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   401),
        "comment.list":        (401, 404,   404,   404,   404,   IN,    IN,    IN,    404,   401),
        "comment.reactions":   (401, 404,   404,   404,   404,   200,   200,   200,   404,   401),
        "reactions.get":       (401, 404,   404,   404,   404,   200,   200,   200,   404,   401),
        "tag.get":             (401, 404,   404,   404,   404,   200,   200,   200,   404,   401),
        "tag.trending":        (401, 0,     0,     0,     0,     2,     2,     2,     0,     401),
    },
    # Secret means 404. The one exception is the invitee, who may see the group itself (its name,
    # to decide on the invitation) but nothing inside it: 403 where the group is addressed,
    # 404 for its posts, as in a private group.
    "secret": {
        #                       anon nonmem extern reqstr invite member gadmin owner  sadmin deact
        "group.get":           (401, 404,   404,   404,   200,   200,   200,   200,   404,   401),
        "group.list":          (401, OUT,   OUT,   OUT,   HID,   5,     5,     5,     OUT,   401),
        "group.profile":       (401, OUT,   404,   OUT,   HID,   5,     5,     5,     OUT,   401),
        "members.get":         (401, 404,   404,   404,   403,   200,   200,   200,   404,   401),
        "members.count":       (401, 404,   404,   404,   HID,   5,     5,     5,     404,   401),
        "requests.get":        (401, 404,   404,   404,   403,   403,   200,   200,   404,   401),
        "post.get":            (401, 404,   404,   404,   404,   200,   200,   200,   404,   401),
        "post.comment_count":  (401, 404,   404,   404,   404,   1,     1,     1,     404,   401),
        "post.reaction_count": (401, 404,   404,   404,   404,   2,     2,     2,     404,   401),
        "post.group_feed":     (401, 404,   404,   404,   403,   IN,    IN,    IN,    404,   401),
        "post.home_feed":      (401, OUT,   OUT,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "post.profile_feed":   (401, OUT,   404,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "post.tag_feed":       (401, OUT,   OUT,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "article.get":         (401, 404,   404,   404,   404,   200,   200,   200,   404,   401),
        "article.group_feed":  (401, 404,   404,   404,   403,   IN,    IN,    IN,    404,   401),
        "article.home_feed":   (401, OUT,   OUT,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "article.profile_feed":(401, OUT,   404,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "article.tag_feed":    (401, OUT,   OUT,   OUT,   OUT,   IN,    IN,    IN,    OUT,   401),
        "draft.get":           (401, 404,   404,   404,   404,   404,   404,   404,   404,   401),
        "draft.feeds":         (401, OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   401),
        "deleted.get":         (401, 404,   404,   404,   404,   404,   404,   404,   404,   401),
        "deleted.feeds":       (401, OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   OUT,   401),
        "comment.list":        (401, 404,   404,   404,   404,   IN,    IN,    IN,    404,   401),
        "comment.reactions":   (401, 404,   404,   404,   404,   200,   200,   200,   404,   401),
        "reactions.get":       (401, 404,   404,   404,   404,   200,   200,   200,   404,   401),
        "tag.get":             (401, 404,   404,   404,   404,   200,   200,   200,   404,   401),
        "tag.trending":        (401, 0,     0,     0,     0,     2,     2,     2,     0,     401),
    },
}
# fmt: on

PEOPLE = (
    "owner",
    "group_admin",
    "member",
    "author",
    "requester",
    "invitee",
    "nonmember",
    "external",
    "site_admin",
    "deactivated",
)
OBJECTS = ("post", "article", "draft", "deleted")


@dataclass
class World:
    people: dict[str, User]
    group: int
    posts: dict[str, int]  # object -> post id
    comment: int


def _build_world(vis: str) -> World:
    """The world of the module docstring, with the one group under test (the cells of a
    column concern that group's objects only)."""
    people = {
        name: make_user(
            f"{name.replace('_', '.')}@example.org",
            display_name=name.replace("_", " ").title(),
            roles=["admin", "employee"] if name == "site_admin" else ["employee"],
            is_external=name == "external",
        )
        for name in PEOPLE
    }
    owner, author, member = people["owner"], people["author"], people["member"]
    group = do_create_group(
        owner,
        {
            "name": f"The {vis} group",
            "visibility": Visibility.private if vis == "secret" else Visibility(vis),
            "join_policy": JoinPolicy.request,
        },
    )
    for name in ("group_admin", "member", "author", "deactivated"):
        do_join(people[name], group)
    check_change_role(owner, group, people["group_admin"].id, GroupRole.admin)
    check_request(people["requester"], group, "May I join?")
    check_invite(owner, group, people["invitee"].id, 14)
    if vis == "secret":
        do_update_group(owner, group, {"visibility": Visibility.secret})
    body = f"Progress in the {vis} group #news #{vis}news"
    made = {
        "post": do_create_post(author, {"kind": "post", "body": body}, group),
        "article": do_create_post(
            author, {"kind": "article", "title": "A long read", "body": body}, group
        ),
        "draft": do_create_post(
            author, {"kind": "article", "title": "Not yet", "body": body, "publish": False}, group
        ),
        "deleted": do_create_post(author, {"kind": "post", "body": body}, group),
    }
    do_delete_post(author, made["deleted"])
    post = made["post"]
    comment = do_create_comment(member, post, "Well said", None)
    do_react(owner, post, TargetType.post, post.id, author.id, ReactionKind.like)
    do_react(member, post, TargetType.post, post.id, author.id, ReactionKind.celebrate)
    do_react(owner, post, TargetType.comment, comment.id, member.id, ReactionKind.like)
    news = hashtag_by_name("news")
    for person in people.values():
        if person.id != author.id:
            do_follow(person, FollowType.user, author.id)
        do_follow(person, FollowType.hashtag, news.id)
    db.session.commit()
    return World(people, group.id, {name: p.id for name, p in made.items()}, comment.id)


def _client(app: Flask, world: World, viewer: str) -> ApiClient:
    client = ApiClient(app)
    if viewer == "anonymous":
        return client
    user = world.people[viewer]
    assert client.sign_in(user.email).status_code == 200
    if viewer == "deactivated":
        # Signed in while active; the session must stop working the moment the account goes.
        fresh()
        do_deactivate_user(None, db.session.get(User, user.id))
        db.session.commit()
    return client


def _ids(response: Any) -> set[int] | int:
    """The ids of the items of a page, or the status when the request was refused."""
    if response.status_code != 200:
        return int(response.status_code)
    return {item["id"] for item in response.get_json()["items"]}


def _count(value: int | None) -> int | str:
    return HID if value is None else value


def _listed(response: Any, group_id: int) -> int | str:
    """How a group list shows the group: its member count, HID, OUT, or the refusal."""
    if response.status_code != 200:
        return int(response.status_code)
    for item in response.get_json()["items"]:
        if item["id"] == group_id:
            return _count(item["member_count"])
    return OUT


def _membership(found: set[int] | int, item_id: int) -> str | int:
    if isinstance(found, int):
        return found
    return IN if item_id in found else OUT


def _observe(client: ApiClient, world: World, vis: str) -> dict[str, Any]:
    """Every cell of one (group, viewer) column, as the API serves it."""
    group, posts, comment = world.group, world.posts, world.comment
    author = world.people["author"].id
    seen: dict[str, Any] = {}

    answer = client.get(f"/api/v1/groups/{group}")
    seen["group.get"] = answer.status_code
    seen["members.count"] = (
        _count(answer.get_json()["member_count"])
        if answer.status_code == 200
        else answer.status_code
    )
    seen["group.list"] = _listed(client.get("/api/v1/groups?limit=100"), group)
    seen["group.profile"] = _listed(client.get(f"/api/v1/people/{author}/groups"), group)
    seen["members.get"] = client.get(f"/api/v1/groups/{group}/members").status_code
    seen["requests.get"] = client.get(f"/api/v1/groups/{group}/requests").status_code

    feeds = {
        "group_feed": _ids(client.get(f"/api/v1/groups/{group}/feed?limit=100")),
        "home_feed": _ids(client.get("/api/v1/feed?limit=100")),
        "profile_feed": _ids(client.get(f"/api/v1/people/{author}/feed?limit=100")),
        "tag_feed": _ids(client.get("/api/v1/hashtags/news/feed?limit=100")),
    }
    for obj in OBJECTS:
        post_id = posts[obj]
        answer = client.get(f"/api/v1/posts/{post_id}")
        seen[f"{obj}.get"] = answer.status_code
        if obj == "post":
            body = answer.get_json() if answer.status_code == 200 else None
            for counter in ("comment_count", "reaction_count"):
                seen[f"post.{counter}"] = body[counter] if body else answer.status_code
        if obj in ("post", "article"):
            for feed, found in feeds.items():
                seen[f"{obj}.{feed}"] = _membership(found, post_id)
        else:
            answered = [found for found in feeds.values() if not isinstance(found, int)]
            if not answered:
                seen[f"{obj}.feeds"] = next(iter(feeds.values()))
            else:
                seen[f"{obj}.feeds"] = IN if any(post_id in f for f in answered) else OUT

    listed = _ids(client.get(f"/api/v1/posts/{posts['post']}/comments"))
    seen["comment.list"] = _membership(listed, comment)
    seen["comment.reactions"] = client.get(f"/api/v1/comments/{comment}/reactions").status_code
    seen["reactions.get"] = client.get(f"/api/v1/posts/{posts['post']}/reactions").status_code

    seen["tag.get"] = client.get(f"/api/v1/hashtags/{vis}news").status_code
    trending = client.get("/api/v1/hashtags/trending")
    if trending.status_code != 200:
        seen["tag.trending"] = trending.status_code
    else:
        counts = {t["name"]: t["posts"] for t in trending.get_json()["items"]}
        seen["tag.trending"] = counts.get(f"{vis}news", 0)
    return seen


def test_the_matrix_is_complete():
    rows = list(MATRIX["public"])
    for vis, table in MATRIX.items():
        assert list(table) == rows, vis
        for cell, row in table.items():
            assert len(row) == len(VIEWERS), (vis, cell)


@pytest.mark.parametrize(
    ("visibility", "viewer"),
    [pytest.param(vis, viewer, id=f"{vis}-{viewer}") for vis in MATRIX for viewer in VIEWERS],
)
def test_matrix(app, visibility, viewer):
    world = _build_world(visibility)
    client = _client(app, world, viewer)
    seen = _observe(client, world, visibility)
    column = VIEWERS.index(viewer)
    expected = {cell: row[column] for cell, row in MATRIX[visibility].items()}
    assert set(seen) == set(expected)
    wrong = {
        cell: f"expected {expected[cell]!r}, served {seen[cell]!r}"
        for cell in expected
        if seen[cell] != expected[cell]
    }
    assert not wrong, wrong


# --- removal and leaving take effect on the very next request -----------------------------------


def _visible_to(client: ApiClient, group_id: int, post_id: int) -> dict[str, Any]:
    group = client.get(f"/api/v1/groups/{group_id}")
    if group.status_code != 200:
        member_count: int | str = group.status_code
    else:
        member_count = HID if group.get_json()["member_count"] is None else "shown"
    return {
        "member_count": member_count,
        "post": client.get(f"/api/v1/posts/{post_id}").status_code,
        "group_feed": _membership(_ids(client.get(f"/api/v1/groups/{group_id}/feed")), post_id),
        "home_feed": _membership(_ids(client.get("/api/v1/feed")), post_id),
        "members": client.get(f"/api/v1/groups/{group_id}/members").status_code,
        "comments": client.get(f"/api/v1/posts/{post_id}/comments").status_code,
    }


MEMBER_VIEW = {
    "member_count": "shown",
    "post": 200,
    "group_feed": IN,
    "home_feed": IN,
    "members": 200,
    "comments": 200,
}
OUTSIDER_VIEW = {
    "private": {
        "member_count": HID,
        "post": 404,
        "group_feed": 403,
        "home_feed": OUT,
        "members": 403,
        "comments": 404,
    },
    "secret": {
        "member_count": 404,
        "post": 404,
        "group_feed": 404,
        "home_feed": OUT,
        "members": 404,
        "comments": 404,
    },
}


@pytest.mark.parametrize("visibility", ["private", "secret"])
def test_removal_and_leaving_take_effect_on_the_next_request(app, visibility):
    owner = make_user("owner@example.org")
    removed = make_user("removed@example.org")
    leaver = make_user("leaver@example.org")
    group = do_create_group(
        owner,
        {
            "name": "Closed circle",
            "visibility": Visibility(visibility),
            "join_policy": JoinPolicy.invite,
        },
    )
    do_join(removed, group)
    do_join(leaver, group)
    first = do_create_post(owner, {"kind": "post", "body": "Older #circle"}, group)
    post = do_create_post(owner, {"kind": "post", "body": "Plans #circle"}, group)
    for person in (removed, leaver):
        # Following the author and the tag: the home feed would keep the post if only
        # membership were forgotten.
        do_follow(person, FollowType.user, owner.id)
        do_follow(person, FollowType.hashtag, hashtag_by_name("circle").id)
    group_id, post_id, first_id = group.id, post.id, first.id
    removed_id = removed.id
    db.session.commit()

    owner_api, removed_api, leaver_api = ApiClient(app), ApiClient(app), ApiClient(app)
    for client, email in (
        (owner_api, "owner@example.org"),
        (removed_api, "removed@example.org"),
        (leaver_api, "leaver@example.org"),
    ):
        assert client.sign_in(email).status_code == 200
    for client in (removed_api, leaver_api):
        assert _visible_to(client, group_id, post_id) == MEMBER_VIEW
    # A reader half-way through the group feed holds a cursor.
    page = removed_api.get(f"/api/v1/groups/{group_id}/feed?limit=1").get_json()
    assert [p["id"] for p in page["items"]] == [post_id] and page["next_cursor"]

    assert owner_api.delete(f"/api/v1/groups/{group_id}/members/{removed_id}").status_code == 204
    assert _visible_to(removed_api, group_id, post_id) == OUTSIDER_VIEW[visibility]
    assert _visible_to(removed_api, group_id, first_id)["post"] == 404
    rest = removed_api.get(f"/api/v1/groups/{group_id}/feed?limit=1&cursor={page['next_cursor']}")
    assert rest.status_code == OUTSIDER_VIEW[visibility]["group_feed"]
    assert removed_api.get("/api/v1/hashtags/trending").get_json()["items"] == []
    # The one who stays is unaffected.
    assert _visible_to(leaver_api, group_id, post_id) == MEMBER_VIEW

    assert leaver_api.post(f"/api/v1/groups/{group_id}/leave").status_code == 204
    assert _visible_to(leaver_api, group_id, post_id) == OUTSIDER_VIEW[visibility]
    assert leaver_api.get("/api/v1/hashtags/trending").get_json()["items"] == []
    assert _visible_to(owner_api, group_id, post_id) == MEMBER_VIEW


def test_leaving_through_the_action_is_seen_by_the_policy_at_once(app):
    """The check reads membership from the database every time: no cached role survives."""
    owner = make_user("owner@example.org")
    member = make_user("member@example.org")
    group = do_create_group(
        owner, {"name": "Team", "visibility": Visibility.secret, "join_policy": JoinPolicy.invite}
    )
    do_join(member, group)
    post = do_create_post(owner, {"kind": "post", "body": "Hi"}, group)
    db.session.commit()
    assert access.can(member, "post:read", post) and access.can(member, "group:see", group)
    check_leave(member, group)
    db.session.commit()
    assert not access.can(member, "post:read", post)
    assert not access.can(member, "group:see", group)
