"""HTTP boundary of groups."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import select

from esn import access
from esn.accounts.auth import require_user
from esn.accounts.models import User
from esn.api.problems import conflict, reject_nulls
from esn.api.spec import operation
from esn.directory.queries import access_profile
from esn.extensions import db
from esn.groups import actions, queries
from esn.groups.models import Group, GroupMember, Invitation, JoinRequest, RequestStatus
from esn.groups.schemas import (
    GroupCreate,
    GroupOut,
    GroupPage,
    GroupQuery,
    GroupUpdate,
    InvitationCreate,
    InvitationList,
    InvitationOut,
    JoinRequestCreate,
    JoinRequestList,
    JoinRequestOut,
    MemberOut,
    MemberPage,
    PageQuery,
    RoleChange,
)

bp = Blueprint("groups", __name__, url_prefix="/api/v1")
TAGS = ["groups"]


def _out(group_id: int) -> GroupOut:
    user = require_user()
    group = queries.access_group(user, group_id)
    return queries.groups_out(user, [group])[0]


@operation(
    bp,
    "/groups",
    "GET",
    summary="List the groups you can see",
    tags=TAGS,
    query=GroupQuery,
    response=GroupPage,
)
def list_groups(query: GroupQuery) -> GroupPage:
    """Secret groups appear only to their members and invitees."""
    items, cursor = queries.list_groups(require_user(), query)
    return GroupPage(items=items, next_cursor=cursor)


@operation(
    bp,
    "/groups",
    "POST",
    summary="Create a group",
    tags=TAGS,
    body=GroupCreate,
    response=GroupOut,
    status=201,
)
def create_group(body: GroupCreate) -> GroupOut:
    """You become its owner."""
    user = require_user()
    access.require(user, "group:create")
    group = actions.check_create_group(user, body.model_dump())
    db.session.commit()
    return _out(group.id)


@operation(
    bp, "/groups/<int:group_id>", "GET", summary="Read a group", tags=TAGS, response=GroupOut
)
def get_group(group_id: int) -> GroupOut:
    return _out(group_id)


@operation(
    bp,
    "/groups/<int:group_id>",
    "PATCH",
    summary="Change a group's settings",
    tags=TAGS,
    body=GroupUpdate,
    response=GroupOut,
)
def update_group(group_id: int, body: GroupUpdate) -> GroupOut:
    user = require_user()
    group = queries.access_group(user, group_id)
    access.require(user, "group:manage", group)
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes, nullable=frozenset({"process_owner_id"}))
    actions.check_update_group(user, group, changes)
    db.session.commit()
    return _out(group_id)


@operation(
    bp,
    "/groups/<int:group_id>/archive",
    "POST",
    summary="Archive a group",
    tags=TAGS,
    response=GroupOut,
)
def archive_group(group_id: int) -> GroupOut:
    """Owners only. The content stays readable; nothing new can be posted."""
    user = require_user()
    group = queries.access_group(user, group_id)
    access.require(user, "group:archive", group)
    actions.do_archive_group(user, group)
    db.session.commit()
    return _out(group_id)


@operation(
    bp,
    "/groups/<int:group_id>/members",
    "GET",
    summary="List a group's members",
    tags=TAGS,
    query=PageQuery,
    response=MemberPage,
)
def list_members(group_id: int, query: PageQuery) -> MemberPage:
    user = require_user()
    group = queries.access_group(user, group_id)
    access.require(user, "group:read", group)
    rows, cursor = queries.list_members(group, query.limit, query.cursor)
    return MemberPage(
        items=[
            MemberOut(user_id=p.id, display_name=p.display_name, role=m.role, joined_at=m.joined_at)
            for m, p in rows
        ],
        next_cursor=cursor,
    )


@operation(
    bp,
    "/groups/<int:group_id>/join",
    "POST",
    summary="Join an open group",
    tags=TAGS,
    response=GroupOut,
    responses={409: "Already a member."},
)
def join_group(group_id: int) -> GroupOut:
    user = require_user()
    group = queries.access_group(user, group_id)
    if access.membership(user, group.id) is not None:
        raise conflict("You are a member already.")
    access.require(user, "group:join", group)
    actions.do_join(user, group)
    db.session.commit()
    return _out(group_id)


@operation(
    bp,
    "/groups/<int:group_id>/leave",
    "POST",
    summary="Leave a group",
    tags=TAGS,
    status=204,
    responses={409: "Not a member, or the last owner."},
)
def leave_group(group_id: int) -> None:
    user = require_user()
    group = queries.access_group(user, group_id)
    actions.check_leave(user, group)
    db.session.commit()


@operation(
    bp,
    "/groups/<int:group_id>/members/<int:user_id>",
    "DELETE",
    summary="Remove a member",
    tags=TAGS,
    status=204,
    responses={409: "Owners cannot be removed; only owners remove admins."},
)
def remove_member(group_id: int, user_id: int) -> None:
    user = require_user()
    group = queries.access_group(user, group_id)
    access.require(user, "group:manage", group)
    actions.check_remove_member(user, group, user_id)
    db.session.commit()


@operation(
    bp,
    "/groups/<int:group_id>/members/<int:user_id>/role",
    "PUT",
    summary="Make a member an owner, admin or plain member",
    tags=TAGS,
    body=RoleChange,
    status=204,
    responses={409: "The group must keep an owner."},
)
def change_role(group_id: int, user_id: int, body: RoleChange) -> None:
    user = require_user()
    group = queries.access_group(user, group_id)
    access.require(user, "group:assign_roles", group)
    actions.check_change_role(user, group, user_id, body.role)
    db.session.commit()


def _request_out(request: JoinRequest) -> JoinRequestOut:
    person = db.session.get(User, request.user_id)
    return JoinRequestOut(
        id=request.id,
        group_id=request.group_id,
        user_id=request.user_id,
        display_name=person.display_name if person else "",
        message=request.message,
        status=request.status,
        created_at=request.created_at,
    )


@operation(
    bp,
    "/groups/<int:group_id>/requests",
    "POST",
    summary="Ask to join",
    tags=TAGS,
    body=JoinRequestCreate,
    response=JoinRequestOut,
    status=201,
    responses={409: "A request is pending already."},
)
def request_to_join(group_id: int, body: JoinRequestCreate) -> JoinRequestOut:
    user = require_user()
    group = queries.access_group(user, group_id)
    access.require(user, "group:request", group)
    request = actions.check_request(user, group, body.message)
    db.session.commit()
    return _request_out(request)


@operation(
    bp,
    "/groups/<int:group_id>/requests",
    "GET",
    summary="Pending join requests",
    tags=TAGS,
    response=JoinRequestList,
)
def list_requests(group_id: int) -> JoinRequestList:
    user = require_user()
    group = queries.access_group(user, group_id)
    access.require(user, "group:manage", group)
    pending = db.session.scalars(
        select(JoinRequest)
        .where(JoinRequest.group_id == group.id, JoinRequest.status == RequestStatus.pending)
        .order_by(JoinRequest.created_at)
    )
    return JoinRequestList(items=[_request_out(r) for r in pending])


def _decide(group_id: int, request_id: int, approve: bool) -> JoinRequestOut:
    user = require_user()
    group = queries.access_group(user, group_id)
    access.require(user, "group:manage", group)
    request = actions.access_request(group, request_id)
    actions.check_decide_request(user, group, request, approve)
    db.session.commit()
    return _request_out(request)


@operation(
    bp,
    "/groups/<int:group_id>/requests/<int:request_id>/approve",
    "POST",
    summary="Approve a join request",
    tags=TAGS,
    response=JoinRequestOut,
    responses={409: "Answered already."},
)
def approve_request(group_id: int, request_id: int) -> JoinRequestOut:
    return _decide(group_id, request_id, True)


@operation(
    bp,
    "/groups/<int:group_id>/requests/<int:request_id>/decline",
    "POST",
    summary="Decline a join request",
    tags=TAGS,
    response=JoinRequestOut,
    responses={409: "Answered already."},
)
def decline_request(group_id: int, request_id: int) -> JoinRequestOut:
    return _decide(group_id, request_id, False)


def _invitation_out(invitation: Invitation, group_name: str) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        group_id=invitation.group_id,
        group_name=group_name,
        invitee_id=invitation.invitee_id,
        inviter_id=invitation.inviter_id,
        status=invitation.status,
        expires_at=invitation.expires_at,
    )


@operation(
    bp,
    "/groups/<int:group_id>/invitations",
    "POST",
    summary="Invite a person",
    tags=TAGS,
    body=InvitationCreate,
    response=InvitationOut,
    status=201,
    responses={409: "A member already."},
)
def invite(group_id: int, body: InvitationCreate) -> InvitationOut:
    """The invitation is bound to this group and this person, and expires."""
    user = require_user()
    group = queries.access_group(user, group_id)
    access.require(user, "group:manage", group)
    invitation = actions.check_invite(user, group, body.user_id, body.expires_in_days)
    db.session.commit()
    return _invitation_out(invitation, group.name)


@operation(
    bp,
    "/groups/<int:group_id>/invitation/accept",
    "POST",
    summary="Accept your invitation",
    tags=TAGS,
    response=GroupOut,
)
def accept_invitation(group_id: int) -> GroupOut:
    user = require_user()
    group = queries.access_group(user, group_id)
    access.require(user, "group:accept_invitation", group, hide=True)
    actions.check_answer_invitation(user, group, True)
    db.session.commit()
    return _out(group_id)


@operation(
    bp,
    "/groups/<int:group_id>/invitation/decline",
    "POST",
    summary="Decline your invitation",
    tags=TAGS,
    status=204,
)
def decline_invitation(group_id: int) -> None:
    user = require_user()
    group = queries.access_group(user, group_id)
    actions.check_answer_invitation(user, group, False)
    db.session.commit()


@operation(
    bp,
    "/me/invitations",
    "GET",
    summary="My pending group invitations",
    tags=TAGS,
    response=InvitationList,
)
def my_invitations() -> InvitationList:
    user = require_user()
    return InvitationList(
        items=[_invitation_out(i, g.name) for i, g in queries.pending_invitations(user)]
    )


@operation(
    bp,
    "/people/<int:user_id>/groups",
    "GET",
    summary="The groups a person is in",
    tags=TAGS,
    response=GroupPage,
)
def person_groups(user_id: int) -> GroupPage:
    """Only the groups you can see: a secret group shows up only to its own members."""
    viewer = require_user()
    person = access_profile(viewer, user_id)
    groups = list(
        db.session.scalars(
            select(Group)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.user_id == person.id, access.visible_groups(viewer))
            .order_by(Group.name, Group.id)
            .limit(500)
        )
    )
    return GroupPage(items=queries.groups_out(viewer, groups), next_cursor=None)
