"""The transactional outbox: side effects written with the action, run after commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from esn.clock import system_now
from esn.database import BigId, UTCDateTime
from esn.extensions import Base


class OutboxJob(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "dead_at", "available_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=system_now)
    # Not before this time (retries back off by moving it forward).
    available_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=system_now)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A claim is a lease: another worker may take the job once ``claimed_until`` has passed.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set when the job has failed ``OUTBOX_MAX_ATTEMPTS`` times; it is kept for inspection.
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
