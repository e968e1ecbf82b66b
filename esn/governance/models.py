"""The governance records: process scopes, ambitions, the roadmap, declared evidence, the
versioned policy and netiquette with their acknowledgements, training, the escalation
procedure and the privacy record.

History is kept wherever a later record replaces an earlier one (ambitions, documents,
escalation declarations, privacy records): the current one is the latest, and a reading of an
earlier moment can still find what held then (``esn.governance.queries.governance_facts``).
Readings themselves live in ``esn.governance.readings``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from esn.accounts.models import Role
from esn.clock import now
from esn.database import UTCDateTime
from esn.extensions import Base
from esn.processes import SCORED


class ScoredProcess(enum.StrEnum):
    """The business processes the maturity model scores (``esn.processes.SCORED``)."""

    marketing = "marketing"
    recruitment = "recruitment"
    innovation = "innovation"
    production = "production"
    service = "service"


assert [p.value for p in ScoredProcess] == [p.value for p in SCORED]


class ScopeGroupPurpose(enum.StrEnum):
    audience = "audience"  # the group's members are (part of) the process audience
    tagged = "tagged"  # an extra tagged space, besides the groups whose process is this one


class RoadmapStatus(enum.StrEnum):
    planned = "planned"
    in_progress = "in_progress"
    done = "done"
    dropped = "dropped"


class DocumentKind(enum.StrEnum):
    policy = "policy"  # the social-media policy
    netiquette = "netiquette"


class TrainingSource(enum.StrEnum):
    api = "api"
    import_ = "import"


def _enum(cls: type[enum.Enum], name: str, length: int = 16) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


def _process() -> Enum:
    return _enum(ScoredProcess, "scored_process")


class ProcessScope(Base):
    """Who a process is for and who owns it. A process without a row has the defaults: the
    whole organisation as audience, no owner, only the automatically tagged groups."""

    __tablename__ = "governance_process_scopes"

    process: Mapped[ScoredProcess] = mapped_column(_process(), primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class ScopeDepartment(Base):
    """An audience department of a process (its sub-departments belong to the audience too)."""

    __tablename__ = "governance_scope_departments"

    process: Mapped[ScoredProcess] = mapped_column(
        _process(),
        ForeignKey("governance_process_scopes.process", ondelete="CASCADE"),
        primary_key=True,
    )
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ScopeGroup(Base):
    """An audience group, or an explicitly tagged group, of a process."""

    __tablename__ = "governance_scope_groups"

    process: Mapped[ScoredProcess] = mapped_column(
        _process(),
        ForeignKey("governance_process_scopes.process", ondelete="CASCADE"),
        primary_key=True,
    )
    purpose: Mapped[ScopeGroupPurpose] = mapped_column(
        _enum(ScopeGroupPurpose, "scope_group_purpose"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Ambition(Base):
    """A target level for a process by a date. Never changed: a new ambition is a new row, and
    the latest one is the current ambition."""

    __tablename__ = "governance_ambitions"
    __table_args__ = (Index("ix_governance_ambitions_process_set_at", "process", "set_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process: Mapped[ScoredProcess] = mapped_column(_process())
    target_level: Mapped[int] = mapped_column(Integer)
    target_date: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(2000), default="")
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class RoadmapItem(Base):
    """A deliverable of the two-year roadmap."""

    __tablename__ = "governance_roadmap_items"
    __table_args__ = (Index("ix_governance_roadmap_items_process_due", "process", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process: Mapped[ScoredProcess] = mapped_column(_process())
    deliverable: Mapped[str] = mapped_column(String(500))
    quarter: Mapped[str] = mapped_column(String(6))  # "2027Q1": the quarter of due_on
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[RoadmapStatus] = mapped_column(_enum(RoadmapStatus, "roadmap_status"))
    # A gate key of the rulebook this item serves, e.g. "platforms_chosen".
    gate: Mapped[str | None] = mapped_column(String(64))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class Evidence(Base):
    """A declared attestation for a gate, approved by a second person (four eyes)."""

    __tablename__ = "governance_evidence"
    __table_args__ = (Index("ix_governance_evidence_gate", "gate", "process"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gate: Mapped[str] = mapped_column(String(64))
    # None: the evidence holds for every process.
    process: Mapped[ScoredProcess | None] = mapped_column(_process())
    link: Mapped[str | None] = mapped_column(String(2000))
    # A reference to a document kept elsewhere (a document-management number, a file name).
    document_ref: Mapped[str | None] = mapped_column(String(500))
    note: Mapped[str] = mapped_column(String(2000), default="")
    attested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    attested_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class Document(Base):
    """A version of the social-media policy or of the netiquette.

    A draft has no version; publishing gives it the next version number of its kind and
    records the approver, who must not be the author. A published version never changes."""

    __tablename__ = "governance_documents"
    __table_args__ = (UniqueConstraint("kind", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[DocumentKind] = mapped_column(_enum(DocumentKind, "document_kind"))
    version: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    change_note: Mapped[str] = mapped_column(String(2000), default="")
    # The reading this revision responds to ("adjusted after a reading"). A plain number: the
    # readings table belongs to the telemetry side and readings are never deleted.
    cites_reading_id: Mapped[int | None] = mapped_column(Integer)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Acknowledgement(Base):
    """A person acknowledged a published document version."""

    __tablename__ = "governance_acknowledgements"

    document_id: Mapped[int] = mapped_column(
        ForeignKey("governance_documents.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class TrainingRecord(Base):
    """A person completed a training (a course key) on a day, possibly valid until a day."""

    __tablename__ = "governance_training_records"
    __table_args__ = (UniqueConstraint("user_id", "training", "completed_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    training: Mapped[str] = mapped_column(String(64), index=True)
    completed_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    source: Mapped[TrainingSource] = mapped_column(_enum(TrainingSource, "training_source"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class TrainingRequirement(Base):
    """People of a process audience who hold ``role`` must have completed ``training``."""

    __tablename__ = "governance_training_requirements"
    __table_args__ = (UniqueConstraint("process", "role", "training"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process: Mapped[ScoredProcess] = mapped_column(_process())
    role: Mapped[Role] = mapped_column(_enum(Role, "role", length=32))
    training: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class EscalationDeclaration(Base):
    """The escalation procedure is declared (a link to it); the latest declaration is current."""

    __tablename__ = "governance_escalation_declarations"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_link: Mapped[str] = mapped_column(String(2000))
    note: Mapped[str] = mapped_column(String(2000), default="")
    declared_on: Mapped[date] = mapped_column(Date)
    declared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class PrivacyRecord(Base):
    """The data-protection impact assessment and the works council's consent; without a
    current record, telemetry does not run. The latest record is current."""

    __tablename__ = "governance_privacy_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    dpia_reference: Mapped[str] = mapped_column(String(200))
    works_council_consent_on: Mapped[date] = mapped_column(Date)
    works_council_reference: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(String(2000), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
