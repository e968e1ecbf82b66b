"""Stored notifications, each person's preferences and quiet hours, and digests sent."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from esn.clock import now
from esn.database import BigId, UTCDateTime, enum_column
from esn.extensions import Base


class NotificationKind(enum.StrEnum):
    mention = "mention"  # someone mentioned you in a post or comment
    comment = "comment"  # a comment on your post
    reply = "reply"  # a reply to your comment
    reaction = "reaction"  # reactions to your post or comment (grouped while unread)
    follower = "follower"  # someone follows you
    invitation = "invitation"  # you are invited to a group
    join_request = "join_request"  # someone asks to join a group you manage
    join_approved = "join_approved"  # your request to join was approved
    answer_accepted = "answer_accepted"  # your answer was accepted


class Channel(enum.StrEnum):
    live = "live"  # pushed at once (outside quiet hours) and listed in the app
    daily = "daily"  # in the daily digest
    weekly = "weekly"  # in the weekly digest
    off = "off"  # not notified at all


class DigestPeriod(enum.StrEnum):
    daily = "daily"
    weekly = "weekly"


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_recipient", "recipient_id", "created_at", "id"),
        Index("ix_notifications_unread", "recipient_id", "read_at"),
        Index("ix_notifications_grouping", "recipient_id", "kind", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(
        enum_column(NotificationKind, "notification_kind", 24)
    )
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "notification_channel", 24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Grouped reactions: how many people, the latest of them is the actor.
    count: Mapped[int] = mapped_column(Integer, default=1)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    object_type: Mapped[str | None] = mapped_column(String(16))
    object_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Pushed live at (null: not yet, or never for digest channels).
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Came in during the recipient's quiet hours: held back, and carried by the next digest.
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    digest_id: Mapped[int | None] = mapped_column(BigInteger)


class NotificationPreference(Base):
    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[NotificationKind] = mapped_column(
        enum_column(NotificationKind, "notification_kind", 24), primary_key=True
    )
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "notification_channel", 24))


class QuietHours(Base):
    """Minutes after local midnight (in the person's own time zone); start > end spans
    midnight (22:00 to 07:00)."""

    __tablename__ = "quiet_hours"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    start_minute: Mapped[int] = mapped_column(SmallInteger)
    end_minute: Mapped[int] = mapped_column(SmallInteger)
    weekends: Mapped[bool] = mapped_column(Boolean, default=False)  # quiet all weekend too


class Digest(Base):
    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("user_id", "period", "window_start"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    period: Mapped[DigestPeriod] = mapped_column(enum_column(DigestPeriod, "digest_period", 24))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(Text)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    email_error: Mapped[str | None] = mapped_column(String(500))
