"""Shapes of groups, members, join requests and invitations."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from esn.api.types import Cursor, Id, Input, Name, Output, SearchText
from esn.groups.models import GroupRole, InvitationStatus, JoinPolicy, RequestStatus, Visibility
from esn.processes import Process

Description = Field(default="", max_length=5000)


class GroupCreate(Input):
    name: Name
    description: str = Field("", max_length=5000)
    visibility: Visibility = Visibility.public
    join_policy: JoinPolicy = JoinPolicy.open
    process: Process = Process.general
    process_owner_id: Id | None = None


class GroupUpdate(Input):
    name: Name | None = None
    description: str | None = Field(None, max_length=5000)
    visibility: Visibility | None = None
    join_policy: JoinPolicy | None = None
    process: Process | None = None
    process_owner_id: Id | None = None


class GroupOut(Output):
    id: int
    name: str = Field(max_length=200)
    description: str = Field(max_length=5000)
    visibility: Visibility
    join_policy: JoinPolicy
    process: Process
    process_owner_id: int | None
    archived: bool
    # Null where the viewer may not see the members (private groups, for non-members).
    member_count: int | None
    my_role: GroupRole | None
    my_request: RequestStatus | None = None
    invited: bool = False


class GroupPage(Output):
    items: list[GroupOut]
    next_cursor: str | None


class GroupQuery(Input):
    q: SearchText | None = None
    process: Process | None = None
    mine: bool = False
    limit: int = Field(25, ge=1, le=100)
    cursor: Cursor | None = None


class MemberOut(Output):
    user_id: int
    display_name: str = Field(max_length=200)
    role: GroupRole
    joined_at: datetime


class MemberPage(Output):
    items: list[MemberOut]
    next_cursor: str | None


class PageQuery(Input):
    limit: int = Field(50, ge=1, le=200)
    cursor: Cursor | None = None


class JoinRequestCreate(Input):
    message: str = Field("", max_length=500)


class JoinRequestOut(Output):
    id: int
    group_id: int
    user_id: int
    display_name: str = Field(max_length=200)
    message: str = Field(max_length=500)
    status: RequestStatus
    created_at: datetime


class JoinRequestList(Output):
    items: list[JoinRequestOut]


class InvitationCreate(Input):
    user_id: Id
    expires_in_days: int = Field(14, ge=1, le=90)


class InvitationOut(Output):
    id: int
    group_id: int
    group_name: str = Field(max_length=200)
    invitee_id: int
    inviter_id: int | None
    status: InvitationStatus
    expires_at: datetime


class InvitationList(Output):
    items: list[InvitationOut]


class RoleChange(Input):
    role: GroupRole
