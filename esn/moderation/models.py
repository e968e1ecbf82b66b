"""The moderation queue: reports raised on posts and comments, and how moderators resolved them.

A report keeps its thread (``post_id``), group and process as they were when it was raised, so
the queue can be filtered by the access policy (``esn.access.visible_reports``) and telemetry
can attribute it to a process. The reported content itself is never copied here: removing it is
a soft delete through the social actions, and the report stays as the record of the decision.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from esn.clock import now
from esn.database import BigId, UTCDateTime, enum_column
from esn.extensions import Base
from esn.processes import Process
from esn.social.models import TargetType


class Severity(enum.StrEnum):
    low = "low"
    normal = "normal"
    high = "high"


class ReportStatus(enum.StrEnum):
    open = "open"
    resolved = "resolved"


class Decision(enum.StrEnum):
    dismissed = "dismissed"  # nothing wrong: the content stays
    removed = "removed"  # the content is deleted (social:post:delete / social:comment:delete)
    warned = "warned"  # the content stays; the author was warned (recorded, nothing else)


# The response target of each severity: a report is due this long after it was raised.
RESPONSE_TARGETS: dict[Severity, timedelta] = {
    Severity.high: timedelta(hours=4),
    Severity.normal: timedelta(hours=24),
    Severity.low: timedelta(hours=72),
}

REASON_MAX = 1000
NOTE_MAX = 2000


def due_at(raised_at: datetime, severity: Severity) -> datetime:
    """When a report of ``severity`` raised at ``raised_at`` should be resolved."""
    return raised_at + RESPONSE_TARGETS[severity]


_OPEN = text("status = 'open'")


class ModerationReport(Base):
    __tablename__ = "moderation_reports"
    __table_args__ = (
        # The open queue reads due first; the resolved one newest first.
        Index("ix_moderation_reports_status_due", "status", "due_at", "id"),
        Index("ix_moderation_reports_status_resolved", "status", "resolved_at", "id"),
        Index("ix_moderation_reports_target", "target_type", "target_id"),
        # One open report per person per target; a concurrent duplicate fails here (409).
        Index(
            "uq_moderation_reports_open",
            "reporter_id",
            "target_type",
            "target_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target_type: Mapped[TargetType] = mapped_column(enum_column(TargetType, "report_target_type"))
    target_id: Mapped[int] = mapped_column(BigInteger)
    # The thread: the post itself, or the post the comment is on.
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), index=True
    )
    process: Mapped[Process] = mapped_column(enum_column(Process, "report_process"))
    reporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reason: Mapped[str] = mapped_column(String(REASON_MAX))
    severity: Mapped[Severity] = mapped_column(enum_column(Severity, "report_severity"))
    status: Mapped[ReportStatus] = mapped_column(
        enum_column(ReportStatus, "report_status"), default=ReportStatus.open
    )
    decision: Mapped[Decision | None] = mapped_column(enum_column(Decision, "report_decision"))
    note: Mapped[str] = mapped_column(String(NOTE_MAX), default="")
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    # raised_at + the severity's response target (RESPONSE_TARGETS); stored to sort the queue.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
