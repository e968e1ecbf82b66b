"""The usage event log: append-only, telemetry's only input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from esn.database import BigId, UTCDateTime
from esn.extensions import Base


class UsageEvent(Base):
    """One thing that happened. Ids are plain numbers without foreign keys on purpose: the log
    must outlive deleted content and never block or cascade a delete."""

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_events_occurred_at", "occurred_at"),
        Index("ix_usage_events_kind_occurred_at", "kind", "occurred_at"),
        Index("ix_usage_events_actor_occurred_at", "actor_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    # The actor's department at the moment of the event.
    actor_department_id: Mapped[int | None] = mapped_column(Integer)
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[int | None] = mapped_column(BigInteger)
    # The person whose content is answered, reacted to or mentioned (ties for telemetry).
    owner_id: Mapped[int | None] = mapped_column(Integer)
    group_id: Mapped[int | None] = mapped_column(Integer)
    process: Mapped[str | None] = mapped_column(String(32))
    thread_root_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
