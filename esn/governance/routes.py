"""HTTP boundary of the governance records. Governance leads and administrators read and
write them; everyone else gets 403, except for reading the published policy and netiquette
and acknowledging them, which every signed-in person does."""

from __future__ import annotations

from flask import Blueprint, request

from esn import access
from esn.accounts.auth import require_user
from esn.accounts.models import User
from esn.api.problems import Problem, reject_nulls
from esn.api.spec import operation
from esn.extensions import db
from esn.governance import actions, queries
from esn.governance.models import ScoredProcess
from esn.governance.schemas import (
    AmbitionCreate,
    AmbitionList,
    AmbitionOut,
    DocumentCreate,
    DocumentList,
    DocumentOut,
    DocumentQuery,
    DocumentUpdate,
    EscalationDeclare,
    EscalationOut,
    EscalationState,
    EvidenceCreate,
    EvidenceList,
    EvidenceOut,
    EvidenceQuery,
    PrivacyRecordIn,
    PrivacyState,
    ProcessQuery,
    RequirementCreate,
    RequirementList,
    RequirementOut,
    RoadmapCreate,
    RoadmapList,
    RoadmapOut,
    RoadmapQuery,
    RoadmapUpdate,
    ScopeList,
    ScopeOut,
    ScopeUpdate,
    TrainingImportQuery,
    TrainingImportReport,
    TrainingRecordCreate,
    TrainingRecordOut,
    TrainingRecordPage,
    TrainingRecordQuery,
)
from esn.governance.training_import import import_training

bp = Blueprint("governance", __name__, url_prefix="/api/v1/governance")
TAGS = ["governance"]
FOUR_EYES = "The approver would be the attester or author (four eyes); or it is done already."


def _governance() -> User:
    """The signed-in person if they are a governance lead or an administrator; 403 otherwise."""
    user = require_user()
    access.require(user, "governance:manage")
    return user


# --- process scopes -----------------------------------------------------------------------------


@operation(
    bp, "/scopes", "GET", summary="The scopes of the five processes", tags=TAGS, response=ScopeList
)
def list_scopes() -> ScopeList:
    """Audience, owner, tagged groups and current ambition of every scored process."""
    user = _governance()
    return ScopeList(items=[queries.scope_out(user, p) for p in ScoredProcess])


@operation(
    bp, "/scopes/<process>", "GET", summary="The scope of a process", tags=TAGS, response=ScopeOut
)
def get_scope(process: str) -> ScopeOut:
    user = _governance()
    return queries.scope_out(user, queries.scored_process(process))


@operation(
    bp,
    "/scopes/<process>",
    "PUT",
    summary="Set the scope of a process",
    tags=TAGS,
    body=ScopeUpdate,
    response=ScopeOut,
)
def put_scope(process: str, body: ScopeUpdate) -> ScopeOut:
    """Replaces owner, audience departments and groups, and the explicitly tagged groups.
    Groups whose process is this one are tagged automatically."""
    user = _governance()
    key = queries.scored_process(process)
    actions.check_update_scope(user, key, body)
    db.session.commit()
    return queries.scope_out(user, key)


# --- ambitions ----------------------------------------------------------------------------------


@operation(
    bp,
    "/ambitions",
    "GET",
    summary="Ambitions, newest first",
    tags=TAGS,
    query=ProcessQuery,
    response=AmbitionList,
)
def list_ambitions(query: ProcessQuery) -> AmbitionList:
    """The history; the first of a process is its current ambition."""
    _governance()
    return AmbitionList(items=queries.list_ambitions(query.process))


@operation(
    bp,
    "/ambitions",
    "POST",
    summary="Set a process's ambition",
    tags=TAGS,
    body=AmbitionCreate,
    response=AmbitionOut,
    status=201,
)
def create_ambition(body: AmbitionCreate) -> AmbitionOut:
    """The new ambition becomes the current one; earlier ones are kept."""
    user = _governance()
    ambition = actions.check_set_ambition(user, body)
    db.session.commit()
    return queries.ambition_out(ambition, queries.people_refs([ambition.set_by_id]))


# --- roadmap ------------------------------------------------------------------------------------


@operation(
    bp,
    "/roadmap",
    "GET",
    summary="The roadmap, by due date",
    tags=TAGS,
    query=RoadmapQuery,
    response=RoadmapList,
)
def list_roadmap(query: RoadmapQuery) -> RoadmapList:
    _governance()
    return RoadmapList(items=queries.list_roadmap(query))


@operation(
    bp,
    "/roadmap",
    "POST",
    summary="Add a roadmap item",
    tags=TAGS,
    body=RoadmapCreate,
    response=RoadmapOut,
    status=201,
)
def create_roadmap_item(body: RoadmapCreate) -> RoadmapOut:
    user = _governance()
    item = actions.check_create_roadmap_item(user, body.model_dump())
    db.session.commit()
    return queries.roadmap_out([item])[0]


@operation(
    bp,
    "/roadmap/<int:item_id>",
    "GET",
    summary="Read a roadmap item",
    tags=TAGS,
    response=RoadmapOut,
)
def get_roadmap_item(item_id: int) -> RoadmapOut:
    _governance()
    return queries.roadmap_out([queries.access_roadmap_item(item_id)])[0]


@operation(
    bp,
    "/roadmap/<int:item_id>",
    "PATCH",
    summary="Change a roadmap item",
    tags=TAGS,
    body=RoadmapUpdate,
    response=RoadmapOut,
)
def update_roadmap_item(item_id: int, body: RoadmapUpdate) -> RoadmapOut:
    """Setting the status to done records ``done_at`` (now unless given); another status
    clears it. A new due date moves the quarter along unless one is given."""
    user = _governance()
    item = queries.access_roadmap_item(item_id)
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes, nullable=frozenset({"gate"}))
    actions.check_update_roadmap_item(user, item, changes)
    db.session.commit()
    return queries.roadmap_out([item])[0]


@operation(
    bp,
    "/roadmap/<int:item_id>",
    "DELETE",
    summary="Delete a roadmap item",
    tags=TAGS,
    status=204,
)
def delete_roadmap_item(item_id: int) -> None:
    """Prefer the status ``dropped``: it keeps the history."""
    user = _governance()
    actions.do_delete_roadmap_item(user, queries.access_roadmap_item(item_id))
    db.session.commit()


# --- evidence -----------------------------------------------------------------------------------


@operation(
    bp,
    "/evidence",
    "GET",
    summary="Declared evidence, newest first",
    tags=TAGS,
    query=EvidenceQuery,
    response=EvidenceList,
)
def list_evidence(query: EvidenceQuery) -> EvidenceList:
    _governance()
    return EvidenceList(items=queries.list_evidence(query))


@operation(
    bp,
    "/evidence",
    "POST",
    summary="Attest evidence for a gate",
    tags=TAGS,
    body=EvidenceCreate,
    response=EvidenceOut,
    status=201,
)
def attest_evidence(body: EvidenceCreate) -> EvidenceOut:
    """You are the attester; someone else must approve it before it counts."""
    user = _governance()
    evidence = actions.check_attest(user, body)
    db.session.commit()
    return queries.evidence_out([evidence])[0]


@operation(
    bp,
    "/evidence/<int:evidence_id>",
    "GET",
    summary="Read declared evidence",
    tags=TAGS,
    response=EvidenceOut,
)
def get_evidence(evidence_id: int) -> EvidenceOut:
    _governance()
    return queries.evidence_out([queries.access_evidence(evidence_id)])[0]


@operation(
    bp,
    "/evidence/<int:evidence_id>/approve",
    "POST",
    summary="Approve declared evidence",
    tags=TAGS,
    response=EvidenceOut,
    responses={409: FOUR_EYES + " Also: withdrawn or expired."},
)
def approve_evidence(evidence_id: int) -> EvidenceOut:
    """Four eyes: the approver must not be the attester."""
    user = _governance()
    evidence = actions.check_approve(user, queries.access_evidence(evidence_id))
    db.session.commit()
    return queries.evidence_out([evidence])[0]


@operation(
    bp,
    "/evidence/<int:evidence_id>/withdraw",
    "POST",
    summary="Withdraw declared evidence",
    tags=TAGS,
    response=EvidenceOut,
    responses={409: "Withdrawn already."},
)
def withdraw_evidence(evidence_id: int) -> EvidenceOut:
    user = _governance()
    evidence = actions.check_withdraw(user, queries.access_evidence(evidence_id))
    db.session.commit()
    return queries.evidence_out([evidence])[0]


# --- documents ----------------------------------------------------------------------------------


@operation(
    bp,
    "/documents",
    "GET",
    summary="Policy and netiquette versions and drafts",
    tags=TAGS,
    query=DocumentQuery,
    response=DocumentList,
)
def list_documents(query: DocumentQuery) -> DocumentList:
    """Drafts first, then the published versions from the newest."""
    user = _governance()
    return DocumentList(items=queries.list_documents(user, query))


@operation(
    bp,
    "/documents",
    "POST",
    summary="Draft a new policy or netiquette version",
    tags=TAGS,
    body=DocumentCreate,
    response=DocumentOut,
    status=201,
)
def create_document(body: DocumentCreate) -> DocumentOut:
    """You are its author; another governance lead or administrator publishes it."""
    user = _governance()
    document = actions.check_create_document(user, body)
    db.session.commit()
    return queries.documents_out(user, [document])[0]


@operation(
    bp,
    "/documents/current",
    "GET",
    summary="The policy and netiquette in force",
    tags=TAGS,
    response=DocumentList,
)
def current_documents() -> DocumentList:
    """For every signed-in person: the current published version of each, with when you
    acknowledged it (null: not yet)."""
    user = require_user()
    access.require(user, "governance:acknowledge")
    return DocumentList(items=queries.documents_out(user, queries.current_documents()))


@operation(
    bp,
    "/documents/<int:document_id>",
    "GET",
    summary="Read a policy or netiquette version",
    tags=TAGS,
    response=DocumentOut,
)
def get_document(document_id: int) -> DocumentOut:
    """Published versions are readable by every signed-in person; drafts by governance only."""
    user = require_user()
    return queries.documents_out(user, [queries.access_document(user, document_id)])[0]


@operation(
    bp,
    "/documents/<int:document_id>",
    "PATCH",
    summary="Change a draft",
    tags=TAGS,
    body=DocumentUpdate,
    response=DocumentOut,
    responses={409: "The version is published: it never changes."},
)
def update_document(document_id: int, body: DocumentUpdate) -> DocumentOut:
    """Only the draft's author changes it."""
    user = _governance()
    document = queries.access_document(user, document_id)
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes, nullable=frozenset({"cites_reading_id"}))
    actions.check_update_document(user, document, changes)
    db.session.commit()
    return queries.documents_out(user, [document])[0]


@operation(
    bp,
    "/documents/<int:document_id>",
    "DELETE",
    summary="Delete a draft",
    tags=TAGS,
    status=204,
    responses={409: "The version is published: it is kept."},
)
def delete_document(document_id: int) -> None:
    user = _governance()
    actions.check_delete_document(user, queries.access_document(user, document_id))
    db.session.commit()


@operation(
    bp,
    "/documents/<int:document_id>/publish",
    "POST",
    summary="Approve and publish a draft",
    tags=TAGS,
    response=DocumentOut,
    responses={409: FOUR_EYES},
)
def publish_document(document_id: int) -> DocumentOut:
    """You approve it: you must not be its author. It becomes the next version of its kind,
    and everyone is asked to acknowledge it at their next sign-in."""
    user = _governance()
    document = actions.check_publish(user, queries.access_document(user, document_id))
    db.session.commit()
    return queries.documents_out(user, [document])[0]


@operation(
    bp,
    "/documents/<int:document_id>/acknowledge",
    "POST",
    summary="Acknowledge the policy or netiquette",
    tags=TAGS,
    response=DocumentOut,
    responses={409: "Not the version in force (a draft, or superseded)."},
)
def acknowledge_document(document_id: int) -> DocumentOut:
    """Any signed-in person, for the version in force; acknowledging again changes nothing."""
    user = require_user()
    access.require(user, "governance:acknowledge")
    document = queries.access_document(user, document_id)
    actions.check_acknowledge(user, document)
    db.session.commit()
    return queries.documents_out(user, [document])[0]


# --- training -----------------------------------------------------------------------------------


@operation(
    bp,
    "/training/records",
    "GET",
    summary="Training completions, newest first",
    tags=TAGS,
    query=TrainingRecordQuery,
    response=TrainingRecordPage,
)
def list_training_records(query: TrainingRecordQuery) -> TrainingRecordPage:
    _governance()
    items, cursor = queries.list_training_records(query)
    return TrainingRecordPage(items=items, next_cursor=cursor)


@operation(
    bp,
    "/training/records",
    "POST",
    summary="Record a training completion",
    tags=TAGS,
    body=TrainingRecordCreate,
    response=TrainingRecordOut,
    status=201,
    responses={409: "The completion is recorded already."},
)
def create_training_record(body: TrainingRecordCreate) -> TrainingRecordOut:
    user = _governance()
    record = actions.check_record_training(user, body)
    db.session.commit()
    return queries.training_records_out([record])[0]


@operation(
    bp,
    "/training/records/<int:record_id>",
    "DELETE",
    summary="Delete a training completion",
    tags=TAGS,
    status=204,
)
def delete_training_record(record_id: int) -> None:
    user = _governance()
    actions.do_delete_training_record(user, queries.access_training_record(record_id))
    db.session.commit()


@operation(
    bp,
    "/training/requirements",
    "GET",
    summary="Which roles need which training, per process",
    tags=TAGS,
    query=ProcessQuery,
    response=RequirementList,
)
def list_requirements(query: ProcessQuery) -> RequirementList:
    _governance()
    return RequirementList(
        items=[RequirementOut.model_validate(r) for r in queries.list_requirements(query.process)]
    )


@operation(
    bp,
    "/training/requirements",
    "POST",
    summary="Require a training of a role in a process",
    tags=TAGS,
    body=RequirementCreate,
    response=RequirementOut,
    status=201,
    responses={409: "The requirement exists already."},
)
def create_requirement(body: RequirementCreate) -> RequirementOut:
    """People of the process audience who hold the role must have completed the training."""
    user = _governance()
    requirement = actions.check_create_requirement(user, body)
    db.session.commit()
    return RequirementOut.model_validate(requirement)


@operation(
    bp,
    "/training/requirements/<int:requirement_id>",
    "DELETE",
    summary="Drop a training requirement",
    tags=TAGS,
    status=204,
)
def delete_requirement(requirement_id: int) -> None:
    user = _governance()
    actions.do_delete_requirement(user, queries.access_requirement(requirement_id))
    db.session.commit()


@operation(
    bp,
    "/training/imports",
    "POST",
    summary="Import training completions from CSV",
    tags=TAGS,
    query=TrainingImportQuery,
    raw_body="text/csv",
    max_body="MAX_IMPORT_BYTES",
    response=TrainingImportReport,
    responses={422: "Invalid rows (nothing written unless skip_invalid)."},
)
def import_training_records(query: TrainingImportQuery) -> TrainingImportReport:
    """The body is CSV with the columns employee_number or email, training, completed_on and
    optionally expires_on (see docs/operations.md). With ``dry_run`` nothing is written and the
    report says what would change. Invalid rows are listed with their line numbers; unless
    ``skip_invalid`` is set, nothing is written when any row is invalid."""
    user = _governance()
    if request.mimetype not in {"text/csv", "text/plain"}:
        raise Problem(
            415,
            "Unsupported Media Type",
            "Send the file as text/csv.",
            kind="unsupported-media-type",
        )
    try:
        text = request.get_data(cache=False).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(
            400, "Bad Request", "The file is not UTF-8 text.", kind="bad-encoding"
        ) from None
    report = import_training(
        text, actor=user, dry_run=query.dry_run, skip_invalid=query.skip_invalid
    )
    if report.applied:
        db.session.commit()
    else:
        db.session.rollback()
    if report.errors and not report.applied and not query.dry_run:
        raise Problem(
            422,
            "Unprocessable Content",
            f"{len(report.errors)} invalid rows; nothing was written.",
            kind="import-invalid",
            report=report.model_dump(mode="json"),
        )
    return report


# --- escalation and privacy ---------------------------------------------------------------------


@operation(
    bp,
    "/escalation",
    "GET",
    summary="The escalation procedure declaration in force",
    tags=TAGS,
    response=EscalationState,
)
def get_escalation() -> EscalationState:
    _governance()
    current = queries.current_escalation()
    return EscalationState(current=queries.escalation_out(current) if current else None)


@operation(
    bp,
    "/escalation",
    "PUT",
    summary="Declare the escalation procedure",
    tags=TAGS,
    body=EscalationDeclare,
    response=EscalationOut,
)
def declare_escalation(body: EscalationDeclare) -> EscalationOut:
    """The new declaration replaces the current one; earlier ones are kept."""
    user = _governance()
    declaration = actions.check_declare_escalation(user, body)
    db.session.commit()
    return queries.escalation_out(declaration)


@operation(
    bp,
    "/privacy",
    "GET",
    summary="The privacy record, and whether telemetry may run",
    tags=TAGS,
    response=PrivacyState,
)
def get_privacy() -> PrivacyState:
    _governance()
    return queries.privacy_state()


@operation(
    bp,
    "/privacy",
    "PUT",
    summary="Record the DPIA and the works council's consent",
    tags=TAGS,
    body=PrivacyRecordIn,
    response=PrivacyState,
)
def record_privacy(body: PrivacyRecordIn) -> PrivacyState:
    """Without this record telemetry does not run: no rollups, no indicators, no readings.
    The new record replaces the current one; earlier ones are kept."""
    user = _governance()
    actions.check_record_privacy(user, body)
    db.session.commit()
    return queries.privacy_state()
