"""Reads of groups and their members, always through the access policy."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select

from esn import access
from esn.accounts.models import User
from esn.api.pagination import decode_cursor, encode_cursor
from esn.api.problems import not_found
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
from esn.groups.schemas import GroupOut, GroupQuery


def access_group(user: User, group_id: int) -> Group:
    """The group if ``user`` may see it; 404 otherwise (a secret group does not exist for
    non-members)."""
    group = db.session.get(Group, group_id)
    if group is None or not access.can(user, "group:see", group):
        raise not_found("group")
    return group


def member_counts(group_ids: list[int]) -> dict[int, int]:
    if not group_ids:
        return {}
    rows = db.session.execute(
        select(GroupMember.group_id, func.count())
        .where(GroupMember.group_id.in_(group_ids))
        .group_by(GroupMember.group_id)
    )
    return {gid: n for gid, n in rows}


def _viewer_state(
    user: User, group_ids: list[int]
) -> tuple[dict[int, GroupRole], dict[int, RequestStatus], set[int]]:
    """The viewer's role, join request and pending invitation for each group, in three queries."""
    if not group_ids:
        return {}, {}, set()
    roles = {
        gid: GroupRole(role)
        for gid, role in db.session.execute(
            select(GroupMember.group_id, GroupMember.role).where(
                GroupMember.user_id == user.id, GroupMember.group_id.in_(group_ids)
            )
        )
    }
    requests = {
        gid: RequestStatus(status)
        for gid, status in db.session.execute(
            select(JoinRequest.group_id, JoinRequest.status).where(
                JoinRequest.user_id == user.id, JoinRequest.group_id.in_(group_ids)
            )
        )
    }
    invited = set(
        db.session.scalars(
            select(Invitation.group_id).where(
                Invitation.invitee_id == user.id,
                Invitation.group_id.in_(group_ids),
                Invitation.status == InvitationStatus.pending,
                Invitation.expires_at > now(),
            )
        )
    )
    return roles, requests, invited


def groups_out(user: User, groups: list[Group]) -> list[GroupOut]:
    """Serialise groups for ``user``: member counts only where the members are visible."""
    ids = [g.id for g in groups]
    counts = member_counts(ids)
    roles, requests, invited = _viewer_state(user, ids)
    out = []
    for group in groups:
        role = roles.get(group.id)
        readable = access.group_readable(user, group, role)
        out.append(
            GroupOut(
                id=group.id,
                name=group.name,
                description=group.description,
                visibility=group.visibility,
                join_policy=group.join_policy,
                process=group.process,
                process_owner_id=group.process_owner_id,
                archived=group.archived_at is not None,
                member_count=counts.get(group.id, 0) if readable else None,
                my_role=role,
                my_request=requests.get(group.id),
                invited=role is None and group.id in invited,
            )
        )
    return out


def list_groups(user: User, query: GroupQuery) -> tuple[list[GroupOut], str | None]:
    stmt = select(Group).where(access.visible_groups(user))
    if query.mine:
        stmt = stmt.where(
            Group.id.in_(select(GroupMember.group_id).where(GroupMember.user_id == user.id))
        )
    if query.process is not None:
        stmt = stmt.where(Group.process == query.process)
    if query.q and query.q.strip():
        escaped = (
            query.q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        )
        stmt = stmt.where(func.lower(Group.name).like(f"%{escaped}%", escape="\\"))
    if query.cursor:
        name, last_id = decode_cursor(query.cursor, (str, int))
        stmt = stmt.where(or_(Group.name > name, and_(Group.name == name, Group.id > last_id)))
    groups = list(db.session.scalars(stmt.order_by(Group.name, Group.id).limit(query.limit + 1)))
    cursor = None
    if len(groups) > query.limit:
        groups = groups[: query.limit]
        cursor = encode_cursor(groups[-1].name, groups[-1].id)
    return groups_out(user, groups), cursor


def list_members(
    group: Group, limit: int, cursor: str | None
) -> tuple[list[tuple[GroupMember, User]], str | None]:
    stmt = (
        select(GroupMember, User)
        .join(User, User.id == GroupMember.user_id)
        .where(GroupMember.group_id == group.id)
    )
    if cursor:
        name, last_id = decode_cursor(cursor, (str, int))
        stmt = stmt.where(
            or_(User.display_name > name, and_(User.display_name == name, User.id > last_id))
        )
    rows = list(
        db.session.execute(stmt.order_by(User.display_name, User.id).limit(limit + 1)).tuples()
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1][1].display_name, rows[-1][1].id)
    return rows, next_cursor


def pending_invitations(user: User) -> list[tuple[Invitation, Group]]:
    return list(
        db.session.execute(
            select(Invitation, Group)
            .join(Group, Group.id == Invitation.group_id)
            .where(
                Invitation.invitee_id == user.id,
                Invitation.status == InvitationStatus.pending,
                Invitation.expires_at > now(),
                Group.archived_at.is_(None),
            )
            .order_by(Invitation.created_at.desc())
        ).tuples()
    )
