"""Every write to the governance records. ``check_*`` validates and then calls ``do_*``; each
records its usage event; none commits (the route does, once)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select

from esn import access
from esn.accounts.models import User
from esn.api.problems import FieldError, Problem, conflict, forbidden, validation_problem
from esn.clock import now
from esn.directory.models import Department
from esn.extensions import db
from esn.governance.models import (
    Acknowledgement,
    Ambition,
    Document,
    DocumentKind,
    EscalationDeclaration,
    Evidence,
    PrivacyRecord,
    ProcessScope,
    RoadmapItem,
    RoadmapStatus,
    ScopeDepartment,
    ScopeGroup,
    ScopeGroupPurpose,
    ScoredProcess,
    TrainingRecord,
    TrainingRequirement,
    TrainingSource,
)
from esn.governance.queries import current_document
from esn.governance.schemas import (
    AmbitionCreate,
    DocumentCreate,
    EscalationDeclare,
    EvidenceCreate,
    PrivacyRecordIn,
    RequirementCreate,
    ScopeUpdate,
    TrainingRecordCreate,
)
from esn.groups.models import Group
from esn.social.markdown import render
from esn.usage import kinds
from esn.usage.recorder import record_usage


def _invalid(field: str, message: str) -> Problem:
    return validation_problem([FieldError(pointer=f"/{field}", location="body", message=message)])


def four_eyes(detail: str) -> Problem:
    return Problem(409, "Conflict", detail, kind="four-eyes")


def _today() -> date:
    return now().date()


def _not_in_future(value: date | None, field: str) -> None:
    if value is not None and value > _today():
        raise _invalid(field, "must not be in the future")


def _active_person(user_id: int, field: str) -> User:
    person = db.session.get(User, user_id)
    if person is None or not person.is_active:
        raise _invalid(field, "no such active person")
    return person


# --- process scopes -----------------------------------------------------------------------------


def check_update_scope(actor: User, process: ScoredProcess, body: ScopeUpdate) -> ProcessScope:
    """Replace the scope of ``process``. Departments must exist; groups must exist and be
    visible to ``actor`` (a secret group that one is not in cannot be named)."""
    if body.owner_id is not None:
        _active_person(body.owner_id, "owner_id")
    departments = sorted(set(body.audience_department_ids))
    known = set(db.session.scalars(select(Department.id).where(Department.id.in_(departments))))
    errors = [
        FieldError(
            pointer=f"/audience_department_ids/{body.audience_department_ids.index(d)}",
            location="body",
            message="no such department",
        )
        for d in departments
        if d not in known
    ]
    for field in ("audience_group_ids", "tagged_group_ids"):
        ids: list[int] = getattr(body, field)
        visible = set(
            db.session.scalars(
                select(Group.id).where(Group.id.in_(ids), access.visible_groups(actor))
            )
        )
        errors += [
            FieldError(pointer=f"/{field}/{i}", location="body", message="no such group")
            for i, gid in enumerate(ids)
            if gid not in visible
        ]
    if errors:
        raise validation_problem(errors)
    return do_update_scope(
        actor,
        process,
        owner_id=body.owner_id,
        department_ids=departments,
        audience_group_ids=sorted(set(body.audience_group_ids)),
        tagged_group_ids=sorted(set(body.tagged_group_ids)),
    )


def do_update_scope(
    actor: User,
    process: ScoredProcess,
    *,
    owner_id: int | None,
    department_ids: list[int],
    audience_group_ids: list[int],
    tagged_group_ids: list[int],
) -> ProcessScope:
    scope = db.session.get(ProcessScope, process)
    if scope is None:
        scope = ProcessScope(process=process, owner_id=None, updated_at=now())
        db.session.add(scope)
        db.session.flush()
    old_departments = sorted(
        db.session.scalars(
            select(ScopeDepartment.department_id).where(ScopeDepartment.process == process)
        )
    )
    old_groups: dict[ScopeGroupPurpose, list[int]] = {p: [] for p in ScopeGroupPurpose}
    for purpose, gid in db.session.execute(
        select(ScopeGroup.purpose, ScopeGroup.group_id)
        .where(ScopeGroup.process == process)
        .order_by(ScopeGroup.group_id)
    ):
        old_groups[ScopeGroupPurpose(purpose)].append(gid)
    changed = []
    if scope.owner_id != owner_id:
        changed.append("owner_id")
        scope.owner_id = owner_id
    if old_departments != department_ids:
        changed.append("audience_department_ids")
        db.session.execute(delete(ScopeDepartment).where(ScopeDepartment.process == process))
        if department_ids:
            db.session.execute(
                insert(ScopeDepartment),
                [{"process": process, "department_id": d} for d in department_ids],
            )
    wanted = {
        ScopeGroupPurpose.audience: audience_group_ids,
        ScopeGroupPurpose.tagged: tagged_group_ids,
    }
    for purpose, ids in wanted.items():
        if old_groups[purpose] == ids:
            continue
        changed.append(f"{purpose.value}_group_ids")
        db.session.execute(
            delete(ScopeGroup).where(ScopeGroup.process == process, ScopeGroup.purpose == purpose)
        )
        if ids:
            db.session.execute(
                insert(ScopeGroup),
                [{"process": process, "purpose": purpose, "group_id": g} for g in ids],
            )
    if changed:
        scope.updated_at = now()
        scope.updated_by_id = actor.id
        record_usage(
            kinds.GOV_SCOPE_UPDATE,
            actor,
            object_type="process_scope",
            payload={"process": process.value, "fields": changed},
        )
    db.session.flush()
    return scope


# --- ambitions ----------------------------------------------------------------------------------


def check_set_ambition(actor: User, body: AmbitionCreate) -> Ambition:
    if body.target_date < _today():
        raise _invalid("target_date", "must not be in the past")
    return do_set_ambition(actor, body.process, body.target_level, body.target_date, body.note)


def do_set_ambition(
    actor: User, process: ScoredProcess, level: int, target_date: date, note: str
) -> Ambition:
    """A new ambition for ``process``; it becomes the current one, the earlier ones stay."""
    ambition = Ambition(
        process=process,
        target_level=level,
        target_date=target_date,
        note=note,
        set_by_id=actor.id,
        set_at=now(),
    )
    db.session.add(ambition)
    db.session.flush()
    record_usage(
        kinds.GOV_AMBITION_SET,
        actor,
        object_type="ambition",
        object_id=ambition.id,
        payload={"process": process.value},
    )
    return ambition


# --- roadmap ------------------------------------------------------------------------------------


def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def _check_roadmap(fields: dict[str, Any]) -> None:
    """Check a complete item (the stored values overlaid with the changes)."""
    if fields["quarter"] != quarter_of(fields["due_on"]):
        raise _invalid(
            "quarter", f"the due date {fields['due_on']} is in {quarter_of(fields['due_on'])}"
        )
    done_at: datetime | None = fields["done_at"]
    if done_at is not None:
        if fields["status"] != RoadmapStatus.done:
            raise _invalid("done_at", "only a done item has a done_at")
        if done_at > now():
            raise _invalid("done_at", "must not be in the future")


def check_create_roadmap_item(actor: User, fields: dict[str, Any]) -> RoadmapItem:
    fields = dict(fields)
    if fields.get("quarter") is None:
        fields["quarter"] = quarter_of(fields["due_on"])
    _check_roadmap(fields)
    if fields["status"] == RoadmapStatus.done and fields.get("done_at") is None:
        fields["done_at"] = now()
    return do_create_roadmap_item(actor, fields)


def do_create_roadmap_item(actor: User, fields: dict[str, Any]) -> RoadmapItem:
    moment = now()
    item = RoadmapItem(**fields, created_by_id=actor.id, created_at=moment, updated_at=moment)
    db.session.add(item)
    db.session.flush()
    record_usage(
        kinds.GOV_ROADMAP_CREATE,
        actor,
        object_type="roadmap_item",
        object_id=item.id,
        payload={"process": item.process.value},
    )
    return item


_ROADMAP_FIELDS = ("process", "deliverable", "quarter", "due_on", "status", "gate", "done_at")


def check_update_roadmap_item(
    actor: User, item: RoadmapItem, changes: dict[str, Any]
) -> RoadmapItem:
    """Apply ``changes``. Moving the due date moves the quarter along unless a quarter is
    given; becoming done sets ``done_at`` (now, unless given); leaving done clears it."""
    merged = {k: getattr(item, k) for k in _ROADMAP_FIELDS}
    merged.update(changes)
    if "due_on" in changes and "quarter" not in changes:
        merged["quarter"] = quarter_of(merged["due_on"])
    if merged["status"] != RoadmapStatus.done and "done_at" not in changes:
        merged["done_at"] = None
    _check_roadmap(merged)
    if merged["status"] == RoadmapStatus.done and merged["done_at"] is None:
        merged["done_at"] = now()
    return do_update_roadmap_item(actor, item, merged)


def do_update_roadmap_item(actor: User, item: RoadmapItem, values: dict[str, Any]) -> RoadmapItem:
    changed = [k for k in _ROADMAP_FIELDS if getattr(item, k) != values[k]]
    for key in changed:
        setattr(item, key, values[key])
    if changed:
        item.updated_at = now()
        record_usage(
            kinds.GOV_ROADMAP_UPDATE,
            actor,
            object_type="roadmap_item",
            object_id=item.id,
            payload={"process": item.process.value, "fields": changed},
        )
    return item


def do_delete_roadmap_item(actor: User, item: RoadmapItem) -> None:
    record_usage(
        kinds.GOV_ROADMAP_DELETE,
        actor,
        object_type="roadmap_item",
        object_id=item.id,
        payload={"process": item.process.value},
    )
    db.session.delete(item)


# --- evidence -----------------------------------------------------------------------------------


def _evidence_event(kind: kinds.UsageKind, actor: User, evidence: Evidence) -> None:
    record_usage(
        kind,
        actor,
        object_type="evidence",
        object_id=evidence.id,
        payload={
            "gate": evidence.gate,
            "process": evidence.process.value if evidence.process is not None else None,
        },
    )


def check_attest(actor: User, body: EvidenceCreate) -> Evidence:
    """``actor`` attests the evidence; a different person must approve it."""
    if body.link is None and body.document_ref is None:
        raise _invalid("link", "give a link or a document_ref")
    attested_on = body.attested_on or _today()
    _not_in_future(attested_on, "attested_on")
    if body.expires_on is not None:
        if body.expires_on < attested_on:
            raise _invalid("expires_on", "must not be before attested_on")
        if body.expires_on < _today():
            raise _invalid("expires_on", "the evidence would have expired already")
    evidence = Evidence(
        gate=body.gate,
        process=body.process,
        link=body.link,
        document_ref=body.document_ref,
        note=body.note,
        attested_by_id=actor.id,
        attested_on=attested_on,
        expires_on=body.expires_on,
        created_at=now(),
    )
    db.session.add(evidence)
    db.session.flush()
    _evidence_event(kinds.GOV_EVIDENCE_ATTEST, actor, evidence)
    return evidence


def check_approve(actor: User, evidence: Evidence) -> Evidence:
    """Four eyes: the approver is a governance lead or administrator, never the attester."""
    if not access.can(actor, "governance:manage"):
        raise forbidden("Only governance leads and administrators approve evidence.")
    if evidence.withdrawn_at is not None:
        raise conflict("The evidence was withdrawn.")
    if evidence.approved_by_id is not None:
        raise conflict("The evidence is approved already.")
    if evidence.expires_on is not None and evidence.expires_on < _today():
        raise conflict("The evidence has expired; attest it anew.")
    if evidence.attested_by_id == actor.id:
        raise four_eyes("The attester cannot approve their own evidence; ask someone else.")
    evidence.approved_by_id = actor.id
    evidence.approved_at = now()
    _evidence_event(kinds.GOV_EVIDENCE_APPROVE, actor, evidence)
    return evidence


def check_withdraw(actor: User, evidence: Evidence) -> Evidence:
    if evidence.withdrawn_at is not None:
        raise conflict("The evidence was withdrawn already.")
    evidence.withdrawn_at = now()
    evidence.withdrawn_by_id = actor.id
    _evidence_event(kinds.GOV_EVIDENCE_WITHDRAW, actor, evidence)
    return evidence


# --- documents ----------------------------------------------------------------------------------


def _document_event(kind: kinds.UsageKind, actor: User, document: Document) -> None:
    record_usage(
        kind,
        actor,
        object_type="document",
        object_id=document.id,
        payload={"kind": document.kind.value, "version": document.version},
    )


def _check_reading(reading_id: int | None) -> None:
    if reading_id is None:
        return
    from esn.governance.readings import Reading  # the telemetry side's table

    if db.session.get(Reading, reading_id) is None:
        raise _invalid("cites_reading_id", "no such reading")


def check_create_document(actor: User, body: DocumentCreate) -> Document:
    """A draft of a new version; publishing gives it its version number."""
    _check_reading(body.cites_reading_id)
    moment = now()
    document = Document(
        kind=body.kind,
        version=None,
        title=body.title,
        body=body.body,
        body_html=render(body.body).html,
        change_note=body.change_note,
        cites_reading_id=body.cites_reading_id,
        author_id=actor.id,
        created_at=moment,
        updated_at=moment,
    )
    db.session.add(document)
    db.session.flush()
    _document_event(kinds.GOV_DOCUMENT_CREATE, actor, document)
    return document


def _check_draft_of(actor: User, document: Document) -> None:
    if document.published_at is not None:
        raise conflict("A published version never changes; write a new draft instead.")
    if document.author_id != actor.id:
        raise forbidden("Only the author changes a draft.")


def check_update_document(actor: User, document: Document, changes: dict[str, Any]) -> Document:
    _check_draft_of(actor, document)
    if "cites_reading_id" in changes:
        _check_reading(changes["cites_reading_id"])
    changed = [k for k, v in changes.items() if getattr(document, k) != v]
    for key in changed:
        setattr(document, key, changes[key])
    if "body" in changed:
        document.body_html = render(document.body).html
    if changed:
        document.updated_at = now()
        _document_event(kinds.GOV_DOCUMENT_EDIT, actor, document)
    return document


def check_delete_document(actor: User, document: Document) -> None:
    _check_draft_of(actor, document)
    _document_event(kinds.GOV_DOCUMENT_DELETE, actor, document)
    db.session.delete(document)


def check_publish(actor: User, document: Document) -> Document:
    """Publish a draft as the next version of its kind, approved by ``actor``, who must not
    be its author (four eyes). Everyone is asked to acknowledge it at their next sign-in."""
    if document.published_at is not None:
        raise conflict("This version is published already.")
    if document.author_id == actor.id:
        raise four_eyes("The author cannot approve their own draft; ask someone else to publish.")
    return do_publish(actor, document)


def do_publish(actor: User, document: Document) -> Document:
    latest = db.session.scalar(
        select(func.max(Document.version)).where(Document.kind == document.kind)
    )
    document.version = (latest or 0) + 1
    document.approver_id = actor.id
    document.published_at = now()
    document.updated_at = document.published_at
    db.session.flush()  # a concurrent publish of the same number fails here (unique), not later
    _document_event(kinds.GOV_DOCUMENT_PUBLISH, actor, document)
    return document


def check_acknowledge(user: User, document: Document) -> Acknowledgement:
    """``user`` acknowledges the current version of a document; acknowledging again changes
    nothing."""
    if document.published_at is None:
        raise conflict("This is a draft; only published versions are acknowledged.")
    current = current_document(DocumentKind(document.kind))
    if current is None or current.id != document.id:
        raise conflict(
            "A newer version is in force; acknowledge that one.",
            current_document_id=current.id if current is not None else None,
        )
    existing = db.session.get(Acknowledgement, (document.id, user.id))
    if existing is not None:
        return existing
    ack = Acknowledgement(document_id=document.id, user_id=user.id, acknowledged_at=now())
    db.session.add(ack)
    _document_event(kinds.GOV_DOCUMENT_ACKNOWLEDGE, user, document)
    return ack


# --- training -----------------------------------------------------------------------------------


def check_training_dates(completed_on: date, expires_on: date | None) -> tuple[str, str] | None:
    """(field, message) of what is wrong with the dates of a training record, or None."""
    if completed_on > _today():
        return "completed_on", "must not be in the future"
    if expires_on is not None and expires_on < completed_on:
        return "expires_on", "must not be before completed_on"
    return None


def check_record_training(actor: User, body: TrainingRecordCreate) -> TrainingRecord:
    if db.session.get(User, body.user_id) is None:
        raise _invalid("user_id", "no such person")
    problem = check_training_dates(body.completed_on, body.expires_on)
    if problem is not None:
        raise _invalid(*problem)
    duplicate = db.session.scalar(
        select(TrainingRecord.id).where(
            TrainingRecord.user_id == body.user_id,
            TrainingRecord.training == body.training,
            TrainingRecord.completed_on == body.completed_on,
        )
    )
    if duplicate is not None:
        raise conflict("This completion is recorded already.", record_id=duplicate)
    record = TrainingRecord(
        user_id=body.user_id,
        training=body.training,
        completed_on=body.completed_on,
        expires_on=body.expires_on,
        source=TrainingSource.api,
        recorded_by_id=actor.id,
        recorded_at=now(),
    )
    db.session.add(record)
    db.session.flush()
    record_usage(
        kinds.GOV_TRAINING_RECORD,
        actor,
        object_type="training_record",
        object_id=record.id,
        payload={"training": record.training},
    )
    return record


def do_delete_training_record(actor: User, record: TrainingRecord) -> None:
    record_usage(
        kinds.GOV_TRAINING_DELETE,
        actor,
        object_type="training_record",
        object_id=record.id,
        payload={"training": record.training},
    )
    db.session.delete(record)


def check_create_requirement(actor: User, body: RequirementCreate) -> TrainingRequirement:
    duplicate = db.session.scalar(
        select(TrainingRequirement.id).where(
            TrainingRequirement.process == body.process,
            TrainingRequirement.role == body.role,
            TrainingRequirement.training == body.training,
        )
    )
    if duplicate is not None:
        raise conflict("This requirement exists already.", requirement_id=duplicate)
    requirement = TrainingRequirement(
        process=body.process,
        role=body.role,
        training=body.training,
        created_by_id=actor.id,
        created_at=now(),
    )
    db.session.add(requirement)
    db.session.flush()
    record_usage(
        kinds.GOV_REQUIREMENT_CREATE,
        actor,
        object_type="training_requirement",
        object_id=requirement.id,
        payload={"process": body.process.value},
    )
    return requirement


def do_delete_requirement(actor: User, requirement: TrainingRequirement) -> None:
    record_usage(
        kinds.GOV_REQUIREMENT_DELETE,
        actor,
        object_type="training_requirement",
        object_id=requirement.id,
        payload={"process": requirement.process.value},
    )
    db.session.delete(requirement)


# --- escalation and privacy ---------------------------------------------------------------------


def check_declare_escalation(actor: User, body: EscalationDeclare) -> EscalationDeclaration:
    declared_on = body.declared_on or _today()
    _not_in_future(declared_on, "declared_on")
    declaration = EscalationDeclaration(
        document_link=body.document_link,
        note=body.note,
        declared_on=declared_on,
        declared_by_id=actor.id,
        created_at=now(),
    )
    db.session.add(declaration)
    db.session.flush()
    record_usage(
        kinds.GOV_ESCALATION_DECLARE,
        actor,
        object_type="escalation_declaration",
        object_id=declaration.id,
    )
    return declaration


def check_record_privacy(actor: User, body: PrivacyRecordIn) -> PrivacyRecord:
    """Record the DPIA reference and the works council's consent (given, so not in the
    future); from now on telemetry may run."""
    _not_in_future(body.works_council_consent_on, "works_council_consent_on")
    record = PrivacyRecord(
        dpia_reference=body.dpia_reference,
        works_council_consent_on=body.works_council_consent_on,
        works_council_reference=body.works_council_reference,
        note=body.note,
        recorded_by_id=actor.id,
        recorded_at=now(),
    )
    db.session.add(record)
    db.session.flush()
    record_usage(kinds.GOV_PRIVACY_RECORD, actor, object_type="privacy_record", object_id=record.id)
    return record
