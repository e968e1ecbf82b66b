"""Departments and the history of who belonged to which department when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from esn.clock import now
from esn.database import UTCDateTime
from esn.extensions import Base


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)

    parent: Mapped[Department | None] = relationship(remote_side=[id], lazy="raise")


class DepartmentAssignment(Base):
    """One stretch of a person's membership of a department; ``ended_at`` is open for the current.

    Telemetry needs the department *at the time of an action*; the usage log stores it on every
    event, and this history answers the same question for times without events (populations).
    """

    __tablename__ = "department_assignments"
    __table_args__ = (Index("ix_department_assignments_user_started", "user_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
