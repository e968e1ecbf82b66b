"""HTTP boundary of notifications, preferences, quiet hours and digests."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import select, update

from esn.accounts.auth import require_user
from esn.accounts.models import User
from esn.api.problems import not_found
from esn.api.spec import operation
from esn.clock import now
from esn.extensions import db
from esn.realtime import queries
from esn.realtime.models import (
    Channel,
    Digest,
    Notification,
    NotificationKind,
    NotificationPreference,
    QuietHours,
)
from esn.realtime.notifications import quiet_until
from esn.realtime.schemas import (
    DigestItem,
    DigestList,
    DigestOut,
    DigestQuery,
    MarkRead,
    NotificationPage,
    NotificationQuery,
    Preferences,
    PreferencesUpdate,
    QuietHoursIn,
    QuietHoursOut,
)

bp = Blueprint("realtime", __name__, url_prefix="/api/v1")
TAGS = ["notifications"]


@operation(
    bp, "/notifications", "GET", summary="My notifications", tags=TAGS,
    query=NotificationQuery, response=NotificationPage,
)  # fmt: skip
def list_notifications(query: NotificationQuery) -> NotificationPage:
    """Newest (or most recently grouped) first. Notifications about content you can no longer
    see (you left the group, the post was deleted) are not listed."""
    user = require_user()
    rows, cursor, unread = queries.list_notifications(user, query.unread, query.cursor, query.limit)
    return NotificationPage(
        items=queries.notifications_out(rows), unread_count=unread, next_cursor=cursor
    )


@operation(
    bp, "/notifications/read", "POST", summary="Mark notifications read", tags=TAGS,
    body=MarkRead, status=204,
)  # fmt: skip
def mark_read(body: MarkRead) -> None:
    """Ids that are not yours are ignored."""
    user = require_user()
    db.session.execute(
        update(Notification)
        .where(
            Notification.recipient_id == user.id,
            Notification.id.in_(body.ids),
            Notification.read_at.is_(None),
        )
        .values(read_at=now())
    )
    db.session.commit()


@operation(bp, "/notifications/read-all", "POST", summary="Mark all read", tags=TAGS, status=204)
def mark_all_read() -> None:
    user = require_user()
    db.session.execute(
        update(Notification)
        .where(Notification.recipient_id == user.id, Notification.read_at.is_(None))
        .values(read_at=now())
    )
    db.session.commit()


def _preferences(user_id: int) -> Preferences:
    chosen = dict(
        db.session.execute(
            select(NotificationPreference.kind, NotificationPreference.channel).where(
                NotificationPreference.user_id == user_id
            )
        )
        .tuples()
        .all()
    )
    return Preferences(channels={k: chosen.get(k, Channel.live) for k in NotificationKind})


@operation(
    bp, "/me/notification-preferences", "GET", summary="My notification preferences",
    tags=TAGS, response=Preferences,
)  # fmt: skip
def get_preferences() -> Preferences:
    """Per kind: ``live`` (pushed at once, outside quiet hours), ``daily`` or ``weekly``
    (in the digest), or ``off``."""
    return _preferences(require_user().id)


@operation(
    bp, "/me/notification-preferences", "PUT", summary="Change notification preferences",
    tags=TAGS, body=PreferencesUpdate, response=Preferences,
)  # fmt: skip
def set_preferences(body: PreferencesUpdate) -> Preferences:
    """Only the kinds given change."""
    user = require_user()
    for kind, channel in body.channels.items():
        row = db.session.get(NotificationPreference, (user.id, kind))
        if row is None:
            db.session.add(NotificationPreference(user_id=user.id, kind=kind, channel=channel))
        else:
            row.channel = channel
    db.session.commit()
    return _preferences(user.id)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _quiet_out(user_id: int) -> QuietHoursOut:
    user = require_user()
    quiet = db.session.get(QuietHours, user_id)
    until = quiet_until(db.session, user, now())
    return QuietHoursOut(
        start=_hhmm(quiet.start_minute) if quiet else None,
        end=_hhmm(quiet.end_minute) if quiet else None,
        weekends=quiet.weekends if quiet else False,
        time_zone=user.time_zone,
        quiet_now=until is not None,
        until=until,
    )


@operation(
    bp, "/me/quiet-hours", "GET", summary="My quiet hours", tags=TAGS, response=QuietHoursOut
)
def get_quiet_hours() -> QuietHoursOut:
    """In your own time zone (your profile's ``time_zone``)."""
    return _quiet_out(require_user().id)


@operation(
    bp, "/me/quiet-hours", "PUT", summary="Set my quiet hours", tags=TAGS, body=QuietHoursIn,
    response=QuietHoursOut,
)  # fmt: skip
def set_quiet_hours(body: QuietHoursIn) -> QuietHoursOut:
    """Nothing is pushed live inside them: it waits for their end, and the next digest carries
    it. ``end`` before ``start`` spans midnight (22:00 to 07:00)."""
    user = require_user()
    start = int(body.start[:2]) * 60 + int(body.start[3:])
    end = int(body.end[:2]) * 60 + int(body.end[3:])
    row = db.session.get(QuietHours, user.id)
    if row is None:
        db.session.add(
            QuietHours(user_id=user.id, start_minute=start, end_minute=end, weekends=body.weekends)
        )
    else:
        row.start_minute, row.end_minute, row.weekends = start, end, body.weekends
    db.session.commit()
    return _quiet_out(user.id)


@operation(bp, "/me/quiet-hours", "DELETE", summary="No quiet hours", tags=TAGS, status=204)
def clear_quiet_hours() -> None:
    user = require_user()
    row = db.session.get(QuietHours, user.id)
    if row is not None:
        db.session.delete(row)
    db.session.commit()


def _digest_out(user: User, d: Digest) -> DigestOut:
    """As it was sent, less what the reader may no longer see (left the group, deleted)."""
    items = [DigestItem.model_validate(item) for item in d.items]
    shown = queries.visible_ids(user, [i.notification_id for i in items])
    return DigestOut(
        id=d.id,
        period=d.period,
        window_start=d.window_start,
        window_end=d.window_end,
        subject=d.subject,
        items=[i for i in items if i.notification_id in shown],
        emailed_at=d.emailed_at,
    )


@operation(
    bp, "/me/digests", "GET", summary="My digests", tags=TAGS, query=DigestQuery,
    response=DigestList,
)  # fmt: skip
def list_digests(query: DigestQuery) -> DigestList:
    """The digests sent to you, newest first, as they were sent."""
    user = require_user()
    stmt = select(Digest).where(Digest.user_id == user.id)
    if query.before_id is not None:
        stmt = stmt.where(Digest.id < query.before_id)
    rows = db.session.scalars(stmt.order_by(Digest.id.desc()).limit(query.limit))
    return DigestList(items=[_digest_out(user, d) for d in rows])


@operation(
    bp, "/me/digests/<int:digest_id>", "GET", summary="A digest", tags=TAGS, response=DigestOut
)
def get_digest(digest_id: int) -> DigestOut:
    user = require_user()
    digest = db.session.get(Digest, digest_id)
    if digest is None or digest.user_id != user.id:
        raise not_found("digest")
    return _digest_out(user, digest)
