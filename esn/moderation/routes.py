"""HTTP boundary of the moderation queue. Every signed-in person may report what they can
read; moderators and administrators resolve; governance leads read the queue and its summary.
Which reports anyone sees is the access policy's ``report:read`` (``access.visible_reports``)."""

from __future__ import annotations

from flask import Blueprint

from esn import access
from esn.accounts.auth import require_user
from esn.accounts.models import User
from esn.api.spec import operation
from esn.extensions import db
from esn.moderation import actions, queries
from esn.moderation.schemas import (
    ModerationSummary,
    ReportCreate,
    ReportOut,
    ReportPage,
    ReportQuery,
    ReportReceipt,
    ReportResolve,
)

bp = Blueprint("moderation", __name__, url_prefix="/api/v1")
TAGS = ["moderation"]


def _reader() -> User:
    """The signed-in person if they may read the queue (moderators, administrators, governance
    leads); 403 otherwise."""
    user = require_user()
    access.require(user, "moderation:read")
    return user


@operation(
    bp,
    "/reports",
    "POST",
    summary="Report a post or a comment",
    tags=TAGS,
    body=ReportCreate,
    response=ReportReceipt,
    status=201,
    responses={409: "You have an open report on this content already."},
)
def raise_report(body: ReportCreate) -> ReportReceipt:
    """Content you cannot read is a 404; your own content is a 422."""
    user = require_user()
    report = actions.check_raise_report(
        user, body.target_type.value, body.target_id, body.reason, body.severity.value
    )
    db.session.commit()
    return queries.receipt_out(report)


@operation(
    bp,
    "/moderation/reports",
    "GET",
    summary="The moderation queue",
    tags=TAGS,
    query=ReportQuery,
    response=ReportPage,
)
def list_reports(query: ReportQuery) -> ReportPage:
    """Only reports about content you may read are listed or counted."""
    user = _reader()
    reports, cursor = queries.list_reports(user, query)
    return ReportPage(
        items=queries.reports_out(reports),
        next_cursor=cursor,
        counts=queries.report_counts(user),
    )


@operation(
    bp,
    "/moderation/summary",
    "GET",
    summary="Moderation figures of the last 90 days",
    tags=TAGS,
    response=ModerationSummary,
)
def moderation_summary() -> ModerationSummary:
    """Aggregates only: no names, no content."""
    user = _reader()
    return queries.summary(user)


@operation(
    bp,
    "/moderation/reports/<int:report_id>",
    "GET",
    summary="Read a report",
    tags=TAGS,
    response=ReportOut,
)
def get_report(report_id: int) -> ReportOut:
    user = _reader()
    return queries.reports_out([queries.access_report(user, report_id)])[0]


@operation(
    bp,
    "/moderation/reports/<int:report_id>/resolve",
    "POST",
    summary="Resolve a report",
    tags=TAGS,
    body=ReportResolve,
    response=ReportOut,
    responses={409: "The report is resolved already."},
)
def resolve_report(report_id: int, body: ReportResolve) -> ReportOut:
    """Moderators and administrators; governance leads read but do not resolve (403).
    ``removed`` deletes the reported content."""
    user = _reader()
    report = queries.access_report(user, report_id)
    actions.check_resolve_report(user, report, body.decision.value, body.note)
    db.session.commit()
    return queries.reports_out([report])[0]
