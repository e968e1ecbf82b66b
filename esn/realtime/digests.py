"""Daily and weekly digests: built over calendar-aligned windows, stored, then e-mailed.

``run_digests`` is called by ``esn worker`` (every ten minutes) and ``esn notifications
digest``. For every active person with something to send it builds the digests whose window
has ended, in the person's own time zone (``User.time_zone``):

* daily: a local calendar day, midnight to midnight, with the day's ``daily`` notifications and
  every notification held back by quiet hours that no digest has carried yet;
* weekly: an ISO week, Monday 00:00 to Monday 00:00, with the week's ``weekly`` notifications.

Windows that ended within the last seven days are built (a worker that was down for a while
catches up); older unsent notifications stay in the app's list. Only unread notifications that
no digest carries yet, and only what the recipient may see at sending time (the policy of
``queries.visible_notifications``), are included; a digest with nothing in it is not made.

Each digest is its own row, unique per (person, period, window start): the insert skips a
window that exists already, and notifications are claimed with a conditional update, so two
runs (or two workers at once) send each digest once. The row is committed first, and the
e-mail (SMTP, when ``SMTP_HOST`` is set) is sent after the commit: a failing server leaves the
digest readable in the app with ``email_error`` set, and later runs retry it, for digests of the
last seven days. While an e-mail is being sent, ``email_error`` holds a lease (``sending
since …``) so that no other run sends it at the same time.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import ColumnElement, or_, select, update

from esn.accounts.models import User
from esn.clock import now, system_now
from esn.database import insert_ignoring_conflicts, write_intent
from esn.extensions import db
from esn.realtime.models import Channel, Digest, DigestPeriod, Notification
from esn.realtime.queries import notifications_out, visible_ids, visible_notifications
from esn.realtime.schemas import DigestItem

log = logging.getLogger("esn.realtime")

# Windows that ended this recently are built; failed e-mails of digests this recent are retried.
LOOKBACK = timedelta(days=7)
PEOPLE_BATCH = 200
RETRY_BATCH = 200
# How long one run may take to send one e-mail before another run may try it again.
SEND_LEASE = timedelta(minutes=15)
SMTP_TIMEOUT_S = 20.0
SENDING = "sending since "  # email_error while a run sends it (a lease)
GAVE_UP = "not sent: "  # email_error that is not retried
# Where a post is read, as a path on the site.
POST_PATH = "/posts/{id}"


@dataclass(frozen=True)
class Window:
    period: DigestPeriod
    start: datetime  # UTC instants of the local boundaries
    end: datetime
    first_day: date  # local calendar days covered, inclusive
    last_day: date


@dataclass
class DigestRun:
    """What one pass did."""

    moment: datetime
    mail: bool  # SMTP configured
    people: int = 0  # people with notifications waiting for a digest
    digests: int = 0  # digests made
    notifications: int = 0  # notifications they carry
    emailed: int = 0  # e-mails sent (new digests and retries)
    retried: int = 0  # of which earlier failures
    email_failed: int = 0
    errors: int = 0  # people whose digests could not be built (logged; retried next run)

    def __str__(self) -> str:
        text = (
            f"digests at {self.moment.isoformat()}: {self.people} people waiting, "
            f"{self.digests} digests made ({self.notifications} notifications)"
        )
        if self.mail:
            text += (
                f", {self.emailed} e-mailed ({self.retried} retried), "
                f"{self.email_failed} e-mails failed"
            )
        else:
            text += "; e-mail off (no SMTP_HOST): digests are kept in the app"
        if self.errors:
            text += f"; {self.errors} people failed (see the log)"
        return text


# --- windows ------------------------------------------------------------------------------------


def zone_of(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local calendar day, in UTC (where midnight falls in a DST gap,
    zoneinfo's fold=0 reading gives the first instant of the day)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def daily_window(day: date, zone: ZoneInfo) -> Window:
    return Window(
        DigestPeriod.daily,
        local_midnight(day, zone),
        local_midnight(day + timedelta(days=1), zone),
        day,
        day,
    )


def weekly_window(monday: date, zone: ZoneInfo) -> Window:
    return Window(
        DigestPeriod.weekly,
        local_midnight(monday, zone),
        local_midnight(monday + timedelta(days=7), zone),
        monday,
        monday + timedelta(days=6),
    )


def ended_windows(zone: ZoneInfo, moment: datetime) -> tuple[list[Window], Window]:
    """The daily windows of the last seven local days before ``moment``'s (oldest first), and
    the last complete ISO week."""
    today = moment.astimezone(zone).date()
    days = [daily_window(today - timedelta(days=back), zone) for back in range(7, 0, -1)]
    this_monday = today - timedelta(days=today.weekday())
    return days, weekly_window(this_monday - timedelta(days=7), zone)


# --- what a digest may carry --------------------------------------------------------------------


def _waiting() -> ColumnElement[bool]:
    """Notifications a digest may carry: unread, in no digest yet, for a digest channel or held
    back by quiet hours."""
    return (
        Notification.digest_id.is_(None)
        & Notification.read_at.is_(None)
        & or_(
            Notification.channel.in_([Channel.daily, Channel.weekly]),
            Notification.held.is_(True),
        )
    )


def _people_waiting(moment: datetime) -> list[int]:
    """Everyone with notifications waiting for a digest (one scan; their ids only)."""
    since = moment - 2 * LOOKBACK - timedelta(days=1)  # the oldest window start, any zone
    return sorted(
        db.session.scalars(
            select(Notification.recipient_id)
            .where(_waiting(), Notification.created_at >= since, Notification.created_at < moment)
            .distinct()
        )
    )


def _active(ids: list[int]) -> list[int]:
    return list(
        db.session.scalars(
            select(User.id)
            .where(User.id.in_(ids), User.is_active.is_(True), User.is_bot.is_(False))
            .order_by(User.id)
        )
    )


def _assign(
    notes: Sequence[Notification], days: list[Window], week: Window
) -> list[tuple[Window, list[Notification]]]:
    """Each waiting notification's window: a daily or weekly one by its channel and creation;
    held ones go to the latest daily window (the next digest after their quiet hours)."""
    latest = days[-1]
    plan: dict[Window, list[Notification]] = {w: [] for w in [*days, week]}
    for n in notes:
        if n.held:
            if days[0].start <= n.created_at < latest.end:
                plan[latest].append(n)
            continue
        if n.channel == Channel.daily:
            for w in days:
                if w.start <= n.created_at < w.end:
                    plan[w].append(n)
                    break
        elif n.channel == Channel.weekly and week.start <= n.created_at < week.end:
            plan[week].append(n)
    return [(w, found) for w, found in plan.items() if found]


def _plan(user: User, moment: datetime) -> list[tuple[Window, list[Notification]]]:
    """The person's windows that have something to carry and no digest yet."""
    days, week = ended_windows(zone_of(user), moment)
    notes = db.session.scalars(
        select(Notification)
        .where(
            Notification.recipient_id == user.id,
            _waiting(),
            Notification.created_at >= min(days[0].start, week.start),
            Notification.created_at < days[-1].end,
            visible_notifications(user),
        )
        .order_by(Notification.created_at, Notification.id)
    ).all()
    if not notes:
        return []
    made = set(
        db.session.execute(
            select(Digest.period, Digest.window_start).where(
                Digest.user_id == user.id,
                Digest.window_start >= min(days[0].start, week.start),
            )
        )
        .tuples()
        .all()
    )
    return [
        (w, found) for w, found in _assign(notes, days, week) if (w.period, w.start) not in made
    ]


# --- rendering ----------------------------------------------------------------------------------


def _plural(count: int) -> str:
    return f"{count} notification{'' if count == 1 else 's'}"


def _day(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B} {day.year}"


def render(
    user: User, period: DigestPeriod, first_day: date, last_day: date, items: list[DigestItem]
) -> tuple[str, str]:
    """The subject and the plain-text body of a digest."""
    zone = zone_of(user)
    subject = f"Your {period.value} digest: {_plural(len(items))}"
    if period == DigestPeriod.daily:
        span = _day(first_day)
    else:
        span = f"the week of {_day(first_day)} to {_day(last_day)}"
    lines = [
        f"Hello {user.display_name},",
        "",
        f"Your {period.value} digest for {span} ({zone.key}): {_plural(len(items))}.",
        "",
    ]
    for item in items:
        at = item.created_at.astimezone(zone)
        held = "  (held during your quiet hours)" if item.held else ""
        lines.append(f"- {at:%a} {at.day} {at:%b} {at:%H:%M}  {item.text}{held}")
        if item.post_id is not None:
            lines.append(f"  {POST_PATH.format(id=item.post_id)}")
    lines += [
        "",
        "Your digests are also in the app. To change what you receive, and how, open your",
        "notification preferences.",
        "",
    ]
    return subject, "\n".join(lines)


def _items(notes: list[Notification]) -> list[DigestItem]:
    shaped = notifications_out(notes)
    return [
        DigestItem(
            notification_id=n.id,
            kind=n.kind,
            text=out.text,
            post_id=n.post_id,
            created_at=n.created_at,
            held=n.held,
        )
        for n, out in zip(notes, shaped, strict=True)
    ]


def _dump(items: Iterable[DigestItem]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json") for item in items]


# --- e-mail -------------------------------------------------------------------------------------


def _lease() -> str:
    return f"{SENDING}{system_now().isoformat()}"


def _leased(error: str) -> bool:
    """Whether ``error`` is a lease still running."""
    if not error.startswith(SENDING):
        return False
    try:
        since = datetime.fromisoformat(error.removeprefix(SENDING))
    except ValueError:
        return False
    return since > system_now() - SEND_LEASE


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:400]


class MailFailed(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer:
    """One SMTP connection per run, opened when the first e-mail goes out. When the server
    cannot be reached, the run stops trying (every other e-mail fails with the same error and
    is retried by a later run)."""

    def __init__(self, config: Any) -> None:
        self.host: str = config["SMTP_HOST"]
        self.port = int(config["SMTP_PORT"])
        self.user: str = config["SMTP_USER"]
        self.password: str = config["SMTP_PASSWORD"]
        self.starttls = bool(config["SMTP_STARTTLS"])
        self.sender: str = config["MAIL_FROM"]
        self._smtp: smtplib.SMTP | None = None
        self._down: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT_S)
        try:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def message(self, user: User, subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = Address(display_name=user.display_name, addr_spec=user.email)
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now())
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or "localhost")
        msg.set_content(body)
        return msg

    def send(self, msg: EmailMessage) -> None:
        """Send one message; raises ``MailFailed``."""
        if self._down is not None:
            raise MailFailed(self._down)
        fresh = self._smtp is None
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except (OSError, smtplib.SMTPException) as exc:
                self._down = _describe(exc)
                raise MailFailed(self._down) from exc
        try:
            self._smtp.send_message(msg)
        except smtplib.SMTPServerDisconnected as exc:
            self.close()
            if fresh:
                raise MailFailed(_describe(exc)) from exc
            self.send(msg)  # the server closed an idle connection: once more, on a new one
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise MailFailed(_describe(exc), permanent=all(c >= 500 for c in codes)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise MailFailed(_describe(exc)) from exc

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _finish(digest_id: int, lease: str, error: str | None) -> None:
    """Record the outcome of an e-mail (if the lease is still ours)."""
    values: dict[str, Any] = (
        {"emailed_at": now(), "email_error": None} if error is None else {"email_error": error}
    )
    with write_intent():
        db.session.rollback()
        db.session.execute(
            update(Digest)
            .where(Digest.id == digest_id, Digest.email_error == lease)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


def _mail(mailer: Mailer, run: DigestRun, digest_id: int, lease: str, msg: EmailMessage) -> bool:
    try:
        mailer.send(msg)
    except MailFailed as exc:
        log.warning("digest %s not e-mailed: %s", digest_id, exc)
        _finish(digest_id, lease, (GAVE_UP if exc.permanent else "") + str(exc))
        run.email_failed += 1
        return False
    _finish(digest_id, lease, None)
    run.emailed += 1
    return True


# --- building -----------------------------------------------------------------------------------


@dataclass
class _Made:
    digest_id: int
    count: int
    lease: str | None
    msg: EmailMessage | None


def _make(user: User, window: Window, notes: list[Notification], mailer: Mailer) -> _Made | None:
    """Insert the window's digest and claim its notifications, in the caller's transaction.
    None when the digest exists already or nothing could be claimed."""
    lease = _lease() if mailer.enabled else None
    table = Digest.__table__
    inserted = db.session.execute(
        insert_ignoring_conflicts(table, db.engine.dialect.name)
        .values(
            user_id=user.id,
            period=window.period,
            window_start=window.start,
            window_end=window.end,
            created_at=now(),
            items=[],
            subject="",
            body_text="",
            emailed_at=None,
            email_error=lease,
        )
        .returning(table.c.id)
    ).scalar()
    if inserted is None:
        return None  # made before, by an earlier run or one running at the same time
    digest_id = int(inserted)
    claimed = set(
        db.session.scalars(
            update(Notification)
            .where(
                Notification.id.in_([n.id for n in notes]),
                Notification.digest_id.is_(None),
                Notification.read_at.is_(None),
            )
            .values(digest_id=digest_id)
            .returning(Notification.id)
            .execution_options(synchronize_session=False)
        )
    )
    mine = [n for n in notes if n.id in claimed]
    digest = db.session.get(Digest, digest_id)
    assert digest is not None
    if not mine:  # another run carried them meanwhile
        db.session.delete(digest)
        db.session.flush()
        return None
    items = _items(mine)
    subject, body = render(user, window.period, window.first_day, window.last_day, items)
    digest.items = _dump(items)
    digest.subject = subject
    digest.body_text = body
    msg = mailer.message(user, subject, body) if mailer.enabled else None
    return _Made(digest_id, len(items), lease, msg)


def _build_for(user_id: int, moment: datetime, mailer: Mailer, run: DigestRun) -> list[_Made]:
    """Build one person's digests; commits. Returns what to e-mail after the commit."""
    # Look first without taking the write lock (most runs find nothing new to build).
    db.session.rollback()
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or not _plan(user, moment):
        db.session.rollback()
        return []
    db.session.rollback()
    made: list[_Made] = []
    with write_intent():
        user = db.session.get(User, user_id)
        assert user is not None
        for window, found in _plan(user, moment):
            result = _make(user, window, found, mailer)
            if result is not None:
                made.append(result)
                run.digests += 1
                run.notifications += result.count
        db.session.commit()
    return made


# --- retrying failed e-mails --------------------------------------------------------------------


def _retry_one(mailer: Mailer, run: DigestRun, digest_id: int, observed: str) -> None:
    lease = _lease()
    with write_intent():
        db.session.rollback()
        taken = db.session.execute(
            update(Digest)
            .where(
                Digest.id == digest_id,
                Digest.emailed_at.is_(None),
                Digest.email_error == observed,
            )
            .values(email_error=lease)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            db.session.rollback()
            return  # another run has it
        digest = db.session.get(Digest, digest_id)
        user = db.session.get(User, digest.user_id) if digest is not None else None
        if digest is None or user is None or not user.is_active:
            if digest is not None:
                digest.email_error = f"{GAVE_UP}the person is no longer active"
            db.session.commit()
            return
        # Only what the person may see now is sent: items seen no longer are taken out.
        items = [DigestItem.model_validate(item) for item in digest.items]
        visible = visible_ids(user, [i.notification_id for i in items])
        kept = [i for i in items if i.notification_id in visible]
        if not kept:
            digest.email_error = f"{GAVE_UP}nothing left that the person may see"
            db.session.commit()
            return
        if len(kept) != len(items):
            zone = zone_of(user)
            first = digest.window_start.astimezone(zone).date()
            last = (digest.window_end.astimezone(zone) - timedelta(microseconds=1)).date()
            digest.subject, digest.body_text = render(user, digest.period, first, last, kept)
            digest.items = _dump(kept)
        msg = mailer.message(user, digest.subject, digest.body_text)
        db.session.commit()
    if _mail(mailer, run, digest_id, lease, msg):
        run.retried += 1


def _retry_failed(mailer: Mailer, moment: datetime, run: DigestRun) -> None:
    after = 0
    while True:
        db.session.rollback()
        rows = db.session.execute(
            select(Digest.id, Digest.email_error)
            .where(
                Digest.id > after,
                Digest.emailed_at.is_(None),
                Digest.email_error.is_not(None),
                Digest.window_end >= moment - LOOKBACK,
                Digest.window_end <= moment,
            )
            .order_by(Digest.id)
            .limit(RETRY_BATCH)
        ).all()
        db.session.rollback()
        if not rows:
            return
        after = rows[-1].id
        for digest_id, error in rows:
            if error.startswith(GAVE_UP) or _leased(error):
                continue
            try:
                _retry_one(mailer, run, digest_id, error)
            except Exception:  # one digest must not stop the others
                db.session.rollback()
                log.exception("retrying the e-mail of digest %s failed", digest_id)


# --- the pass -----------------------------------------------------------------------------------


def run_digests(moment: datetime | None = None) -> DigestRun:
    """Build and send the digests due at ``moment`` (default: now). Safe to run at any time and
    any number of times, also by several workers at once."""
    moment = (moment or now()).astimezone(UTC)
    mailer = Mailer(current_app.config)
    run = DigestRun(moment=moment, mail=mailer.enabled)
    try:
        if mailer.enabled:
            _retry_failed(mailer, moment, run)
        db.session.rollback()
        waiting = _people_waiting(moment)
        for first in range(0, len(waiting), PEOPLE_BATCH):
            db.session.rollback()
            people = _active(waiting[first : first + PEOPLE_BATCH])
            for user_id in people:
                run.people += 1
                try:
                    made = _build_for(user_id, moment, mailer, run)
                except Exception:  # one person must not stop the others; next run retries
                    db.session.rollback()
                    run.errors += 1
                    log.exception("building the digests of person %s failed", user_id)
                    continue
                for result in made:  # after the commit
                    if result.msg is None or result.lease is None:
                        continue
                    try:
                        _mail(mailer, run, result.digest_id, result.lease, result.msg)
                    except Exception:  # the lease runs out and a later run retries it
                        db.session.rollback()
                        log.exception("e-mailing digest %s failed", result.digest_id)
    finally:
        mailer.close()
        db.session.rollback()
    return run
