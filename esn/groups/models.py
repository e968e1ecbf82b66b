"""Groups, their members, join requests and invitations."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from esn.clock import now
from esn.database import UTCDateTime, enum_column
from esn.extensions import Base
from esn.processes import Process


class Visibility(enum.StrEnum):
    public = "public"  # everyone sees everything
    private = "private"  # everyone sees name and description; members see content and members
    secret = "secret"  # noqa: S105 (for non-members it does not exist)


class JoinPolicy(enum.StrEnum):
    open = "open"
    request = "request"
    invite = "invite"


class GroupRole(enum.StrEnum):
    owner = "owner"
    admin = "admin"
    member = "member"


class RequestStatus(enum.StrEnum):
    pending = "pending"
    approved = "approved"
    declined = "declined"
    cancelled = "cancelled"


class InvitationStatus(enum.StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    revoked = "revoked"


class Group(Base):
    __tablename__ = "groups"
    # "The public groups" is part of every visibility check of people inside the organisation.
    __table_args__ = (Index("ix_groups_visibility", "visibility", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[Visibility] = mapped_column(enum_column(Visibility, "visibility"))
    join_policy: Mapped[JoinPolicy] = mapped_column(enum_column(JoinPolicy, "join_policy"))
    process: Mapped[Process] = mapped_column(
        enum_column(Process, "process"), default=Process.general
    )
    # The person accountable for the business process this group serves (may be a non-member).
    process_owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GroupMember(Base):
    __tablename__ = "group_members"
    # "The groups I am in" is part of every visibility check: read from the index alone.
    __table_args__ = (Index("ix_group_members_user_group", "user_id", "group_id"),)

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[GroupRole] = mapped_column(enum_column(GroupRole, "group_role"))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class JoinRequest(Base):
    """One row per (group, person); a new request after a decision reuses it."""

    __tablename__ = "group_join_requests"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus, "request_status"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Invitation(Base):
    """An invitation binds one person to one group until it expires."""

    __tablename__ = "group_invitations"
    __table_args__ = (UniqueConstraint("group_id", "invitee_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    invitee_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    inviter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[InvitationStatus] = mapped_column(
        enum_column(InvitationStatus, "invitation_status")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
