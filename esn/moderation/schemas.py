"""Shapes of the moderation queue: raising a report, the report as its reporter and as its
handlers see it, resolving, the queue's pages and the aggregate summary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from esn.accounts.schemas import PersonRef
from esn.api.types import Cursor, Id, Input, Output
from esn.moderation.models import NOTE_MAX, REASON_MAX, Decision, ReportStatus, Severity
from esn.processes import Process
from esn.social.models import TargetType

EXCERPT_MAX = 300


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Reason = Annotated[str, Field(min_length=1, max_length=REASON_MAX), AfterValidator(_not_blank)]


class ReportCreate(Input):
    target_type: TargetType
    target_id: Id
    reason: Reason
    severity: Severity = Field(
        Severity.normal, description="Response targets: high 4 h, normal 24 h, low 72 h."
    )


class ReportReceipt(Output):
    """A report as its reporter sees it: what was reported and that it is in the queue."""

    id: int
    target_type: TargetType
    target_id: int
    post_id: int
    reason: str = Field(max_length=REASON_MAX)
    severity: Severity
    status: ReportStatus
    raised_at: datetime


class ReportOut(Output):
    """A report as moderators, administrators and governance leads see it."""

    id: int
    target_type: TargetType
    target_id: int
    post_id: int
    group_id: int | None
    process: Process
    reporter: PersonRef | None
    # The author of the reported content.
    author: PersonRef | None
    # The beginning of the reported text; null once the content is removed.
    excerpt: str | None = Field(max_length=EXCERPT_MAX)
    content_removed: bool
    reason: str = Field(max_length=REASON_MAX)
    severity: Severity
    status: ReportStatus
    raised_at: datetime
    due_at: datetime
    # Open and past its due time.
    overdue: bool
    decision: Decision | None
    note: str = Field(max_length=NOTE_MAX)
    resolved_at: datetime | None
    resolver: PersonRef | None


class ReportQuery(Input):
    status: ReportStatus | None = Field(
        None, description="open: due first; resolved, or both: newest first."
    )
    limit: int = Field(25, ge=1, le=100)
    cursor: Cursor | None = None


class ReportCounts(Output):
    open: int
    overdue: int
    resolved: int


class ReportPage(Output):
    items: list[ReportOut]
    next_cursor: str | None
    # The reports you may see, all pages together.
    counts: ReportCounts


class ReportResolve(Input):
    decision: Decision = Field(
        description="dismissed: nothing done; removed: the content is deleted; warned: recorded."
    )
    note: str = Field("", max_length=NOTE_MAX)


class ModerationSummary(Output):
    """Aggregates over the reports you may see; no names, no content."""

    window_days: int
    open: int
    overdue: int
    # Resolved within the window.
    resolved: int
    dismissed: int
    removed: int
    warned: int
    # Median hours from raised to resolved of the reports resolved in the window.
    median_resolution_hours: float | None
