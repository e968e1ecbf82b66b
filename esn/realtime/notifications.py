"""Notifications derived from usage events, in the recording transaction.

Each listener turns one kind of event into notification rows for the people it concerns;
``live`` ones get an outbox job that pushes them after the commit (``delivery``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


def quiet_until(session: Any, user: User, moment: datetime) -> datetime | None:
    """When the person's quiet hours end, if ``moment`` lies inside them; else None."""
    return quiet_end(session.get(QuietHours, user.id), user.time_zone or "UTC", moment)


def quiet_end(quiet: QuietHours | None, time_zone: str, moment: datetime) -> datetime | None:
    """The first moment from ``moment`` on that is not quiet, if ``moment`` is quiet; else None.

    Quiet is inside the daily window (local ``start`` to ``end``; an end before the start spans
    midnight; equal ends mean no daily window) or, with ``weekends``, any time on a local
    Saturday or Sunday. The end of one may lie inside the other (Friday 22:00 to 07:00 ends on a
    Saturday; a weekend ends at Monday 00:00, inside 22:00 to 07:00), so the answer is reached
    by stepping from one end to the next until a moment is not quiet: a held notification gets
    one release job, which must not fire while it is still quiet. Local times are turned into
    instants in ``time_zone`` (an IANA name): a time that a DST change skips is reached when the
    clock jumps past it; a time it repeats, at its next occurrence. Pure: it reads nothing but
    its arguments. ``moment`` must be aware; the answer is in its time zone.
    """
    if quiet is None:
        return None
    zone = ZoneInfo(time_zone)
    instant = moment.astimezone(UTC)
    for _ in range(8):  # at most: daily end → weekend end → daily end; each step goes forward
        nxt = _next_quiet_end(quiet, zone, instant)
        if nxt is None:
            break
        instant = nxt
    else:  # pragma: no cover  (cannot happen: no window covers a whole day)
        raise AssertionError(f"quiet hours without an end: {quiet!r}")
    return None if instant == moment else instant.astimezone(moment.tzinfo)


def _next_quiet_end(quiet: QuietHours, zone: ZoneInfo, instant: datetime) -> datetime | None:
    """The end of the quiet stretch (weekend or daily window) ``instant`` lies in, if any."""
    local = instant.astimezone(zone)
    day = local.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0, fold=0)
    if quiet.weekends and local.weekday() >= 5:
        return _reach(day + timedelta(days=7 - local.weekday()), zone, instant)
    start, end = quiet.start_minute, quiet.end_minute
    minute = local.hour * 60 + local.minute
    if start == end:
        return None
    if start < end:
        if not start <= minute < end:
            return None
        return _reach(day + timedelta(minutes=end), zone, instant)
    # across midnight: from the start to midnight, or from midnight to the end
    if end <= minute < start:
        return None
    return _reach(day + timedelta(days=1 if minute >= start else 0, minutes=end), zone, instant)


def _reach(wall: datetime, zone: ZoneInfo, after: datetime) -> datetime:
    """The first instant after ``after`` at which the clock of ``zone`` shows ``wall`` (a naive
    local time later than the clock shows at ``after``) or a later time: the occurrence after
    ``after`` if the clock shows it twice (DST ends), the moment the clock jumps past it if it
    skips it (DST starts)."""
    for fold in (0, 1):
        candidate = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if candidate.astimezone(zone).replace(tzinfo=None) != wall:
            return max(_jump_past(wall, zone), after)
        if candidate > after:
            return candidate
    return after  # pragma: no cover  (both occurrences before ``after``: never asked so)


def _jump_past(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of the clock change that skips the local time ``wall``.

    Read with the offset after the change, ``wall`` is an instant before it; read with the
    offset before the change, an instant after it. Transitions fall on whole seconds.
    """
    low = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(wall.replace(tzinfo=zone, fold=0).astimezone(UTC).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


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
    # The recipient's state and chosen channel in one query (this runs in the writing request).
    found = session.execute(
        select(User.is_active, User.is_bot, NotificationPreference.channel)
        .outerjoin(
            NotificationPreference,
            (NotificationPreference.user_id == User.id) & (NotificationPreference.kind == kind),
        )
        .where(User.id == recipient_id)
    ).first()
    if found is None or not found.is_active or found.is_bot:
        return
    channel = found.channel or Channel.live
    if channel == Channel.off:
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
