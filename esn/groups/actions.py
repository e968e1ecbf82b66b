"""Every write to groups: creation, settings, membership, requests and invitations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from esn.accounts.models import User
from esn.api.problems import FieldError, conflict, not_found, validation_problem
from esn.clock import now
from esn.extensions import db
from esn.groups.models import (
    Group,
    GroupMember,
    GroupRole,
    Invitation,
    InvitationStatus,
    JoinRequest,
    RequestStatus,
)
from esn.usage import kinds
from esn.usage.recorder import record_usage


def _event(kind: kinds.UsageKind, actor: User | None, group: Group, **extra: Any) -> None:
    record_usage(
        kind,
        actor,
        object_type="group",
        object_id=group.id,
        group_id=group.id,
        process=group.process.value,
        **extra,
    )


def _check_person(user_id: int | None, field: str) -> None:
    if user_id is None:
        return
    person = db.session.get(User, user_id)
    if person is None or not person.is_active:
        raise validation_problem(
            [FieldError(pointer=f"/{field}", location="body", message="no such active person")]
        )


def check_create_group(actor: User, fields: dict[str, Any]) -> Group:
    _check_person(fields.get("process_owner_id"), "process_owner_id")
    return do_create_group(actor, fields)


def do_create_group(actor: User, fields: dict[str, Any]) -> Group:
    """Create a group with ``actor`` as its owner."""
    group = Group(**fields, created_by_id=actor.id, created_at=now())
    db.session.add(group)
    db.session.flush()
    db.session.add(
        GroupMember(group_id=group.id, user_id=actor.id, role=GroupRole.owner, joined_at=now())
    )
    _event(kinds.GROUP_CREATE, actor, group)
    return group


def check_update_group(actor: User, group: Group, changes: dict[str, Any]) -> Group:
    if "process_owner_id" in changes:
        _check_person(changes["process_owner_id"], "process_owner_id")
    return do_update_group(actor, group, changes)


def do_update_group(actor: User, group: Group, changes: dict[str, Any]) -> Group:
    changed = [k for k, v in changes.items() if getattr(group, k) != v]
    for key in changed:
        setattr(group, key, changes[key])
    if changed:
        _event(kinds.GROUP_UPDATE, actor, group, payload={"fields": sorted(changed)})
    return group


def do_archive_group(actor: User, group: Group) -> None:
    if group.archived_at is not None:
        return
    group.archived_at = now()
    _event(kinds.GROUP_ARCHIVE, actor, group)


def _add_member(group: Group, user: User, role: GroupRole = GroupRole.member) -> GroupMember:
    member = GroupMember(group_id=group.id, user_id=user.id, role=role, joined_at=now())
    db.session.add(member)
    # Joining settles any pending request or invitation of that person.
    for request in db.session.scalars(
        select(JoinRequest).where(
            JoinRequest.group_id == group.id,
            JoinRequest.user_id == user.id,
            JoinRequest.status == RequestStatus.pending,
        )
    ):
        request.status = RequestStatus.approved
        request.decided_at = now()
    for invitation in db.session.scalars(
        select(Invitation).where(
            Invitation.group_id == group.id,
            Invitation.invitee_id == user.id,
            Invitation.status == InvitationStatus.pending,
        )
    ):
        invitation.status = InvitationStatus.accepted
        invitation.answered_at = now()
    return member


def do_join(user: User, group: Group) -> None:
    _add_member(group, user)
    _event(kinds.MEMBER_JOIN, user, group)


def _owners(group: Group) -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(GroupMember)
            .where(GroupMember.group_id == group.id, GroupMember.role == GroupRole.owner)
        )
        or 0
    )


def check_leave(user: User, group: Group) -> None:
    member = db.session.get(GroupMember, (group.id, user.id))
    if member is None:
        raise conflict("You are not a member of this group.")
    if member.role == GroupRole.owner and _owners(group) == 1:
        raise conflict("The last owner cannot leave; make someone else an owner first.")
    db.session.delete(member)
    # Flush, so that a later action in the same transaction (session.get) sees the removal.
    db.session.flush()
    _event(kinds.MEMBER_LEAVE, user, group)


def check_remove_member(actor: User, group: Group, user_id: int) -> None:
    member = db.session.get(GroupMember, (group.id, user_id))
    if member is None:
        raise not_found("member")
    actor_role = db.session.get(GroupMember, (group.id, actor.id))
    if member.role == GroupRole.owner or (
        member.role == GroupRole.admin
        and (actor_role is None or actor_role.role != GroupRole.owner)
    ):
        raise conflict("Only an owner can remove an admin, and owners cannot be removed.")
    db.session.delete(member)
    db.session.flush()  # as in check_leave
    _event(kinds.MEMBER_REMOVE, actor, group, owner_id=user_id)


def check_change_role(actor: User, group: Group, user_id: int, role: GroupRole) -> None:
    member = db.session.get(GroupMember, (group.id, user_id))
    if member is None:
        raise not_found("member")
    if member.role == role:
        return
    if member.role == GroupRole.owner and _owners(group) == 1:
        raise conflict("The group must keep at least one owner.")
    member.role = role
    _event(kinds.MEMBER_ROLE, actor, group, owner_id=user_id, payload={"role": role.value})


def check_request(user: User, group: Group, message: str) -> JoinRequest:
    existing = db.session.scalar(
        select(JoinRequest).where(JoinRequest.group_id == group.id, JoinRequest.user_id == user.id)
    )
    if existing is not None and existing.status == RequestStatus.pending:
        raise conflict("You have already asked to join; wait for an answer.")
    if existing is None:
        existing = JoinRequest(group_id=group.id, user_id=user.id)
        db.session.add(existing)
    existing.message = message
    existing.status = RequestStatus.pending
    existing.created_at = now()
    existing.decided_at = None
    existing.decided_by_id = None
    db.session.flush()
    _event(kinds.REQUEST_CREATE, user, group)
    return existing


def access_request(group: Group, request_id: int) -> JoinRequest:
    request = db.session.get(JoinRequest, request_id)
    if request is None or request.group_id != group.id:
        raise not_found("join request")
    return request


def check_decide_request(actor: User, group: Group, request: JoinRequest, approve: bool) -> None:
    if request.status != RequestStatus.pending:
        raise conflict("This request has been answered already.")
    person = db.session.get(User, request.user_id)
    if person is None or not person.is_active:
        raise conflict("The person who asked is no longer active.")
    request.decided_by_id = actor.id
    request.decided_at = now()
    if approve:
        request.status = RequestStatus.approved
        if db.session.get(GroupMember, (group.id, person.id)) is None:
            _add_member(group, person)
        _event(kinds.REQUEST_APPROVE, actor, group, owner_id=person.id)
    else:
        request.status = RequestStatus.declined
        _event(kinds.REQUEST_DECLINE, actor, group, owner_id=person.id)


def check_invite(actor: User, group: Group, user_id: int, days: int) -> Invitation:
    person = db.session.get(User, user_id)
    if person is None or not person.is_active:
        raise validation_problem(
            [FieldError(pointer="/user_id", location="body", message="no such active person")]
        )
    if db.session.get(GroupMember, (group.id, user_id)) is not None:
        raise conflict("This person is a member already.")
    invitation = db.session.scalar(
        select(Invitation).where(Invitation.group_id == group.id, Invitation.invitee_id == user_id)
    )
    if invitation is None:
        invitation = Invitation(group_id=group.id, invitee_id=user_id)
        db.session.add(invitation)
    invitation.inviter_id = actor.id
    invitation.status = InvitationStatus.pending
    invitation.created_at = now()
    invitation.expires_at = now() + timedelta(days=days)
    invitation.answered_at = None
    db.session.flush()
    _event(kinds.INVITATION_CREATE, actor, group, owner_id=user_id)
    return invitation


def check_answer_invitation(user: User, group: Group, accept: bool) -> None:
    invitation = db.session.scalar(
        select(Invitation).where(
            Invitation.group_id == group.id,
            Invitation.invitee_id == user.id,
            Invitation.status == InvitationStatus.pending,
            Invitation.expires_at > now(),
        )
    )
    if invitation is None:
        raise not_found("invitation")
    invitation.answered_at = now()
    if accept:
        _add_member(group, user)
        _event(kinds.INVITATION_ACCEPT, user, group)
    else:
        invitation.status = InvitationStatus.declined
        _event(kinds.INVITATION_DECLINE, user, group)
