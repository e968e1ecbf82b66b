"""Notifications derived from usage events, in the recording transaction.

Each listener turns one kind of event into notification rows for the people it concerns;
``live`` ones get an outbox job that pushes them after the commit (``delivery``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from esn.accounts.models import User
from esn.clock import now
from esn.groups.models import GroupMember, GroupRole
from esn.outbox import enqueue
from esn.realtime.models import (
    Channel,
    Notification,
    NotificationKind,
    NotificationPreference,
    QuietHours,
)
from esn.social.models import Post
from esn.usage import kinds
from esn.usage.models import UsageEvent
from esn.usage.recorder import listen

NOTIFY = "realtime.notify"


def channel_for(session: Any, user_id: int, kind: NotificationKind) -> Channel:
    chosen = session.get(NotificationPreference, (user_id, kind))
    return chosen.channel if chosen is not None else Channel.live


def quiet_until(session: Any, user: User, moment: datetime) -> datetime | None:
    """When the person's quiet hours end, if ``moment`` lies inside them; else None."""
    quiet = session.get(QuietHours, user.id)
    if quiet is None:
        return None
    zone = ZoneInfo(user.time_zone or "UTC")
    local = moment.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = quiet.start_minute, quiet.end_minute
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if quiet.weekends and local.weekday() >= 5:
        monday = midnight + timedelta(days=7 - local.weekday())
        return (monday + timedelta(minutes=end)).astimezone(moment.tzinfo)
    if start == end:
        return None
    if start < end:
        inside = start <= minute < end
        ends = midnight + timedelta(minutes=end)
    else:  # across midnight
        inside = minute >= start or minute < end
        ends = midnight + timedelta(minutes=end, days=1 if minute >= start else 0)
    if not inside:
        return None
    # (wall-clock arithmetic; a DST change inside the quiet hours shifts the end by an hour)
    return ends.astimezone(moment.tzinfo)


def _notify(
    session: Any,
    event: UsageEvent,
    recipient_id: int | None,
    kind: NotificationKind,
    *,
    post_id: int | None = None,
    object_type: str | None = None,
    object_id: int | None = None,
) -> None:
    if recipient_id is None or recipient_id == event.actor_id:
        return
    channel = channel_for(session, recipient_id, kind)
    if channel == Channel.off:
        return
    recipient = session.get(User, recipient_id)
    if recipient is None or not recipient.is_active or recipient.is_bot:
        return
    if post_id is not None and session.get(Post, post_id) is None:
        return  # an event about a thread that is not stored (imported or synthetic history)
    moment = now()
    if kind == NotificationKind.reaction:
        # Reactions to the same thing are one notification while it is unread.
        grouped = session.scalars(
            select(Notification).where(
                Notification.recipient_id == recipient_id,
                Notification.kind == kind,
                Notification.object_type == object_type,
                Notification.object_id == object_id,
                Notification.read_at.is_(None),
                Notification.digest_id.is_(None),
            )
        ).first()
        if grouped is not None:
            grouped.count += 1
            grouped.actor_id = event.actor_id
            grouped.updated_at = moment
            if channel == Channel.live:
                enqueue(NOTIFY, {"id": grouped.id}, session=session)
            return
    notification = Notification(
        recipient_id=recipient_id,
        kind=kind,
        channel=channel,
        actor_id=event.actor_id,
        count=1,
        group_id=event.group_id,
        post_id=post_id,
        object_type=object_type,
        object_id=object_id,
        created_at=moment,
        updated_at=moment,
    )
    session.add(notification)
    session.flush()
    if channel == Channel.live:
        enqueue(NOTIFY, {"id": notification.id}, session=session)


def _on_mention(event: UsageEvent, session: Any) -> None:
    _notify(
        session,
        event,
        event.owner_id,
        NotificationKind.mention,
        post_id=event.thread_root_id,
        object_type=event.object_type,
        object_id=event.object_id,
    )


def _on_comment(event: UsageEvent, session: Any) -> None:
    reply = bool((event.payload or {}).get("is_reply"))
    _notify(
        session,
        event,
        event.owner_id,
        NotificationKind.reply if reply else NotificationKind.comment,
        post_id=event.thread_root_id,
        object_type="comment",
        object_id=event.object_id,
    )


def _on_reaction(event: UsageEvent, session: Any) -> None:
    _notify(
        session,
        event,
        event.owner_id,
        NotificationKind.reaction,
        post_id=event.thread_root_id,
        object_type=event.object_type,
        object_id=event.object_id,
    )


def _on_follow(event: UsageEvent, session: Any) -> None:
    if event.object_type == "user":
        _notify(
            session, event, event.owner_id, NotificationKind.follower, object_type="user",
            object_id=event.actor_id,
        )  # fmt: skip


def _on_answer(event: UsageEvent, session: Any) -> None:
    _notify(
        session,
        event,
        event.owner_id,
        NotificationKind.answer_accepted,
        post_id=event.thread_root_id,
        object_type="comment",
        object_id=event.object_id,
    )


def _on_group(kind: NotificationKind) -> Any:
    def listener(event: UsageEvent, session: Any) -> None:
        _notify(session, event, event.owner_id, kind, object_type="group", object_id=event.group_id)

    return listener


def _on_join_request(event: UsageEvent, session: Any) -> None:
    managers = session.scalars(
        select(GroupMember.user_id).where(
            GroupMember.group_id == event.group_id,
            GroupMember.role.in_([GroupRole.owner, GroupRole.admin]),
        )
    ).all()
    for manager in managers:
        _notify(
            session, event, manager, NotificationKind.join_request, object_type="group",
            object_id=event.group_id,
        )  # fmt: skip


listen(kinds.MENTION, _on_mention)
listen(kinds.COMMENT_CREATE, _on_comment)
listen(kinds.REACTION_ADD, _on_reaction)
listen(kinds.FOLLOW, _on_follow)
listen(kinds.ANSWER_ACCEPT, _on_answer)
listen(kinds.INVITATION_CREATE, _on_group(NotificationKind.invitation))
listen(kinds.REQUEST_APPROVE, _on_group(NotificationKind.join_approved))
listen(kinds.REQUEST_CREATE, _on_join_request)
