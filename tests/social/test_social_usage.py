"""Usage events of the social core and of groups: every action writes exactly its events, in
its own transaction, with what telemetry needs (actor and their department, the owner of the
content answered, reacted to or mentioned, group, process, thread root and payload).

Each case runs one action through the API in a small world and compares the events it added,
field by field, with the events it should have added. A failed request adds none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from esn.accounts.actions import do_create_token, do_create_user
from esn.accounts.models import User
from esn.clock import SettableClock, frozen_at
from esn.directory.actions import do_create_department
from esn.extensions import db
from esn.groups import actions as group_actions
from esn.groups.models import Group, JoinPolicy, Visibility
from esn.processes import Process
from esn.social import actions as social_actions
from esn.social.models import Comment, Post
from esn.usage import kinds
from esn.usage.models import UsageEvent
from tests.conftest import ApiClient, fresh

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
FIELDS = (
    "kind",
    "actor_id",
    "actor_department_id",
    "object_type",
    "object_id",
    "owner_id",
    "group_id",
    "process",
    "thread_root_id",
    "payload",
)


@dataclass
class World:
    """Anna owns the production group G and asked question P in it (tagged #widgets); Bob, a
    member, answered with comment C. Carol is in neither. Each has a department and a token."""

    users: dict[str, User]
    departments: dict[str, int]
    clients: dict[str, ApiClient]
    group: int
    post: int
    comment: int
    hashtag: int
    since: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        users = self.__dict__.get("users", {})
        if name in users:
            return users[name]
        raise AttributeError(name)

    def api(self, who: str) -> ApiClient:
        return self.clients[who]

    def at(self, who: str) -> str:
        """How to mention them."""
        return f"@{self.users[who].handle}"

    def start(self) -> None:
        """From here on, events count as the action's."""
        fresh()
        self.since = db.session.scalar(select(func.max(UsageEvent.id))) or 0

    def added(self) -> list[UsageEvent]:
        fresh()
        return list(
            db.session.scalars(
                select(UsageEvent).where(UsageEvent.id > self.since).order_by(UsageEvent.id)
            )
        )


def event(
    usage_kind: kinds.UsageKind,
    actor: User,
    object_type: str,
    object_id: int,
    /,
    *,
    owner: User | None = None,
    group: int | None = None,
    process: str | None = None,
    root: int | None = None,
    **payload: Any,
) -> dict[str, Any]:
    return {
        "kind": usage_kind.name,
        "actor_id": actor.id,
        "actor_department_id": actor.department_id,
        "object_type": object_type,
        "object_id": object_id,
        "owner_id": owner.id if owner is not None else None,
        "group_id": group,
        "process": process,
        "thread_root_id": root,
        "payload": payload,
    }


def _row(e: UsageEvent) -> dict[str, Any]:
    return {name: getattr(e, name) for name in FIELDS}


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_json()
    return response.get_json()


NOW = T0 + timedelta(hours=1)


@pytest.fixture
def clock(app: Flask) -> Iterator[SettableClock]:
    """Everything in this module happens on one day, frozen at ``NOW`` unless moved."""
    with frozen_at(NOW) as frozen:
        yield frozen


def build_world(app: Flask, n: int = 0) -> World:
    """A world of its own (number ``n``) in the test's database."""
    # One transaction for the whole world: commits are what costs.
    db.session.rollback()
    departments = {}
    for code in ("PRD", "SVC", "MKT", "COM"):
        departments[code] = do_create_department(None, f"{code}{n}", code.title(), None).id
        db.session.flush()
    people: dict[str, dict[str, Any]] = {
        "anna": {"department_id": departments["PRD"]},
        "bob": {"department_id": departments["SVC"]},
        "carol": {"department_id": departments["MKT"]},
        "dora": {"department_id": departments["COM"], "roles": ["communications"]},
        "eve": {},  # in no department
    }
    # They use API tokens: no passwords to hash, no sign-in events.
    users = {
        name: do_create_user(
            None,
            {"email": f"{name}{n}@example.org", "display_name": name.title(), "password": None}
            | {"roles": ["employee"]}
            | fields,
        )
        for name, fields in people.items()
    }
    for user in users.values():
        # Today's visit is recorded already: the first request of the day adds no event.
        user.last_visit_on = NOW.date()
    anna, bob = users["anna"], users["bob"]
    group = group_actions.do_create_group(
        anna,
        {
            "name": "Line 3",
            "description": "",
            "visibility": Visibility.public,
            "join_policy": JoinPolicy.open,
            "process": Process.production,
            "process_owner_id": None,
        },
    )
    group_actions.do_join(bob, group)
    post = social_actions.do_create_post(
        anna, {"kind": "post", "body": "Why does #widgets jam?", "is_question": True}, group
    )
    comment = social_actions.do_create_comment(bob, post, "Dust.", None)
    secrets = {name: do_create_token(user, "test", None)[1] for name, user in users.items()}
    db.session.commit()
    return World(
        users=users,
        departments=departments,
        clients={name: ApiClient(app, token=secret) for name, secret in secrets.items()},
        group=group.id,
        post=post.id,
        comment=comment.id,
        hashtag=social_actions.hashtag_by_name("widgets").id,
    )


@pytest.fixture
def world(app: Flask, clock: SettableClock) -> World:
    return build_world(app)


# --- the cases ----------------------------------------------------------------------------------
# Each case: (name, the kinds it must add, action). The action may prepare, then call
# ``w.start()``; it performs the measured request and returns the events expected, in any order.

Case = tuple[str, Counter[str], Callable[[World], list[dict[str, Any]]]]
PRD = "production"


def _publish_with_mentions(w: World) -> list[dict[str, Any]]:
    bob, carol = w.at("bob"), w.at("carol").upper()
    body = f"Ask {bob} and {carol} (and {bob} again; not @nobody, nor dora@example.org)"
    post = _ok(w.api("anna").post("/api/v1/posts", json={"body": body, "group_id": w.group}), 201)
    pid = post["id"]
    common = {"group": w.group, "process": PRD, "root": pid}
    return [
        event(kinds.POST_PUBLISH, w.anna, "post", pid, **common, kind="post", is_question=False),
        event(kinds.MENTION, w.anna, "post", pid, owner=w.bob, **common, source="post"),
        event(kinds.MENTION, w.anna, "post", pid, owner=w.carol, **common, source="post"),
    ]


def _publish_question_outside_groups(w: World) -> list[dict[str, Any]]:
    body = {"body": "Anyone?", "is_question": True, "process": "service"}
    pid = _ok(w.api("eve").post("/api/v1/posts", json=body), 201)["id"]
    return [
        event(
            kinds.POST_PUBLISH,
            w.eve,
            "post",
            pid,
            process="service",
            root=pid,
            kind="post",
            is_question=True,
        )
    ]


def _save_draft_with_mention(w: World) -> list[dict[str, Any]]:
    body = {"kind": "article", "title": "Soon", "body": f"Thanks {w.at('bob')}", "publish": False}
    pid = _ok(w.api("carol").post("/api/v1/posts", json=body), 201)["id"]
    # No mention yet: a draft is seen by nobody.
    return [
        event(
            kinds.POST_DRAFT,
            w.carol,
            "post",
            pid,
            process="general",
            root=pid,
            kind="article",
            is_question=False,
        )
    ]


def _edit_draft_with_mention(w: World) -> list[dict[str, Any]]:
    body = {"kind": "article", "title": "Soon", "body": f"Thanks {w.at('bob')}", "publish": False}
    pid = _ok(w.api("carol").post("/api/v1/posts", json=body), 201)["id"]
    w.start()
    _ok(
        w.api("carol").patch(
            f"/api/v1/posts/{pid}", json={"body": f"Thanks {w.at('bob')} and {w.at('anna')}"}
        )
    )
    return [
        event(kinds.POST_EDIT, w.carol, "post", pid, process="general", root=pid, fields=["body"])
    ]


def _publish_draft(w: World) -> list[dict[str, Any]]:
    body = {"kind": "article", "title": "Soon", "body": f"Thanks {w.at('bob')}", "publish": False}
    pid = _ok(w.api("carol").post("/api/v1/posts", json=body), 201)["id"]
    _ok(
        w.api("carol").patch(
            f"/api/v1/posts/{pid}", json={"body": f"Thanks {w.at('bob')} and {w.at('anna')}"}
        )
    )
    w.start()
    _ok(w.api("carol").post(f"/api/v1/posts/{pid}/publish"))
    common = {"process": "general", "root": pid}
    return [
        event(
            kinds.POST_PUBLISH, w.carol, "post", pid, **common, kind="article", is_question=False
        ),
        event(kinds.MENTION, w.carol, "post", pid, owner=w.anna, **common, source="post"),
        event(kinds.MENTION, w.carol, "post", pid, owner=w.bob, **common, source="post"),
    ]


def _publish_draft_whose_mention_was_edited_away(w: World) -> list[dict[str, Any]]:
    body = {"kind": "article", "title": "Soon", "body": f"Thanks {w.at('bob')}", "publish": False}
    pid = _ok(w.api("carol").post("/api/v1/posts", json=body), 201)["id"]
    edit = {"body": f"Thanks {w.at('anna')}"}
    _ok(w.api("carol").patch(f"/api/v1/posts/{pid}", json=edit))
    w.start()
    _ok(w.api("carol").post(f"/api/v1/posts/{pid}/publish"))
    # Bob is not mentioned in what was published.
    common = {"process": "general", "root": pid}
    return [
        event(
            kinds.POST_PUBLISH, w.carol, "post", pid, **common, kind="article", is_question=False
        ),
        event(kinds.MENTION, w.carol, "post", pid, owner=w.anna, **common, source="post"),
    ]


def _edit_published_post_adding_a_mention(w: World) -> list[dict[str, Any]]:
    pid = w.post
    body = {"body": f"Why does #widgets jam, {w.at('carol')}?", "is_question": True}
    _ok(w.api("anna").patch(f"/api/v1/posts/{pid}", json=body))
    common = {"group": w.group, "process": PRD, "root": pid}
    return [
        event(kinds.POST_EDIT, w.anna, "post", pid, **common, fields=["body"]),
        event(kinds.MENTION, w.anna, "post", pid, owner=w.carol, **common, source="post"),
    ]


def _delete_post_by_group_owner(w: World) -> list[dict[str, Any]]:
    pid = _ok(w.api("bob").post("/api/v1/posts", json={"body": "x", "group_id": w.group}), 201)[
        "id"
    ]
    w.start()
    _ok(w.api("anna").delete(f"/api/v1/posts/{pid}"), 204)
    return [
        event(
            kinds.POST_DELETE,
            w.anna,
            "post",
            pid,
            owner=w.bob,
            group=w.group,
            process=PRD,
            root=pid,
        )
    ]


def _comment_on_question(w: World) -> list[dict[str, Any]]:
    created = w.api("carol").post(f"/api/v1/posts/{w.post}/comments", json={"body": "Heat."})
    cid = _ok(created, 201)["id"]
    return [
        event(
            kinds.COMMENT_CREATE,
            w.carol,
            "comment",
            cid,
            owner=w.anna,
            group=w.group,
            process=PRD,
            root=w.post,
            is_reply=False,
            on_question=True,
        )
    ]


def _reply_to_a_comment(w: World) -> list[dict[str, Any]]:
    body = {"body": "Not dust.", "parent_id": w.comment}
    cid = _ok(w.api("carol").post(f"/api/v1/posts/{w.post}/comments", json=body), 201)["id"]
    # The reply answers the comment's author, not the post's.
    return [
        event(
            kinds.COMMENT_CREATE,
            w.carol,
            "comment",
            cid,
            owner=w.bob,
            group=w.group,
            process=PRD,
            root=w.post,
            is_reply=True,
            on_question=True,
        )
    ]


def _comment_on_a_plain_post_with_a_mention(w: World) -> list[dict[str, Any]]:
    pid = _ok(w.api("eve").post("/api/v1/posts", json={"body": "Lunch?"}), 201)["id"]
    w.start()
    body = {"body": f"Yes, ask {w.at('anna')}"}
    cid = _ok(w.api("carol").post(f"/api/v1/posts/{pid}/comments", json=body), 201)["id"]
    common = {"process": "general", "root": pid}
    return [
        event(
            kinds.COMMENT_CREATE,
            w.carol,
            "comment",
            cid,
            owner=w.eve,
            **common,
            is_reply=False,
            on_question=False,
        ),
        event(kinds.MENTION, w.carol, "comment", cid, owner=w.anna, **common, source="comment"),
    ]


def _edit_comment_adding_a_mention(w: World) -> list[dict[str, Any]]:
    _ok(
        w.api("bob").patch(
            f"/api/v1/comments/{w.comment}", json={"body": f"Dust, says {w.at('carol')}."}
        )
    )
    common = {"group": w.group, "process": PRD, "root": w.post}
    return [
        event(kinds.COMMENT_EDIT, w.bob, "comment", w.comment, **common),
        event(
            kinds.MENTION, w.bob, "comment", w.comment, owner=w.carol, **common, source="comment"
        ),
    ]


def _delete_own_comment(w: World) -> list[dict[str, Any]]:
    _ok(w.api("bob").delete(f"/api/v1/comments/{w.comment}"), 204)
    return [
        event(
            kinds.COMMENT_DELETE,
            w.bob,
            "comment",
            w.comment,
            owner=w.bob,
            group=w.group,
            process=PRD,
            root=w.post,
        )
    ]


def _group_owner_deletes_a_comment(w: World) -> list[dict[str, Any]]:
    _ok(w.api("anna").delete(f"/api/v1/comments/{w.comment}"), 204)
    return [
        event(
            kinds.COMMENT_DELETE,
            w.anna,
            "comment",
            w.comment,
            owner=w.bob,
            group=w.group,
            process=PRD,
            root=w.post,
        )
    ]


def _react(w: World, who: str, kind: str) -> None:
    _ok(w.api(who).put(f"/api/v1/posts/{w.post}/reaction", json={"kind": kind}), 204)


def _reaction_event(w: World, kind: kinds.UsageKind, reaction: str) -> dict[str, Any]:
    return event(
        kind,
        w.carol,
        "post",
        w.post,
        owner=w.anna,
        group=w.group,
        process=PRD,
        root=w.post,
        reaction=reaction,
        target="post",
    )


def _react_to_post(w: World) -> list[dict[str, Any]]:
    _react(w, "carol", "insightful")
    return [_reaction_event(w, kinds.REACTION_ADD, "insightful")]


def _change_reaction(w: World) -> list[dict[str, Any]]:
    _react(w, "carol", "like")
    w.start()
    _react(w, "carol", "celebrate")
    return [_reaction_event(w, kinds.REACTION_CHANGE, "celebrate")]


def _same_reaction_again(w: World) -> list[dict[str, Any]]:
    _react(w, "carol", "like")
    w.start()
    _react(w, "carol", "like")
    return []


def _take_back_reaction(w: World) -> list[dict[str, Any]]:
    _react(w, "carol", "love")
    w.start()
    _ok(w.api("carol").delete(f"/api/v1/posts/{w.post}/reaction"), 204)
    _ok(w.api("carol").delete(f"/api/v1/posts/{w.post}/reaction"), 204)  # nothing to take back
    return [_reaction_event(w, kinds.REACTION_REMOVE, "love")]


def _react_to_comment(w: World) -> list[dict[str, Any]]:
    response = w.api("anna").put(f"/api/v1/comments/{w.comment}/reaction", json={"kind": "support"})
    _ok(response, 204)
    return [
        event(
            kinds.REACTION_ADD,
            w.anna,
            "comment",
            w.comment,
            owner=w.bob,
            group=w.group,
            process=PRD,
            root=w.post,
            reaction="support",
            target="comment",
        )
    ]


def _accept_answer(w: World) -> list[dict[str, Any]]:
    _ok(w.api("anna").put(f"/api/v1/posts/{w.post}/answer", json={"comment_id": w.comment}))
    _ok(w.api("anna").put(f"/api/v1/posts/{w.post}/answer", json={"comment_id": w.comment}))
    return [
        event(
            kinds.ANSWER_ACCEPT,
            w.anna,
            "comment",
            w.comment,
            owner=w.bob,
            group=w.group,
            process=PRD,
            root=w.post,
        )
    ]


def _follow_person(w: World) -> list[dict[str, Any]]:
    _ok(w.api("carol").put(f"/api/v1/people/{w.anna.id}/follow"), 204)
    _ok(w.api("carol").put(f"/api/v1/people/{w.anna.id}/follow"), 204)  # already
    return [event(kinds.FOLLOW, w.carol, "user", w.anna.id, owner=w.anna, target="user")]


def _follow_group(w: World) -> list[dict[str, Any]]:
    _ok(w.api("carol").put(f"/api/v1/groups/{w.group}/follow"), 204)
    return [event(kinds.FOLLOW, w.carol, "group", w.group, group=w.group, target="group")]


def _follow_hashtag(w: World) -> list[dict[str, Any]]:
    _ok(w.api("carol").put("/api/v1/hashtags/Widgets/follow"), 204)
    return [event(kinds.FOLLOW, w.carol, "hashtag", w.hashtag, target="hashtag")]


def _unfollow(w: World) -> list[dict[str, Any]]:
    _ok(w.api("carol").put(f"/api/v1/groups/{w.group}/follow"), 204)
    _ok(w.api("carol").put("/api/v1/hashtags/widgets/follow"), 204)
    w.start()
    _ok(w.api("carol").delete(f"/api/v1/groups/{w.group}/follow"), 204)
    _ok(w.api("carol").delete("/api/v1/hashtags/widgets/follow"), 204)
    _ok(w.api("carol").delete(f"/api/v1/people/{w.anna.id}/follow"), 204)  # never followed
    return [
        event(kinds.UNFOLLOW, w.carol, "group", w.group, group=w.group, target="group"),
        event(kinds.UNFOLLOW, w.carol, "hashtag", w.hashtag, target="hashtag"),
    ]


def _pin_and_unpin(w: World) -> list[dict[str, Any]]:
    pinned = w.api("dora").post(
        f"/api/v1/posts/{w.post}/pin", json={"department_id": w.departments["PRD"]}
    )
    _ok(pinned, 201)
    _ok(w.api("dora").delete(f"/api/v1/posts/{w.post}/pin"), 204)
    _ok(w.api("dora").delete(f"/api/v1/posts/{w.post}/pin"), 204)  # nothing pinned any more
    common = {"group": w.group, "process": PRD, "root": w.post}
    return [
        event(
            kinds.ANNOUNCEMENT_PIN,
            w.dora,
            "post",
            w.post,
            **common,
            department_id=w.departments["PRD"],
        ),
        event(kinds.ANNOUNCEMENT_UNPIN, w.dora, "post", w.post, **common),
    ]


# --- group cases --------------------------------------------------------------------------------


def _group_event(kind: kinds.UsageKind, actor: User, gid: int, process: str = PRD, **kw: Any):
    return event(kind, actor, "group", gid, group=gid, process=process, **kw)


def _create_group(w: World) -> list[dict[str, Any]]:
    body = {"name": "Hiring", "process": "recruitment", "process_owner_id": w.anna.id}
    gid = _ok(w.api("carol").post("/api/v1/groups", json=body), 201)["id"]
    return [_group_event(kinds.GROUP_CREATE, w.carol, gid, "recruitment")]


def _update_group(w: World) -> list[dict[str, Any]]:
    body = {"name": "Line 3", "description": "Widgets", "process": "service"}
    _ok(w.api("anna").patch(f"/api/v1/groups/{w.group}", json=body))
    _ok(w.api("anna").patch(f"/api/v1/groups/{w.group}", json=body))  # no change, no event
    # The event carries the group's process after the change.
    return [
        _group_event(
            kinds.GROUP_UPDATE, w.anna, w.group, "service", fields=["description", "process"]
        )
    ]


def _archive_group(w: World) -> list[dict[str, Any]]:
    _ok(w.api("anna").post(f"/api/v1/groups/{w.group}/archive"))
    _ok(w.api("anna").post(f"/api/v1/groups/{w.group}/archive"))
    return [_group_event(kinds.GROUP_ARCHIVE, w.anna, w.group)]


def _join_and_leave(w: World) -> list[dict[str, Any]]:
    _ok(w.api("carol").post(f"/api/v1/groups/{w.group}/join"))
    _ok(w.api("carol").post(f"/api/v1/groups/{w.group}/leave"), 204)
    return [
        _group_event(kinds.MEMBER_JOIN, w.carol, w.group),
        _group_event(kinds.MEMBER_LEAVE, w.carol, w.group),
    ]


def _remove_member(w: World) -> list[dict[str, Any]]:
    _ok(w.api("anna").delete(f"/api/v1/groups/{w.group}/members/{w.bob.id}"), 204)
    return [_group_event(kinds.MEMBER_REMOVE, w.anna, w.group, owner=w.bob)]


def _change_role(w: World) -> list[dict[str, Any]]:
    path = f"/api/v1/groups/{w.group}/members/{w.bob.id}/role"
    _ok(w.api("anna").put(path, json={"role": "admin"}), 204)
    _ok(w.api("anna").put(path, json={"role": "admin"}), 204)  # unchanged
    return [_group_event(kinds.MEMBER_ROLE, w.anna, w.group, owner=w.bob, role="admin")]


def _request_group(w: World) -> int:
    body = {"name": "Quality", "visibility": "private", "join_policy": "request"}
    return _ok(w.api("anna").post("/api/v1/groups", json=body | {"process": "production"}), 201)[
        "id"
    ]


def _request_approve_decline(w: World) -> list[dict[str, Any]]:
    gid = _request_group(w)
    w.start()
    carol_request = _ok(w.api("carol").post(f"/api/v1/groups/{gid}/requests", json={}), 201)
    eve_request = _ok(w.api("eve").post(f"/api/v1/groups/{gid}/requests", json={}), 201)
    _ok(w.api("anna").post(f"/api/v1/groups/{gid}/requests/{carol_request['id']}/approve"))
    _ok(w.api("anna").post(f"/api/v1/groups/{gid}/requests/{eve_request['id']}/decline"))
    return [
        _group_event(kinds.REQUEST_CREATE, w.carol, gid),
        _group_event(kinds.REQUEST_CREATE, w.eve, gid),
        _group_event(kinds.REQUEST_APPROVE, w.anna, gid, owner=w.carol),
        _group_event(kinds.REQUEST_DECLINE, w.anna, gid, owner=w.eve),
    ]


def _invite_accept_decline(w: World) -> list[dict[str, Any]]:
    gid = _request_group(w)
    w.start()
    for who in ("carol", "eve"):
        body = {"user_id": w.users[who].id}
        _ok(w.api("anna").post(f"/api/v1/groups/{gid}/invitations", json=body), 201)
    _ok(w.api("carol").post(f"/api/v1/groups/{gid}/invitation/accept"))
    _ok(w.api("eve").post(f"/api/v1/groups/{gid}/invitation/decline"), 204)
    return [
        _group_event(kinds.INVITATION_CREATE, w.anna, gid, owner=w.carol),
        _group_event(kinds.INVITATION_CREATE, w.anna, gid, owner=w.eve),
        _group_event(kinds.INVITATION_ACCEPT, w.carol, gid),
        _group_event(kinds.INVITATION_DECLINE, w.eve, gid),
    ]


def _k(*names: kinds.UsageKind) -> Counter[str]:
    return Counter(kind.name for kind in names)


CASES: list[Case] = [
    (
        "publish with 2 mentions",
        _k(kinds.POST_PUBLISH, kinds.MENTION, kinds.MENTION),
        _publish_with_mentions,
    ),
    ("publish a question outside groups", _k(kinds.POST_PUBLISH), _publish_question_outside_groups),
    ("save a draft with a mention", _k(kinds.POST_DRAFT), _save_draft_with_mention),
    ("edit a draft adding a mention", _k(kinds.POST_EDIT), _edit_draft_with_mention),
    (
        "publish a draft with 2 mentions",
        _k(kinds.POST_PUBLISH, kinds.MENTION, kinds.MENTION),
        _publish_draft,
    ),
    (
        "publish a draft whose mention was edited away",
        _k(kinds.POST_PUBLISH, kinds.MENTION),
        _publish_draft_whose_mention_was_edited_away,
    ),
    (
        "edit a published post adding a mention",
        _k(kinds.POST_EDIT, kinds.MENTION),
        _edit_published_post_adding_a_mention,
    ),
    ("group owner deletes a post", _k(kinds.POST_DELETE), _delete_post_by_group_owner),
    ("comment on a question", _k(kinds.COMMENT_CREATE), _comment_on_question),
    ("reply to a comment", _k(kinds.COMMENT_CREATE), _reply_to_a_comment),
    (
        "comment with a mention",
        _k(kinds.COMMENT_CREATE, kinds.MENTION),
        _comment_on_a_plain_post_with_a_mention,
    ),
    (
        "edit a comment adding a mention",
        _k(kinds.COMMENT_EDIT, kinds.MENTION),
        _edit_comment_adding_a_mention,
    ),
    ("delete own comment", _k(kinds.COMMENT_DELETE), _delete_own_comment),
    ("group owner deletes a comment", _k(kinds.COMMENT_DELETE), _group_owner_deletes_a_comment),
    ("react to a post", _k(kinds.REACTION_ADD), _react_to_post),
    ("change a reaction", _k(kinds.REACTION_CHANGE), _change_reaction),
    ("the same reaction again", _k(), _same_reaction_again),
    ("take back a reaction", _k(kinds.REACTION_REMOVE), _take_back_reaction),
    ("react to a comment", _k(kinds.REACTION_ADD), _react_to_comment),
    ("accept an answer", _k(kinds.ANSWER_ACCEPT), _accept_answer),
    ("follow a person", _k(kinds.FOLLOW), _follow_person),
    ("follow a group", _k(kinds.FOLLOW), _follow_group),
    ("follow a hashtag", _k(kinds.FOLLOW), _follow_hashtag),
    ("unfollow", _k(kinds.UNFOLLOW, kinds.UNFOLLOW), _unfollow),
    ("pin and unpin", _k(kinds.ANNOUNCEMENT_PIN, kinds.ANNOUNCEMENT_UNPIN), _pin_and_unpin),
    ("create a group", _k(kinds.GROUP_CREATE), _create_group),
    ("update a group", _k(kinds.GROUP_UPDATE), _update_group),
    ("archive a group", _k(kinds.GROUP_ARCHIVE), _archive_group),
    ("join and leave", _k(kinds.MEMBER_JOIN, kinds.MEMBER_LEAVE), _join_and_leave),
    ("remove a member", _k(kinds.MEMBER_REMOVE), _remove_member),
    ("change a role", _k(kinds.MEMBER_ROLE), _change_role),
    (
        "requests approved and declined",
        _k(
            kinds.REQUEST_CREATE, kinds.REQUEST_CREATE, kinds.REQUEST_APPROVE, kinds.REQUEST_DECLINE
        ),
        _request_approve_decline,
    ),
    (
        "invitations accepted and declined",
        _k(
            kinds.INVITATION_CREATE,
            kinds.INVITATION_CREATE,
            kinds.INVITATION_ACCEPT,
            kinds.INVITATION_DECLINE,
        ),
        _invite_accept_decline,
    ),
]


def _key(e: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(str(e[name]) for name in FIELDS)


def test_each_action_writes_exactly_its_events(app, clock, subtests):
    # One database for all cases (an app per case would cost more than the cases), but each
    # case acts in a world of its own.
    for n, (name, expected_kinds, action) in enumerate(CASES):
        with subtests.test(name):
            world = build_world(app, n)
            world.start()
            expected = action(world)
            added = world.added()
            assert Counter(e.kind for e in added) == expected_kinds, name
            assert sorted(map(_row, added), key=_key) == sorted(expected, key=_key)
            for e in added:
                assert e.occurred_at == NOW


def test_the_cases_cover_every_social_and_group_kind():
    declared = {k.name for k in kinds.all_kinds() if k.name.startswith(("social:", "groups:"))}
    covered = {name for _, expected, _ in CASES for name in expected}
    assert covered == declared


def test_interactions_and_contributions_are_declared_for_telemetry():
    interactions = {k.name for k in kinds.all_kinds() if k.interaction}
    contributions = {k.name for k in kinds.all_kinds() if k.contribution}
    assert {
        "social:post:publish",
        "social:comment:create",
        "social:reaction:add",
        "social:mention:create",
    } <= interactions
    assert {"social:post:publish", "social:comment:create"} <= contributions
    assert "social:post:save_draft" not in interactions | contributions


# --- failures write nothing ---------------------------------------------------------------------


def _count() -> int:
    fresh()
    return db.session.scalar(select(func.count()).select_from(UsageEvent)) or 0


def test_refused_requests_leave_no_event(world):
    reply = _ok(
        world.api("carol").post(
            f"/api/v1/posts/{world.post}/comments", json={"body": "r", "parent_id": world.comment}
        ),
        201,
    )
    request_group = _request_group(world)
    _ok(world.api("carol").post(f"/api/v1/groups/{request_group}/requests", json={}), 201)
    archived = _ok(world.api("carol").post("/api/v1/groups", json={"name": "Old"}), 201)["id"]
    archived_post = _ok(
        world.api("carol").post("/api/v1/posts", json={"body": "x", "group_id": archived}), 201
    )["id"]
    _ok(world.api("carol").post(f"/api/v1/groups/{archived}/archive"))
    bob = world.at("bob")
    refused = [
        ("carol", "POST", "/api/v1/posts", {"kind": "article", "body": f"{bob}, no title"}, 422),
        ("carol", "POST", "/api/v1/posts", {"body": bob, "group_id": world.group}, 403),
        ("carol", "POST", "/api/v1/posts", {"body": bob, "publish": False}, 422),
        (
            "carol",
            "POST",
            f"/api/v1/posts/{world.post}/comments",
            {"body": bob, "parent_id": reply["id"]},
            422,
        ),
        ("carol", "POST", f"/api/v1/posts/{world.post}/comments", {"body": " "}, 422),
        ("carol", "POST", f"/api/v1/posts/{archived_post}/comments", {"body": bob}, 403),
        ("carol", "PUT", f"/api/v1/posts/{archived_post}/reaction", {"kind": "like"}, 403),
        ("carol", "PUT", f"/api/v1/posts/{world.post}/reaction", {"kind": "meh"}, 422),
        ("carol", "PATCH", f"/api/v1/posts/{world.post}", {"body": f"{bob} mine now"}, 403),
        ("anna", "PATCH", f"/api/v1/posts/{world.post}", {"body": " "}, 422),
        ("bob", "PUT", f"/api/v1/posts/{world.post}/answer", {"comment_id": world.comment}, 403),
        ("anna", "PUT", f"/api/v1/posts/{world.post}/answer", {"comment_id": 999_999}, 422),
        (
            "dora",
            "POST",
            f"/api/v1/posts/{world.post}/pin",
            {"pinned_until": "2000-01-01T00:00:00+00:00"},
            422,
        ),
        ("carol", "POST", f"/api/v1/posts/{world.post}/pin", {}, 403),
        ("carol", "DELETE", f"/api/v1/posts/{world.post}", None, 403),
        ("carol", "POST", f"/api/v1/groups/{request_group}/requests", {}, 409),
        ("anna", "POST", f"/api/v1/groups/{world.group}/leave", None, 409),
        ("bob", "DELETE", f"/api/v1/groups/{world.group}/members/{world.anna.id}", None, 403),
        ("anna", "DELETE", f"/api/v1/groups/{world.group}/members/{world.anna.id}", None, 409),
        (
            "anna",
            "PUT",
            f"/api/v1/groups/{world.group}/members/{world.anna.id}/role",
            {"role": "member"},
            409,
        ),
        ("carol", "POST", f"/api/v1/groups/{world.group}/invitation/accept", None, 404),
        ("carol", "POST", "/api/v1/groups", {"name": "x", "process_owner_id": 999_999}, 422),
        ("carol", "PUT", "/api/v1/hashtags/nothing-like-it/follow", None, 404),
    ]
    before = _count()
    for who, method, path, body, status in refused:
        kwargs = {"json": body} if body is not None else {}
        response = world.api(who).request(method, path, **kwargs)
        assert response.status_code == status, (who, method, path, response.get_json())
    assert _count() == before


def test_an_expired_invitation_leaves_no_event(world):
    with frozen_at(T0) as clock:
        gid = _request_group(world)
        body = {"user_id": world.carol.id, "expires_in_days": 1}
        _ok(world.api("anna").post(f"/api/v1/groups/{gid}/invitations", json=body), 201)
        clock.set(T0 + timedelta(days=1, seconds=1))
        before = _count()
        assert world.api("carol").post(f"/api/v1/groups/{gid}/invitation/accept").status_code == 404
        assert (
            world.api("carol").post(f"/api/v1/groups/{gid}/invitation/decline").status_code == 404
        )
        assert _count() == before


def test_events_are_written_in_the_action_s_transaction(world):
    """An action whose transaction rolls back leaves neither its rows nor its events."""
    fresh()
    before = (_count(), db.session.scalar(select(func.count()).select_from(Post)))
    anna = db.session.get(User, world.anna.id)
    group = db.session.get(Group, world.group)
    post = social_actions.do_create_post(
        anna,
        {"kind": "post", "body": f"{world.at('bob')} {world.at('carol')} #x", "is_question": True},
        group,
    )
    social_actions.do_create_comment(anna, post, world.at("bob"), None)
    group_actions.do_archive_group(anna, group)
    db.session.flush()
    assert db.session.scalar(select(func.count()).select_from(UsageEvent)) == before[0] + 6
    db.session.rollback()
    assert (_count(), db.session.scalar(select(func.count()).select_from(Post))) == before
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 1
