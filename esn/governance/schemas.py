"""Shapes of the governance records: scopes, ambitions, roadmap, evidence, documents and
acknowledgements, training, the escalation declaration and the privacy record."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints

from esn.accounts.models import Role
from esn.api.types import Cursor, Day, Id, Input, Output, Timestamp
from esn.directory.schemas import DepartmentRef
from esn.governance.models import (
    DocumentKind,
    RoadmapStatus,
    ScoredProcess,
    TrainingSource,
)

# The earliest and latest day any governance record may name: wide enough for every real
# record, narrow enough that date arithmetic never leaves the calendar.
DOCUMENT_MAX = 100_000
NOTE_MAX = 2000
LIST_MAX = 200


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http or https URL")
    if any(ch.isspace() or ch == "\x00" for ch in value):
        raise ValueError("must not contain spaces")
    return value


def _single_line(value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError("must be a single line")
    return value


Url = Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_http_url)]
Line = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_single_line)]
# A gate of the rulebook, e.g. "platforms_chosen": a short identifier.
GateKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$"),
    Field(description="A gate key of the rulebook, e.g. platforms_chosen."),
]
# A course: letters, digits, "_", "-" and "."; compared in lower case.
TrainingKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    AfterValidator(str.lower),
    Field(description="A training (course) key, e.g. social-media-basics; case-insensitive."),
]
Quarter = Annotated[
    str,
    StringConstraints(min_length=6, max_length=6, pattern=r"^[0-9]{4}Q[1-4]$"),
    Field(description="The quarter of the due date, e.g. 2027Q1."),
]
Note = Annotated[str, Field(max_length=NOTE_MAX)]


class PersonRef(Output):
    id: int
    display_name: str = Field(max_length=200)


class GroupRef(Output):
    id: int
    name: str = Field(max_length=200)
    # Active members (people, not bots).
    active_members: int
    # Tagged because the group's process is this one (not listed explicitly on the scope).
    automatic: bool = False


# --- process scopes -----------------------------------------------------------------------------


class ScopeUpdate(Input):
    """The whole scope: what is left out is emptied."""

    owner_id: Id | None = None
    audience_department_ids: list[Id] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        description="With their sub-departments. Empty (and no audience groups): everyone.",
    )
    audience_group_ids: list[Id] = Field(default_factory=list, max_length=LIST_MAX)
    tagged_group_ids: list[Id] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        description="Groups tagged besides the ones whose process is this one.",
    )


class AmbitionOut(Output):
    id: int
    process: ScoredProcess
    target_level: int
    target_date: date
    note: str = Field(max_length=NOTE_MAX)
    set_by: PersonRef | None
    set_at: datetime


class ScopeOut(Output):
    process: ScoredProcess
    owner: PersonRef | None
    audience_departments: list[DepartmentRef]
    audience_groups: list[GroupRef]
    # The groups tagged with the process: automatically (their process) or listed explicitly.
    tagged_groups: list[GroupRef]
    # Audience or tagged groups that you cannot see (secret groups you are not in): counted only.
    hidden_groups: int
    # Active, non-bot, internal people in the audience.
    audience_size: int
    ambition: AmbitionOut | None
    updated_at: datetime | None


class ScopeList(Output):
    items: list[ScopeOut]


# --- ambitions ----------------------------------------------------------------------------------


class AmbitionCreate(Input):
    process: ScoredProcess
    target_level: int = Field(ge=1, le=5)
    target_date: Day
    note: Note = ""


class ProcessQuery(Input):
    process: ScoredProcess | None = None


class AmbitionList(Output):
    items: list[AmbitionOut]


# --- roadmap ------------------------------------------------------------------------------------


class RoadmapCreate(Input):
    process: ScoredProcess
    deliverable: str = Field(min_length=1, max_length=500)
    due_on: Day
    quarter: Quarter | None = Field(None, description="Defaults to the quarter of due_on.")
    status: RoadmapStatus = RoadmapStatus.planned
    gate: GateKey | None = None
    done_at: Timestamp | None = Field(None, description="Only when done; defaults to now.")


class RoadmapUpdate(Input):
    process: ScoredProcess | None = None
    deliverable: str | None = Field(None, min_length=1, max_length=500)
    due_on: Day | None = None
    quarter: Quarter | None = None
    status: RoadmapStatus | None = None
    gate: GateKey | None = None
    done_at: Timestamp | None = None


class RoadmapOut(Output):
    id: int
    process: ScoredProcess
    deliverable: str = Field(max_length=500)
    quarter: str = Field(max_length=6)
    due_on: date
    status: RoadmapStatus
    gate: str | None = Field(max_length=64)
    done_at: datetime | None
    created_by: PersonRef | None
    created_at: datetime
    updated_at: datetime


class RoadmapQuery(Input):
    process: ScoredProcess | None = None
    status: RoadmapStatus | None = None


class RoadmapList(Output):
    items: list[RoadmapOut]


# --- evidence -----------------------------------------------------------------------------------

EvidenceStatus = Literal["pending", "approved", "expired", "withdrawn"]


class EvidenceCreate(Input):
    gate: GateKey
    process: ScoredProcess | None = Field(None, description="Empty: holds for every process.")
    link: Url | None = None
    document_ref: Line | None = Field(
        None, description="A reference to a document kept elsewhere, instead of or besides a link."
    )
    note: Note = ""
    attested_on: Day | None = Field(None, description="Defaults to today.")
    expires_on: Day | None = None


class EvidenceOut(Output):
    id: int
    gate: str = Field(max_length=64)
    process: ScoredProcess | None
    link: str | None = Field(max_length=2000)
    document_ref: str | None = Field(max_length=200)
    note: str = Field(max_length=NOTE_MAX)
    attested_by: PersonRef | None
    attested_on: date
    expires_on: date | None
    approved_by: PersonRef | None
    approved_at: datetime | None
    withdrawn_at: datetime | None
    status: EvidenceStatus


class EvidenceQuery(Input):
    process: ScoredProcess | None = None
    gate: GateKey | None = None
    include_withdrawn: bool = False


class EvidenceList(Output):
    items: list[EvidenceOut]


# --- documents ----------------------------------------------------------------------------------

DocumentStatus = Literal["draft", "published", "superseded"]


class DocumentCreate(Input):
    kind: DocumentKind
    title: Line
    body: str = Field(min_length=1, max_length=DOCUMENT_MAX, description="Markdown.")
    change_note: Note = ""
    cites_reading_id: Id | None = Field(
        None, description="The reading this revision responds to (an improvement loop)."
    )


class DocumentUpdate(Input):
    title: Line | None = None
    body: str | None = Field(None, min_length=1, max_length=DOCUMENT_MAX)
    change_note: Note | None = None
    cites_reading_id: Id | None = None


class DocumentOut(Output):
    id: int
    kind: DocumentKind
    version: int | None
    status: DocumentStatus
    title: str = Field(max_length=200)
    body: str = Field(max_length=DOCUMENT_MAX)
    body_html: str
    change_note: str = Field(max_length=NOTE_MAX)
    cites_reading_id: int | None
    author: PersonRef | None
    approver: PersonRef | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    # Governance only: how many people acknowledged this version (null for others).
    acknowledgements: int | None = None
    # When you acknowledged this version (null: not yet, or not published).
    acknowledged_at: datetime | None = None


class DocumentQuery(Input):
    kind: DocumentKind | None = None
    include_drafts: bool = True


class DocumentList(Output):
    items: list[DocumentOut]


class PendingAcknowledgement(Output):
    """A published document version the person has not acknowledged yet."""

    document_id: int
    kind: DocumentKind
    version: int
    title: str = Field(max_length=200)


# --- training -----------------------------------------------------------------------------------


class TrainingRecordCreate(Input):
    user_id: Id
    training: TrainingKey
    completed_on: Day
    expires_on: Day | None = None


class TrainingRecordOut(Output):
    id: int
    user: PersonRef
    training: str = Field(max_length=64)
    completed_on: date
    expires_on: date | None
    source: TrainingSource
    recorded_at: datetime


class TrainingRecordQuery(Input):
    user_id: Id | None = None
    training: TrainingKey | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: Cursor | None = None


class TrainingRecordPage(Output):
    items: list[TrainingRecordOut]
    next_cursor: str | None


class RequirementCreate(Input):
    process: ScoredProcess
    role: Role
    training: TrainingKey


class RequirementOut(Output):
    id: int
    process: ScoredProcess
    role: Role
    training: str = Field(max_length=64)
    created_at: datetime


class RequirementList(Output):
    items: list[RequirementOut]


class TrainingImportQuery(Input):
    dry_run: bool = False
    skip_invalid: bool = False


class TrainingImportError(Output):
    line: int
    field: str | None = Field(max_length=64)
    message: str = Field(max_length=500)


class TrainingImportReport(Output):
    dry_run: bool
    applied: bool
    rows: int
    records_created: int
    records_updated: int
    records_unchanged: int
    rows_skipped: int
    errors: list[TrainingImportError]


# --- escalation and privacy ---------------------------------------------------------------------


class EscalationDeclare(Input):
    document_link: Url
    declared_on: Day | None = Field(None, description="Defaults to today.")
    note: Note = ""


class EscalationOut(Output):
    id: int
    document_link: str = Field(max_length=2000)
    note: str = Field(max_length=NOTE_MAX)
    declared_on: date
    declared_by: PersonRef | None
    created_at: datetime


class EscalationState(Output):
    current: EscalationOut | None


class PrivacyRecordIn(Input):
    dpia_reference: Line
    works_council_consent_on: Day
    works_council_reference: Line
    note: Note = ""


class PrivacyRecordOut(Output):
    id: int
    dpia_reference: str = Field(max_length=200)
    works_council_consent_on: date
    works_council_reference: str = Field(max_length=200)
    note: str = Field(max_length=NOTE_MAX)
    recorded_by: PersonRef | None
    recorded_at: datetime


class PrivacyState(Output):
    current: PrivacyRecordOut | None
    # Whether telemetry (rollups, indicators, readings) may run.
    telemetry_allowed: bool
    reason: str | None = Field(max_length=500)
