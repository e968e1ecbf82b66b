"""Readings ("thermometer" snapshots): every indicator and every process's assessment frozen
together with the definitions and thresholds versions they were computed with."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from esn.database import UTCDateTime
from esn.extensions import Base


class Reading(Base):
    __tablename__ = "governance_readings"
    __table_args__ = (Index("ix_governance_readings_taken_at", "taken_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The last complete day the reading measures (its window ends there).
    measured_through: Mapped[date] = mapped_column()
    definitions_version: Mapped[str] = mapped_column(String(64))
    thresholds_version: Mapped[str] = mapped_column(String(64))
    taken_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16))  # manual | schedule
    # {"indicators": {scope: [...]}, "processes": [...]}: the frozen figures.
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The governance facts the assessment used, so the reading can be reproduced.
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- taking, reading and comparing readings ---------------------------------------------------

READING_WINDOW = 90  # days of the indicators frozen per scope (the gates use their own windows)


def _facts_json(value: Any) -> Any:
    """Dataclasses, dates and tuples as JSON values (the facts are stored with the reading)."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _facts_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _facts_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_facts_json(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def compute_reading(at: date, facts: Any, rulebook: Any) -> dict[str, Any]:
    """The content of a reading measured through ``at``: the indicators of the organisation and
    of each scored process over ``READING_WINDOW`` days, and each process's assessment."""
    from esn.governance.measure import Scope, measure, measurer
    from esn.processes import SCORED
    from telemetry.assessment import assess

    indicators: dict[str, Any] = {}
    processes = []
    for scope in [Scope("org"), *(Scope("process", p.value) for p in SCORED)]:
        population, values = measure(scope, at, READING_WINDOW)
        indicators[scope.name] = {
            "population": population,
            "window_days": READING_WINDOW,
            "indicators": [values[k].public() for k in _indicator_keys()],
        }
        if scope.kind == "process":
            assert scope.key is not None
            result = assess(scope.key, measurer(scope, at), facts, rulebook, at)
            processes.append(result.public())
    return {"indicators": indicators, "processes": processes}


def _indicator_keys() -> list[str]:
    from telemetry.indicators import INDICATORS

    return list(INDICATORS)
