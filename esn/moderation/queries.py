"""Reads of the moderation queue, all through the access policy: ``access.can(user,
"report:read", …)`` for one report, ``access.visible_reports`` for lists, counts and the
summary, so that no list or figure shows a report the object check refuses."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from esn import access
from esn.accounts.models import User
from esn.api.pagination import decode_cursor, encode_cursor
from esn.api.problems import Problem, not_found
from esn.clock import now
from esn.extensions import db
from esn.moderation.models import Decision, ModerationReport, ReportStatus
from esn.moderation.schemas import (
    EXCERPT_MAX,
    ModerationSummary,
    ReportCounts,
    ReportOut,
    ReportQuery,
    ReportReceipt,
)
from esn.social.models import Comment, Post, TargetType
from esn.social.queries import people_refs

SUMMARY_DAYS = 90


def access_report(user: User, report_id: int) -> ModerationReport:
    """The report if ``user`` may read it (a handler or governance lead who may read the
    reported thread); 404 otherwise, never 403."""
    report = db.session.get(ModerationReport, report_id)
    post = db.session.get(Post, report.post_id) if report is not None else None
    if report is None or post is None or not access.can(user, "report:read", (report, post)):
        raise not_found("report")
    return report


def receipt_out(report: ModerationReport) -> ReportReceipt:
    return ReportReceipt.model_validate(report)


def reports_out(reports: list[ModerationReport]) -> list[ReportOut]:
    """Handlers' view of ``reports``, with a fixed number of queries."""
    post_ids = {r.post_id for r in reports}
    comment_ids = {r.target_id for r in reports if r.target_type == TargetType.comment}
    posts = (
        {p.id: p for p in db.session.scalars(select(Post).where(Post.id.in_(post_ids)))}
        if post_ids
        else {}
    )
    comments = (
        {c.id: c for c in db.session.scalars(select(Comment).where(Comment.id.in_(comment_ids)))}
        if comment_ids
        else {}
    )
    content: dict[int, Post | Comment | None] = {
        r.id: comments.get(r.target_id)
        if r.target_type == TargetType.comment
        else posts.get(r.post_id)
        for r in reports
    }
    people: set[int] = set()
    for r in reports:
        people |= {i for i in (r.reporter_id, r.resolver_id) if i is not None}
        item = content[r.id]
        if item is not None:
            people.add(item.author_id)
    refs = people_refs(people)
    moment = now()
    out = []
    for r in reports:
        item = content[r.id]
        removed = item is None or item.deleted_at is not None
        out.append(
            ReportOut(
                id=r.id,
                target_type=r.target_type,
                target_id=r.target_id,
                post_id=r.post_id,
                group_id=r.group_id,
                process=r.process,
                reporter=refs.get(r.reporter_id) if r.reporter_id is not None else None,
                author=refs.get(item.author_id) if item is not None else None,
                excerpt=None if removed or item is None else item.body[:EXCERPT_MAX],
                content_removed=removed,
                reason=r.reason,
                severity=r.severity,
                status=r.status,
                raised_at=r.raised_at,
                due_at=r.due_at,
                overdue=r.status == ReportStatus.open and r.due_at < moment,
                decision=r.decision,
                note=r.note,
                resolved_at=r.resolved_at,
                resolver=refs.get(r.resolver_id) if r.resolver_id is not None else None,
            )
        )
    return out


def _cursor_key(cursor: str | None) -> tuple[datetime, int] | None:
    """The (time, id) of the last report of the previous page; 400 if forged."""
    if not cursor:
        return None
    stamp, last_id = decode_cursor(cursor, (str, int))
    try:
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            raise ValueError(stamp)
        return when.astimezone(UTC), last_id
    except (ValueError, OverflowError):
        raise Problem(
            400, "Bad Request", "The cursor is not valid.", kind="invalid-cursor"
        ) from None


def list_reports(user: User, query: ReportQuery) -> tuple[list[ModerationReport], str | None]:
    """One page of the reports ``user`` may see: open ones due first, otherwise newest first
    (resolved ones by resolution time, all of them by raising time)."""
    stmt = select(ModerationReport).where(access.visible_reports(user))
    if query.status is not None:
        stmt = stmt.where(ModerationReport.status == query.status)
    key = _cursor_key(query.cursor)
    column: Any
    if query.status == ReportStatus.open:
        column = ModerationReport.due_at
        if key is not None:
            when, last = key
            stmt = stmt.where(or_(column > when, and_(column == when, ModerationReport.id > last)))
        stmt = stmt.order_by(column, ModerationReport.id)
    else:
        column = (
            ModerationReport.resolved_at
            if query.status == ReportStatus.resolved
            else ModerationReport.raised_at
        )
        if key is not None:
            when, last = key
            stmt = stmt.where(or_(column < when, and_(column == when, ModerationReport.id < last)))
        stmt = stmt.order_by(column.desc(), ModerationReport.id.desc())
    reports = list(db.session.scalars(stmt.limit(query.limit + 1)))
    cursor = None
    if len(reports) > query.limit:
        reports = reports[: query.limit]
        last_report = reports[-1]
        stamp = (
            last_report.due_at
            if query.status == ReportStatus.open
            else last_report.resolved_at
            if query.status == ReportStatus.resolved
            else last_report.raised_at
        )
        assert stamp is not None
        cursor = encode_cursor(stamp.isoformat(), last_report.id)
    return reports, cursor


def _one_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def report_counts(user: User) -> ReportCounts:
    """Open, overdue and resolved reports among those ``user`` may see."""
    is_open = ModerationReport.status == ReportStatus.open
    row = db.session.execute(
        select(
            _one_if(is_open),
            _one_if(and_(is_open, ModerationReport.due_at < now())),
            _one_if(ModerationReport.status == ReportStatus.resolved),
        ).where(access.visible_reports(user))
    ).one()
    return ReportCounts(open=int(row[0]), overdue=int(row[1]), resolved=int(row[2]))


def summary(user: User) -> ModerationSummary:
    """Aggregates over the reports ``user`` may see: what is open and overdue now, and what
    was resolved in the last ``SUMMARY_DAYS`` days and how fast (median hours)."""
    counts = report_counts(user)
    since = now() - timedelta(days=SUMMARY_DAYS)
    rows = db.session.execute(
        select(
            ModerationReport.decision, ModerationReport.raised_at, ModerationReport.resolved_at
        ).where(
            access.visible_reports(user),
            ModerationReport.status == ReportStatus.resolved,
            ModerationReport.resolved_at >= since,
        )
    ).all()
    hours = [
        (resolved - raised).total_seconds() / 3600
        for _, raised, resolved in rows
        if resolved is not None
    ]
    decided = {d: sum(1 for row in rows if row[0] == d) for d in Decision}
    return ModerationSummary(
        window_days=SUMMARY_DAYS,
        open=counts.open,
        overdue=counts.overdue,
        resolved=len(rows),
        dismissed=decided[Decision.dismissed],
        removed=decided[Decision.removed],
        warned=decided[Decision.warned],
        median_resolution_hours=round(statistics.median(hours), 2) if hours else None,
    )
