"""Groups: creation, joining, requests, invitations, leaving, removal, roles, archiving and the
business process a group serves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from esn.accounts.actions import do_deactivate_user
from esn.accounts.models import User
from esn.clock import frozen_at
from esn.extensions import db
from esn.groups.models import Group, GroupMember, Invitation, JoinRequest
from esn.usage.models import UsageEvent
from tests.conftest import ApiClient, fresh, make_user

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _person(app: Flask, email: str, **fields: Any) -> tuple[User, ApiClient]:
    user = make_user(email, **fields)
    client = ApiClient(app)
    assert client.sign_in(email).status_code == 200
    return user, client


def _group(client: ApiClient, name: str = "Widgets", **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/groups", json={"name": name, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _members(client: ApiClient, group_id: int) -> dict[int, str]:
    response = client.get(f"/api/v1/groups/{group_id}/members")
    assert response.status_code == 200, response.get_json()
    return {m["user_id"]: m["role"] for m in response.get_json()["items"]}


def _rows() -> tuple[int, ...]:
    fresh()
    return tuple(
        db.session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Group, GroupMember, JoinRequest, Invitation, UsageEvent)
    )


@pytest.fixture
def owner(app: Flask) -> tuple[User, ApiClient]:
    return _person(app, "owner@example.org", display_name="Olga Owner")


@pytest.fixture
def member(app: Flask) -> tuple[User, ApiClient]:
    return _person(app, "member@example.org", display_name="Max Member")


# --- creation -----------------------------------------------------------------------------------


def test_the_creator_is_the_owner(app, owner):
    owner_user, o = owner
    group = _group(o, "Widgets", description="All about widgets", process="production")
    assert group["my_role"] == "owner" and group["member_count"] == 1
    assert (group["visibility"], group["join_policy"], group["process"]) == (
        "public",
        "open",
        "production",
    )
    assert group["archived"] is False and group["process_owner_id"] is None
    assert _members(o, group["id"]) == {owner_user.id: "owner"}
    mine = o.get("/api/v1/groups", query_string={"mine": "true"}).get_json()["items"]
    assert [g["id"] for g in mine] == [group["id"]]


def test_bad_groups_are_refused_and_nothing_is_written(app, owner):
    _, o = owner
    before = _rows()
    for body in [
        {},
        {"name": ""},
        {"name": "x" * 201},
        {"name": "two\nlines"},
        {"name": "ok", "visibility": "hidden"},
        {"name": "ok", "join_policy": "lottery"},
        {"name": "ok", "process": "sales"},
        {"name": "ok", "process_owner_id": 999_999},
        {"name": "ok", "description": "x" * 5001},
    ]:
        response = o.post("/api/v1/groups", json=body)
        assert response.status_code == 422, (body, response.get_json())
    assert _rows() == before


def test_external_people_cannot_create_groups(app):
    _, guest = _person(app, "guest@partner.example", is_external=True)
    assert guest.post("/api/v1/groups", json={"name": "Ours"}).status_code == 403


# --- process and process owner ------------------------------------------------------------------


def test_a_group_carries_a_process_and_a_process_owner(app, owner, member, admin):
    _, o = owner
    member_user, m = member
    outsider = make_user("outsider@example.org")
    group = _group(o, "Recruiting", process="recruitment", process_owner_id=outsider.id)
    # The process owner need not be a member.
    assert group["process_owner_id"] == outsider.id and group["process"] == "recruitment"
    # Posts in the group take its process unless they name one.
    post = o.post("/api/v1/posts", json={"body": "Open role", "group_id": group["id"]})
    assert post.get_json()["process"] == "recruitment"
    other = o.post(
        "/api/v1/posts", json={"body": "x", "group_id": group["id"], "process": "marketing"}
    )
    assert other.get_json()["process"] == "marketing"
    assert o.post("/api/v1/posts", json={"body": "loose"}).get_json()["process"] == "general"

    changed = o.patch(
        f"/api/v1/groups/{group['id']}",
        json={"process": "service", "process_owner_id": member_user.id},
    )
    assert changed.status_code == 200
    assert (changed.get_json()["process"], changed.get_json()["process_owner_id"]) == (
        "service",
        member_user.id,
    )
    cleared = o.patch(f"/api/v1/groups/{group['id']}", json={"process_owner_id": None})
    assert cleared.status_code == 200 and cleared.get_json()["process_owner_id"] is None
    # A deactivated person cannot become process owner; nor can a non-manager change it.
    db.session.rollback()
    do_deactivate_user(admin, db.session.get(User, outsider.id))
    db.session.commit()
    refused = o.patch(f"/api/v1/groups/{group['id']}", json={"process_owner_id": outsider.id})
    assert refused.status_code == 422
    assert o.patch(f"/api/v1/groups/{group['id']}", json={"process": None}).status_code == 422
    assert m.post(f"/api/v1/groups/{group['id']}/join").status_code == 200
    assert m.patch(f"/api/v1/groups/{group['id']}", json={"process": "general"}).status_code == 403
    by_process = o.get("/api/v1/groups", query_string={"process": "service"}).get_json()["items"]
    assert [g["id"] for g in by_process] == [group["id"]]


# --- joining ------------------------------------------------------------------------------------


def test_open_groups_are_joined_at_once(app, owner, member):
    _, o = owner
    member_user, m = member
    group = _group(o)
    joined = m.post(f"/api/v1/groups/{group['id']}/join")
    assert joined.status_code == 200
    assert joined.get_json()["my_role"] == "member" and joined.get_json()["member_count"] == 2
    assert m.post(f"/api/v1/groups/{group['id']}/join").status_code == 409
    # Joining is for open groups only.
    on_request = _group(o, "Ask first", join_policy="request")
    invite_only = _group(o, "Invite only", join_policy="invite")
    assert m.post(f"/api/v1/groups/{on_request['id']}/join").status_code == 403
    assert m.post(f"/api/v1/groups/{invite_only['id']}/join").status_code == 403
    assert m.post(f"/api/v1/groups/{invite_only['id']}/requests", json={}).status_code == 403
    assert m.post(f"/api/v1/groups/{group['id']}/requests", json={}).status_code == 403
    assert _members(o, group["id"])[member_user.id] == "member"


def test_join_requests_are_decided_by_managers(app, owner, member):
    _, o = owner
    member_user, m = member
    plain_user, plain = _person(app, "plain@example.org")
    admin_user, group_admin = _person(app, "gadmin@example.org")
    group = _group(o, "Ask first", visibility="private", join_policy="request")
    gid = group["id"]
    first = group_admin.post(f"/api/v1/groups/{gid}/requests", json={}).get_json()
    assert o.post(f"/api/v1/groups/{gid}/requests/{first['id']}/approve").status_code == 200
    promoted = o.put(f"/api/v1/groups/{gid}/members/{admin_user.id}/role", json={"role": "admin"})
    assert promoted.status_code == 204
    assert (
        plain.post(f"/api/v1/groups/{gid}/requests", json={"message": "me too"}).status_code == 201
    )

    request = m.post(f"/api/v1/groups/{gid}/requests", json={"message": "Please"})
    assert request.status_code == 201
    assert (request.get_json()["status"], request.get_json()["message"]) == ("pending", "Please")
    rid = request.get_json()["id"]
    before = _rows()
    assert m.post(f"/api/v1/groups/{gid}/requests", json={"message": "again"}).status_code == 409
    assert _rows() == before
    seen = m.get(f"/api/v1/groups/{gid}").get_json()
    assert (seen["my_request"], seen["my_role"], seen["member_count"]) == ("pending", None, None)
    # A requester sees the group, not its content.
    assert m.get(f"/api/v1/groups/{gid}/members").status_code == 403

    # Only owners and admins see and decide requests.
    assert m.get(f"/api/v1/groups/{gid}/requests").status_code == 403
    pending = group_admin.get(f"/api/v1/groups/{gid}/requests").get_json()["items"]
    assert {r["user_id"] for r in pending} == {member_user.id, plain_user.id}
    assert m.post(f"/api/v1/groups/{gid}/requests/{rid}/approve").status_code == 403
    approved = group_admin.post(f"/api/v1/groups/{gid}/requests/{rid}/approve")
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    assert group_admin.post(f"/api/v1/groups/{gid}/requests/{rid}/decline").status_code == 409
    assert _members(m, gid)[member_user.id] == "member"

    # The other request is declined: no membership; asking again is allowed afterwards.
    other = next(r["id"] for r in pending if r["user_id"] == plain_user.id)
    declined = o.post(f"/api/v1/groups/{gid}/requests/{other}/decline")
    assert declined.status_code == 200 and declined.get_json()["status"] == "declined"
    assert plain_user.id not in _members(o, gid)
    assert plain.get(f"/api/v1/groups/{gid}").get_json()["my_request"] == "declined"
    again = plain.post(f"/api/v1/groups/{gid}/requests", json={})
    assert again.status_code == 201 and again.get_json()["status"] == "pending"
    # A request id of another group is not found here.
    elsewhere = _group(o, "Elsewhere", join_policy="request")
    wrong = o.post(f"/api/v1/groups/{elsewhere['id']}/requests/{again.get_json()['id']}/approve")
    assert wrong.status_code == 404


# --- invitations --------------------------------------------------------------------------------


def test_invitations_are_bound_to_the_group_and_the_person(app, owner, member):
    _, o = owner
    member_user, m = member
    _, stranger = _person(app, "stranger@example.org")
    secret = _group(o, "Secret", visibility="secret", join_policy="invite")
    other = _group(o, "Other secret", visibility="secret", join_policy="invite")
    invited = o.post(f"/api/v1/groups/{secret['id']}/invitations", json={"user_id": member_user.id})
    assert invited.status_code == 201
    assert invited.get_json()["invitee_id"] == member_user.id
    assert invited.get_json()["status"] == "pending"

    mine = m.get("/api/v1/me/invitations").get_json()["items"]
    assert [(i["group_id"], i["group_name"]) for i in mine] == [(secret["id"], "Secret")]
    assert stranger.get("/api/v1/me/invitations").get_json()["items"] == []
    # Not for another person, not for another group.
    assert stranger.post(f"/api/v1/groups/{secret['id']}/invitation/accept").status_code == 404
    assert m.post(f"/api/v1/groups/{other['id']}/invitation/accept").status_code == 404
    accepted = m.post(f"/api/v1/groups/{secret['id']}/invitation/accept")
    assert accepted.status_code == 200 and accepted.get_json()["my_role"] == "member"
    assert m.post(f"/api/v1/groups/{secret['id']}/invitation/accept").status_code == 404
    assert m.get("/api/v1/me/invitations").get_json()["items"] == []
    # Inviting a member, a missing or inactive person is refused; members cannot invite.
    assert (
        o.post(f"/api/v1/groups/{secret['id']}/invitations", json={"user_id": member_user.id})
    ).status_code == 409
    assert (
        o.post(f"/api/v1/groups/{secret['id']}/invitations", json={"user_id": 999_999})
    ).status_code == 422
    stranger_id = db.session.scalar(select(User.id).where(User.email == "stranger@example.org"))
    assert (
        m.post(f"/api/v1/groups/{secret['id']}/invitations", json={"user_id": stranger_id})
    ).status_code == 403


def test_an_invitation_can_be_declined(app, owner, member):
    _, o = owner
    member_user, m = member
    group = _group(o, "Invite only", join_policy="invite")
    assert (
        o.post(f"/api/v1/groups/{group['id']}/invitations", json={"user_id": member_user.id})
    ).status_code == 201
    assert m.get(f"/api/v1/groups/{group['id']}").get_json()["invited"] is True
    assert m.post(f"/api/v1/groups/{group['id']}/invitation/decline").status_code == 204
    assert m.get(f"/api/v1/groups/{group['id']}").get_json()["invited"] is False
    assert m.post(f"/api/v1/groups/{group['id']}/invitation/accept").status_code == 404
    assert member_user.id not in _members(o, group["id"])


def test_an_expired_invitation_cannot_be_accepted(app, owner, member):
    _, o = owner
    member_user, m = member
    with frozen_at(T0) as clock:
        secret = _group(o, "Secret", visibility="secret", join_policy="invite")
        invited = o.post(
            f"/api/v1/groups/{secret['id']}/invitations",
            json={"user_id": member_user.id, "expires_in_days": 3},
        )
        assert invited.status_code == 201
        expires = datetime.fromisoformat(invited.get_json()["expires_at"])
        assert expires == T0 + timedelta(days=3)

        clock.set(expires - timedelta(seconds=1))
        assert m.get(f"/api/v1/groups/{secret['id']}").status_code == 200
        clock.set(expires)
        # Expired: the secret group is gone again for them, and so is the invitation.
        assert m.get(f"/api/v1/groups/{secret['id']}").status_code == 404
        assert m.get("/api/v1/me/invitations").get_json()["items"] == []
        before = _rows()
        assert m.post(f"/api/v1/groups/{secret['id']}/invitation/accept").status_code == 404
        assert _rows() == before
        assert member_user.id not in _members(o, secret["id"])

        # A new invitation starts a new term.
        assert (
            o.post(f"/api/v1/groups/{secret['id']}/invitations", json={"user_id": member_user.id})
        ).status_code == 201
        assert m.post(f"/api/v1/groups/{secret['id']}/invitation/accept").status_code == 200

    for days in (0, 91):
        response = o.post(
            f"/api/v1/groups/{secret['id']}/invitations",
            json={"user_id": member_user.id, "expires_in_days": days},
        )
        assert response.status_code == 422


def test_an_expired_invitation_to_a_public_group_cannot_be_accepted(app, owner, member):
    _, o = owner
    member_user, m = member
    with frozen_at(T0) as clock:
        group = _group(o, "Invite only", join_policy="invite")
        assert (
            o.post(
                f"/api/v1/groups/{group['id']}/invitations",
                json={"user_id": member_user.id, "expires_in_days": 1},
            )
        ).status_code == 201
        clock.set(T0 + timedelta(days=2))
        assert m.get(f"/api/v1/groups/{group['id']}").get_json()["invited"] is False
        assert m.post(f"/api/v1/groups/{group['id']}/invitation/accept").status_code == 404
        assert m.post(f"/api/v1/groups/{group['id']}/invitation/decline").status_code == 404
    assert member_user.id not in _members(o, group["id"])


# --- leaving, removal, roles --------------------------------------------------------------------


def test_leaving_and_the_last_owner(app, owner, member):
    owner_user, o = owner
    member_user, m = member
    group = _group(o)
    gid = group["id"]
    assert m.post(f"/api/v1/groups/{gid}/leave").status_code == 409  # not a member
    assert m.post(f"/api/v1/groups/{gid}/join").status_code == 200
    assert m.post(f"/api/v1/groups/{gid}/leave").status_code == 204
    assert member_user.id not in _members(o, gid)
    before = _rows()
    assert o.post(f"/api/v1/groups/{gid}/leave").status_code == 409  # the last owner
    assert _rows() == before
    assert _members(o, gid) == {owner_user.id: "owner"}
    # With a second owner, the first may go.
    assert m.post(f"/api/v1/groups/{gid}/join").status_code == 200
    assert (
        o.put(
            f"/api/v1/groups/{gid}/members/{member_user.id}/role", json={"role": "owner"}
        ).status_code
        == 204
    )
    assert o.post(f"/api/v1/groups/{gid}/leave").status_code == 204
    assert _members(m, gid) == {member_user.id: "owner"}


def test_removal_rules(app, owner, member):
    owner_user, o = owner
    member_user, m = member
    admin_user, a = _person(app, "gadmin@example.org")
    other_admin, a2 = _person(app, "gadmin2@example.org")
    co_owner, c = _person(app, "coowner@example.org")
    group = _group(o)
    gid = group["id"]
    for client in (m, a, a2, c):
        assert client.post(f"/api/v1/groups/{gid}/join").status_code == 200
    for user, role in ((admin_user, "admin"), (other_admin, "admin"), (co_owner, "owner")):
        response = o.put(f"/api/v1/groups/{gid}/members/{user.id}/role", json={"role": role})
        assert response.status_code == 204

    # Plain members remove nobody.
    assert m.delete(f"/api/v1/groups/{gid}/members/{other_admin.id}").status_code == 403
    # Owners cannot be removed, by anyone.
    assert a.delete(f"/api/v1/groups/{gid}/members/{owner_user.id}").status_code == 409
    assert c.delete(f"/api/v1/groups/{gid}/members/{owner_user.id}").status_code == 409
    # Admins are removed only by owners.
    assert a.delete(f"/api/v1/groups/{gid}/members/{other_admin.id}").status_code == 409
    assert c.delete(f"/api/v1/groups/{gid}/members/{other_admin.id}").status_code == 204
    # Admins remove plain members.
    assert a.delete(f"/api/v1/groups/{gid}/members/{member_user.id}").status_code == 204
    assert a.delete(f"/api/v1/groups/{gid}/members/{member_user.id}").status_code == 404
    assert _members(o, gid) == {
        owner_user.id: "owner",
        co_owner.id: "owner",
        admin_user.id: "admin",
    }
    # The removal takes effect on the next request.
    assert m.get(f"/api/v1/groups/{gid}").get_json()["my_role"] is None
    assert m.post("/api/v1/posts", json={"body": "x", "group_id": gid}).status_code == 403


def test_roles_are_changed_by_owners_only(app, owner, member):
    owner_user, o = owner
    member_user, m = member
    admin_user, a = _person(app, "gadmin@example.org")
    group = _group(o)
    gid = group["id"]
    for client in (m, a):
        assert client.post(f"/api/v1/groups/{gid}/join").status_code == 200
    path = f"/api/v1/groups/{gid}/members"
    assert o.put(f"{path}/{admin_user.id}/role", json={"role": "admin"}).status_code == 204
    assert a.put(f"{path}/{member_user.id}/role", json={"role": "admin"}).status_code == 403
    assert m.put(f"{path}/{member_user.id}/role", json={"role": "owner"}).status_code == 403
    assert o.put(f"{path}/{member_user.id}/role", json={"role": "boss"}).status_code == 422
    assert o.put(f"{path}/999999/role", json={"role": "admin"}).status_code == 404
    # The last owner cannot step down.
    assert o.put(f"{path}/{owner_user.id}/role", json={"role": "member"}).status_code == 409
    assert o.put(f"{path}/{member_user.id}/role", json={"role": "owner"}).status_code == 204
    assert o.put(f"{path}/{owner_user.id}/role", json={"role": "member"}).status_code == 204
    assert _members(m, gid) == {
        owner_user.id: "member",
        member_user.id: "owner",
        admin_user.id: "admin",
    }
    # The former owner has lost the right at once.
    assert o.put(f"{path}/{admin_user.id}/role", json={"role": "member"}).status_code == 403


# --- archiving ----------------------------------------------------------------------------------


def test_an_archived_group_keeps_its_content_readable_but_takes_nothing_new(app, owner, member):
    _, o = owner
    member_user, m = member
    _, outsider = _person(app, "out@example.org")
    group = _group(o)
    gid = group["id"]
    assert m.post(f"/api/v1/groups/{gid}/join").status_code == 200
    post = m.post("/api/v1/posts", json={"body": "Before #archive", "group_id": gid}).get_json()
    comment = o.post(f"/api/v1/posts/{post['id']}/comments", json={"body": "c"}).get_json()

    assert m.post(f"/api/v1/groups/{gid}/archive").status_code == 403  # owners only
    archived = o.post(f"/api/v1/groups/{gid}/archive")
    assert archived.status_code == 200 and archived.get_json()["archived"] is True
    assert o.post(f"/api/v1/groups/{gid}/archive").status_code == 200  # idempotent

    # Still readable by everyone who could read it.
    for client in (o, m, outsider):
        assert client.get(f"/api/v1/posts/{post['id']}").status_code == 200
        assert [p["id"] for p in client.get(f"/api/v1/groups/{gid}/feed").get_json()["items"]] == [
            post["id"]
        ]
        assert len(client.get(f"/api/v1/posts/{post['id']}/comments").get_json()["items"]) == 1
    # Nothing new: posts, comments, reactions, edits, joins, invitations, settings.
    before = _rows()
    assert m.post("/api/v1/posts", json={"body": "after", "group_id": gid}).status_code == 403
    assert m.post(f"/api/v1/posts/{post['id']}/comments", json={"body": "x"}).status_code == 403
    assert m.put(f"/api/v1/posts/{post['id']}/reaction", json={}).status_code == 403
    assert m.put(f"/api/v1/comments/{comment['id']}/reaction", json={}).status_code == 403
    assert m.patch(f"/api/v1/posts/{post['id']}", json={"body": "edited"}).status_code == 403
    assert outsider.post(f"/api/v1/groups/{gid}/join").status_code == 403
    assert o.patch(f"/api/v1/groups/{gid}", json={"name": "Renamed"}).status_code == 403
    outsider_id = db.session.scalar(select(User.id).where(User.email == "out@example.org"))
    invite = o.post(f"/api/v1/groups/{gid}/invitations", json={"user_id": outsider_id})
    assert invite.status_code == 403
    assert _rows() == before
    assert member_user.id in _members(o, gid)
