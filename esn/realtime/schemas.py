"""Shapes of notifications, preferences, quiet hours and digests."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from esn.accounts.schemas import PersonRef
from esn.api.types import Cursor, Id, Input, Output
from esn.realtime.models import Channel, DigestPeriod, NotificationKind

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class NotificationOut(Output):
    id: int
    kind: NotificationKind
    actor: PersonRef | None
    count: int = Field(description="Grouped reactions: how many people reacted.")
    text: str = Field(max_length=500)
    group_id: int | None
    post_id: int | None
    object_type: str | None
    object_id: int | None
    created_at: datetime
    updated_at: datetime
    read: bool


class NotificationPage(Output):
    items: list[NotificationOut]
    unread_count: int
    next_cursor: str | None


class NotificationQuery(Input):
    unread: bool = False
    limit: int = Field(30, ge=1, le=100)
    cursor: Cursor | None = None


class MarkRead(Input):
    ids: list[Id] = Field(min_length=1, max_length=500)


class Preferences(Output):
    channels: dict[NotificationKind, Channel]


class PreferencesUpdate(Input):
    channels: dict[NotificationKind, Channel] = Field(max_length=20)


class QuietHoursIn(Input):
    start: str = Field(pattern=HHMM, max_length=5, description="Local time, 24 h: 22:00")
    end: str = Field(pattern=HHMM, max_length=5, description="Local time; before start: next day")
    weekends: bool = False


class QuietHoursOut(Output):
    start: str | None
    end: str | None
    weekends: bool
    time_zone: str
    quiet_now: bool
    until: datetime | None


class DigestItem(Output):
    notification_id: int
    kind: NotificationKind
    text: str
    post_id: int | None
    created_at: datetime
    held: bool


class DigestOut(Output):
    id: int
    period: DigestPeriod
    window_start: datetime
    window_end: datetime
    subject: str
    items: list[DigestItem]
    emailed_at: datetime | None


class DigestList(Output):
    items: list[DigestOut]


class DigestQuery(Input):
    limit: int = Field(20, ge=1, le=100)
    before_id: Id | None = None
