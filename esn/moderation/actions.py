"""Every write of the moderation queue: raising a report and resolving it. Each records its
usage event (``moderation:report:raise`` / ``moderation:report:resolve``, the input of R4).

Restoring removed content and reopening a resolved report are left out (docs/api.md).
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select

from esn import access
from esn.accounts.models import User
from esn.api.problems import FieldError, Problem, conflict, forbidden, validation_problem
from esn.clock import now
from esn.extensions import db
from esn.moderation.models import (
    NOTE_MAX,
    REASON_MAX,
    Decision,
    ModerationReport,
    ReportStatus,
    Severity,
    due_at,
)
from esn.social import actions as social_actions
from esn.social.models import Comment, Post, TargetType
from esn.social.queries import access_comment, access_post
from esn.usage import kinds
from esn.usage.recorder import record_usage

E = TypeVar("E", TargetType, Severity, Decision)


def _invalid(field: str, message: str) -> Problem:
    return validation_problem([FieldError(pointer=f"/{field}", location="body", message=message)])


def _choice(cls: type[E], field: str, value: str) -> E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise _invalid(field, f"must be one of {allowed}") from None


def _target(user: User, target_type: TargetType, target_id: int) -> tuple[Post, Comment | None]:
    """The reported post (and comment) if ``user`` may read it; 404 otherwise."""
    if target_type == TargetType.comment:
        comment, post = access_comment(user, target_id)
        return post, comment
    return access_post(user, target_id), None


def check_raise_report(
    user: User, target_type: str, target_id: int, reason: str, severity: str = "normal"
) -> ModerationReport:
    """Report a post or a comment. 422 for an unknown target type or severity, a blank or
    over-long reason, or one's own content; 404 when ``user`` may not read the content (its
    existence is private too); 409 when ``user`` already has an open report on it."""
    kind = _choice(TargetType, "target_type", target_type)
    level = _choice(Severity, "severity", severity)
    text = reason.strip()
    if not text:
        raise _invalid("reason", "must not be blank")
    if len(reason) > REASON_MAX:
        raise _invalid("reason", f"must be at most {REASON_MAX} characters")
    post, comment = _target(user, kind, target_id)
    author_id = comment.author_id if comment is not None else post.author_id
    if author_id == user.id:
        raise _invalid("target_id", "you cannot report your own content")
    duplicate = db.session.scalar(
        select(ModerationReport.id).where(
            ModerationReport.reporter_id == user.id,
            ModerationReport.target_type == kind,
            ModerationReport.target_id == target_id,
            ModerationReport.status == ReportStatus.open,
        )
    )
    if duplicate is not None:
        raise conflict("You have reported this already; it is in the queue.", report_id=duplicate)
    return do_raise_report(user, post, comment, text, level)


def do_raise_report(
    user: User, post: Post, comment: Comment | None, reason: str, severity: Severity
) -> ModerationReport:
    raised = now()
    report = ModerationReport(
        target_type=TargetType.comment if comment is not None else TargetType.post,
        target_id=comment.id if comment is not None else post.id,
        post_id=post.id,
        group_id=post.group_id,
        process=post.process,
        reporter_id=user.id,
        reason=reason,
        severity=severity,
        status=ReportStatus.open,
        note="",
        raised_at=raised,
        due_at=due_at(raised, severity),
    )
    db.session.add(report)
    db.session.flush()
    record_usage(
        kinds.REPORT_RAISE,
        user,
        object_type="report",
        object_id=report.id,
        owner_id=comment.author_id if comment is not None else post.author_id,
        group_id=post.group_id,
        process=post.process.value,
        thread_root_id=post.id,
        payload={"target": report.target_type.value, "severity": severity.value},
        at=raised,
    )
    return report


def reported_content(report: ModerationReport) -> tuple[Post, Comment | None]:
    """The reported post (and comment), deleted or not."""
    post = db.session.get(Post, report.post_id)
    assert post is not None  # the foreign key cascades
    comment = (
        db.session.get(Comment, report.target_id)
        if report.target_type == TargetType.comment
        else None
    )
    return post, comment


def check_resolve_report(
    moderator: User, report: ModerationReport, decision: str, note: str = ""
) -> ModerationReport:
    """Resolve an open report. 403 unless ``moderator`` is a moderator or an administrator; 404
    when they may not read the reported thread; 422 for an unknown decision or an over-long
    note; 409 when the report is resolved already. ``removed`` deletes the content through the
    social actions (which record their own events); ``dismissed`` and ``warned`` change no
    content."""
    if not access.can(moderator, "moderation:handle"):
        raise forbidden("Only moderators and administrators resolve reports.")
    post, comment = reported_content(report)
    access.require(moderator, "report:read", (report, post), hide=True)
    outcome = _choice(Decision, "decision", decision)
    if len(note) > NOTE_MAX:
        raise _invalid("note", f"must be at most {NOTE_MAX} characters")
    if report.status != ReportStatus.open:
        raise conflict("The report is resolved already.")
    return do_resolve_report(moderator, report, post, comment, outcome, note.strip())


def do_resolve_report(
    moderator: User,
    report: ModerationReport,
    post: Post,
    comment: Comment | None,
    decision: Decision,
    note: str,
) -> ModerationReport:
    if decision == Decision.removed:
        if comment is not None:
            social_actions.do_delete_comment(moderator, post, comment)
        else:
            social_actions.do_delete_post(moderator, post)
    resolved = now()
    report.status = ReportStatus.resolved
    report.decision = decision
    report.note = note
    report.resolved_at = resolved
    report.resolver_id = moderator.id
    record_usage(
        kinds.REPORT_RESOLVE,
        moderator,
        object_type="report",
        object_id=report.id,
        owner_id=comment.author_id if comment is not None else post.author_id,
        group_id=report.group_id,
        process=report.process.value,
        thread_root_id=report.post_id,
        payload={"decision": decision.value},
        at=resolved,
    )
    return report
