"""Reads of the governance records, and the facts the SMG assessment needs from them.

``process_audience`` is THE definition of a process's audience (the population E of the
brief for that process): telemetry and the governance facts both use it, so a policy share and
an indicator of the same process always count the same people.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import aliased

from esn import access
from esn.accounts.models import Role, User, UserRole
from esn.api.pagination import decode_cursor, encode_cursor
from esn.api.problems import not_found
from esn.clock import now
from esn.directory.models import Department
from esn.directory.schemas import DepartmentRef
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
)
from esn.governance.schemas import (
    AmbitionOut,
    DocumentOut,
    DocumentQuery,
    DocumentStatus,
    EscalationOut,
    EvidenceOut,
    EvidenceQuery,
    EvidenceStatus,
    GroupRef,
    PendingAcknowledgement,
    PersonRef,
    PrivacyRecordOut,
    PrivacyState,
    RoadmapOut,
    RoadmapQuery,
    ScopeOut,
    TrainingRecordOut,
    TrainingRecordQuery,
)
from esn.groups.models import Group, GroupMember
from telemetry import facts

# The roadmap gate that says the platforms of a process are chosen (implemented or planned).
PLATFORMS_GATE = "platforms_chosen"


def scored_process(value: str) -> ScoredProcess:
    """The scored process named ``value``; 404 for anything else (including "general")."""
    try:
        return ScoredProcess(value)
    except ValueError:
        raise not_found("process") from None


# --- people -------------------------------------------------------------------------------------


def people_refs(ids: Iterable[int | None]) -> dict[int, PersonRef]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = db.session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {uid: PersonRef(id=uid, display_name=name) for uid, name in rows}


def _ref(refs: dict[int, PersonRef], user_id: int | None) -> PersonRef | None:
    return refs.get(user_id) if user_id is not None else None


# --- audience and tagged groups -----------------------------------------------------------------


def _counted_people() -> ColumnElement[bool]:
    """The people telemetry counts: active, not bots, not externals."""
    return and_(User.is_active.is_(True), User.is_bot.is_(False), User.is_external.is_(False))


def process_audience(process: str) -> Select[tuple[int]]:
    """A query for the ids of the people in ``process``'s audience: the active, non-bot,
    internal people of its audience departments (with their sub-departments) or members of
    its audience groups; everyone (active, non-bot, internal) when it declares neither.

    The query reads the scope when it runs, so it may be built once and executed later, and
    embedded as a subquery (``User.id.in_(process_audience(p))``)."""
    departments = select(ScopeDepartment.department_id).where(ScopeDepartment.process == process)
    groups = select(ScopeGroup.group_id).where(
        ScopeGroup.process == process, ScopeGroup.purpose == ScopeGroupPurpose.audience
    )
    # Anonymous: the query may be embedded more than once in one statement.
    tree = select(Department.id).where(Department.id.in_(departments)).cte(recursive=True)
    child = aliased(Department)
    tree = tree.union_all(select(child.id).where(child.parent_id == tree.c.id))
    declared = or_(departments.exists(), groups.exists())
    return select(User.id).where(
        _counted_people(),
        or_(
            ~declared,
            User.department_id.in_(select(tree.c.id)),
            User.id.in_(select(GroupMember.user_id).where(GroupMember.group_id.in_(groups))),
        ),
    )


def tagged_group_ids(process: str) -> Select[tuple[int]]:
    """The unarchived groups tagged with ``process``: by their own process, or listed on the
    scope explicitly."""
    listed = select(ScopeGroup.group_id).where(
        ScopeGroup.process == process, ScopeGroup.purpose == ScopeGroupPurpose.tagged
    )
    return select(Group.id).where(
        Group.archived_at.is_(None),
        or_(Group.process == process, Group.id.in_(listed)),
    )


def active_member_counts(group_ids: list[int]) -> dict[int, int]:
    """Active, non-bot members per group (every group of ``group_ids`` is in the result)."""
    counts = dict.fromkeys(group_ids, 0)
    if not group_ids:
        return counts
    rows = db.session.execute(
        select(GroupMember.group_id, func.count())
        .join(User, User.id == GroupMember.user_id)
        .where(
            GroupMember.group_id.in_(group_ids),
            User.is_active.is_(True),
            User.is_bot.is_(False),
        )
        .group_by(GroupMember.group_id)
    )
    counts.update({gid: n for gid, n in rows})
    return counts


# --- scopes -------------------------------------------------------------------------------------


def ambition_out(ambition: Ambition, refs: dict[int, PersonRef]) -> AmbitionOut:
    return AmbitionOut(
        id=ambition.id,
        process=ambition.process,
        target_level=ambition.target_level,
        target_date=ambition.target_date,
        note=ambition.note,
        set_by=_ref(refs, ambition.set_by_id),
        set_at=ambition.set_at,
    )


def current_ambition(process: str, at: datetime | None = None) -> Ambition | None:
    stmt = select(Ambition).where(Ambition.process == process)
    if at is not None:
        stmt = stmt.where(Ambition.set_at <= at)
    return db.session.scalar(stmt.order_by(Ambition.set_at.desc(), Ambition.id.desc()).limit(1))


def list_ambitions(process: ScoredProcess | None) -> list[AmbitionOut]:
    stmt = select(Ambition)
    if process is not None:
        stmt = stmt.where(Ambition.process == process)
    ambitions = list(db.session.scalars(stmt.order_by(Ambition.set_at.desc(), Ambition.id.desc())))
    refs = people_refs(a.set_by_id for a in ambitions)
    return [ambition_out(a, refs) for a in ambitions]


def scope_out(viewer: User, process: ScoredProcess) -> ScopeOut:
    """The scope of ``process`` as ``viewer`` may see it: groups that the viewer cannot see
    are counted, never named."""
    scope = db.session.get(ProcessScope, process)
    department_rows = db.session.execute(
        select(Department.id, Department.code, Department.name)
        .join(ScopeDepartment, ScopeDepartment.department_id == Department.id)
        .where(ScopeDepartment.process == process)
        .order_by(Department.code)
    )
    departments = [DepartmentRef(id=i, code=c, name=n) for i, c, n in department_rows]
    audience_ids = list(
        db.session.scalars(
            select(ScopeGroup.group_id).where(
                ScopeGroup.process == process, ScopeGroup.purpose == ScopeGroupPurpose.audience
            )
        )
    )
    listed_tagged = set(
        db.session.scalars(
            select(ScopeGroup.group_id).where(
                ScopeGroup.process == process, ScopeGroup.purpose == ScopeGroupPurpose.tagged
            )
        )
    )
    tagged_ids = list(db.session.scalars(tagged_group_ids(process)))
    all_ids = sorted(set(audience_ids) | set(tagged_ids))
    visible = {
        g.id: g
        for g in db.session.scalars(
            select(Group).where(Group.id.in_(all_ids), access.visible_groups(viewer))
        )
    }
    counts = active_member_counts(all_ids)

    def refs_of(ids: Iterable[int], tagged: bool) -> list[GroupRef]:
        return [
            GroupRef(
                id=gid,
                name=visible[gid].name,
                active_members=counts[gid],
                automatic=tagged and gid not in listed_tagged,
            )
            for gid in sorted(ids)
            if gid in visible
        ]

    audience_size = db.session.scalar(
        select(func.count()).select_from(process_audience(process).subquery())
    )
    ambition = current_ambition(process)
    owner_id = scope.owner_id if scope is not None else None
    refs = people_refs([owner_id, ambition.set_by_id if ambition else None])
    return ScopeOut(
        process=process,
        owner=_ref(refs, owner_id),
        audience_departments=departments,
        audience_groups=refs_of(audience_ids, tagged=False),
        tagged_groups=refs_of(tagged_ids, tagged=True),
        hidden_groups=len([gid for gid in all_ids if gid not in visible]),
        audience_size=audience_size or 0,
        ambition=ambition_out(ambition, refs) if ambition else None,
        updated_at=scope.updated_at if scope is not None else None,
    )


# --- roadmap ------------------------------------------------------------------------------------


def access_roadmap_item(item_id: int) -> RoadmapItem:
    item = db.session.get(RoadmapItem, item_id)
    if item is None:
        raise not_found("roadmap item")
    return item


def roadmap_out(items: list[RoadmapItem]) -> list[RoadmapOut]:
    refs = people_refs(i.created_by_id for i in items)
    return [
        RoadmapOut(
            id=i.id,
            process=i.process,
            deliverable=i.deliverable,
            quarter=i.quarter,
            due_on=i.due_on,
            status=i.status,
            gate=i.gate,
            done_at=i.done_at,
            created_by=_ref(refs, i.created_by_id),
            created_at=i.created_at,
            updated_at=i.updated_at,
        )
        for i in items
    ]


def list_roadmap(query: RoadmapQuery) -> list[RoadmapOut]:
    stmt = select(RoadmapItem)
    if query.process is not None:
        stmt = stmt.where(RoadmapItem.process == query.process)
    if query.status is not None:
        stmt = stmt.where(RoadmapItem.status == query.status)
    items = list(db.session.scalars(stmt.order_by(RoadmapItem.due_on, RoadmapItem.id)))
    return roadmap_out(items)


# --- evidence -----------------------------------------------------------------------------------


def access_evidence(evidence_id: int) -> Evidence:
    evidence = db.session.get(Evidence, evidence_id)
    if evidence is None:
        raise not_found("evidence")
    return evidence


def evidence_status(evidence: Evidence, today: date) -> EvidenceStatus:
    if evidence.withdrawn_at is not None:
        return "withdrawn"
    if evidence.expires_on is not None and evidence.expires_on < today:
        return "expired"
    return "approved" if evidence.approved_by_id is not None else "pending"


def evidence_out(items: list[Evidence]) -> list[EvidenceOut]:
    refs = people_refs([i.attested_by_id for i in items] + [i.approved_by_id for i in items])
    today = now().date()
    return [
        EvidenceOut(
            id=e.id,
            gate=e.gate,
            process=e.process,
            link=e.link,
            document_ref=e.document_ref,
            note=e.note,
            attested_by=_ref(refs, e.attested_by_id),
            attested_on=e.attested_on,
            expires_on=e.expires_on,
            approved_by=_ref(refs, e.approved_by_id),
            approved_at=e.approved_at,
            withdrawn_at=e.withdrawn_at,
            status=evidence_status(e, today),
        )
        for e in items
    ]


def list_evidence(query: EvidenceQuery) -> list[EvidenceOut]:
    stmt = select(Evidence)
    if query.process is not None:
        stmt = stmt.where(Evidence.process == query.process)
    if query.gate is not None:
        stmt = stmt.where(Evidence.gate == query.gate)
    if not query.include_withdrawn:
        stmt = stmt.where(Evidence.withdrawn_at.is_(None))
    return evidence_out(list(db.session.scalars(stmt.order_by(Evidence.id.desc()))))


# --- documents ----------------------------------------------------------------------------------


def current_document(kind: DocumentKind, at: datetime | None = None) -> Document | None:
    """The published version of ``kind`` in force (at ``at``): the highest version number."""
    stmt = select(Document).where(Document.kind == kind, Document.published_at.is_not(None))
    if at is not None:
        stmt = stmt.where(Document.published_at <= at)
    return db.session.scalar(stmt.order_by(Document.version.desc()).limit(1))


def access_document(user: User, document_id: int) -> Document:
    """The document if ``user`` may read it: governance reads every version and draft,
    everyone else the published versions only (a draft does not exist for them)."""
    document = db.session.get(Document, document_id)
    if document is None:
        raise not_found("document")
    if access.can(user, "governance:manage"):
        return document
    if document.published_at is None or not access.can(user, "governance:acknowledge"):
        raise not_found("document")
    return document


def documents_out(viewer: User, documents: list[Document]) -> list[DocumentOut]:
    ids = [d.id for d in documents]
    refs = people_refs([d.author_id for d in documents] + [d.approver_id for d in documents])
    current = {
        kind: doc.version if (doc := current_document(kind)) is not None else None
        for kind in DocumentKind
    }
    mine: dict[int, datetime] = {}
    counts: dict[int, int] | None = None
    if ids:
        rows = db.session.execute(
            select(Acknowledgement.document_id, Acknowledgement.acknowledged_at).where(
                Acknowledgement.document_id.in_(ids), Acknowledgement.user_id == viewer.id
            )
        )
        mine = {document_id: at for document_id, at in rows}
    if access.can(viewer, "governance:manage"):
        counts = dict.fromkeys(ids, 0)
        if ids:
            for document_id, n in db.session.execute(
                select(Acknowledgement.document_id, func.count())
                .where(Acknowledgement.document_id.in_(ids))
                .group_by(Acknowledgement.document_id)
            ):
                counts[document_id] = n
    out = []
    for d in documents:
        status: DocumentStatus
        if d.published_at is None:
            status = "draft"
        elif d.version == current[d.kind]:
            status = "published"
        else:
            status = "superseded"
        out.append(
            DocumentOut(
                id=d.id,
                kind=d.kind,
                version=d.version,
                status=status,
                title=d.title,
                body=d.body,
                body_html=d.body_html,
                change_note=d.change_note,
                cites_reading_id=d.cites_reading_id,
                author=_ref(refs, d.author_id),
                approver=_ref(refs, d.approver_id),
                created_at=d.created_at,
                updated_at=d.updated_at,
                published_at=d.published_at,
                acknowledgements=counts.get(d.id) if counts is not None else None,
                acknowledged_at=mine.get(d.id),
            )
        )
    return out


def list_documents(viewer: User, query: DocumentQuery) -> list[DocumentOut]:
    stmt = select(Document)
    if query.kind is not None:
        stmt = stmt.where(Document.kind == query.kind)
    if not query.include_drafts:
        stmt = stmt.where(Document.published_at.is_not(None))
    # Drafts first (newest first), then the published versions from the newest.
    stmt = stmt.order_by(Document.kind, Document.version.is_not(None), Document.version.desc())
    return documents_out(viewer, list(db.session.scalars(stmt.order_by(Document.id.desc()))))


def current_documents() -> list[Document]:
    return [d for kind in DocumentKind if (d := current_document(kind)) is not None]


def pending_acknowledgements(user: User) -> list[PendingAcknowledgement]:
    """The current policy and netiquette versions ``user`` has not acknowledged yet: asked at
    the next sign-in after a new version is published."""
    if not access.can(user, "governance:acknowledge"):
        return []
    documents = current_documents()
    if not documents:
        return []
    done = set(
        db.session.scalars(
            select(Acknowledgement.document_id).where(
                Acknowledgement.user_id == user.id,
                Acknowledgement.document_id.in_([d.id for d in documents]),
            )
        )
    )
    return [
        PendingAcknowledgement(document_id=d.id, kind=d.kind, version=d.version or 0, title=d.title)
        for d in documents
        if d.id not in done
    ]


# --- training -----------------------------------------------------------------------------------


def access_training_record(record_id: int) -> TrainingRecord:
    record = db.session.get(TrainingRecord, record_id)
    if record is None:
        raise not_found("training record")
    return record


def access_requirement(requirement_id: int) -> TrainingRequirement:
    requirement = db.session.get(TrainingRequirement, requirement_id)
    if requirement is None:
        raise not_found("training requirement")
    return requirement


def training_records_out(records: list[TrainingRecord]) -> list[TrainingRecordOut]:
    refs = people_refs(r.user_id for r in records)
    return [
        TrainingRecordOut(
            id=r.id,
            user=refs.get(r.user_id) or PersonRef(id=r.user_id, display_name=""),
            training=r.training,
            completed_on=r.completed_on,
            expires_on=r.expires_on,
            source=r.source,
            recorded_at=r.recorded_at,
        )
        for r in records
    ]


def list_training_records(
    query: TrainingRecordQuery,
) -> tuple[list[TrainingRecordOut], str | None]:
    """Newest first (by id), one page."""
    stmt = select(TrainingRecord)
    if query.user_id is not None:
        stmt = stmt.where(TrainingRecord.user_id == query.user_id)
    if query.training is not None:
        stmt = stmt.where(TrainingRecord.training == query.training)
    if query.cursor:
        (last_id,) = decode_cursor(query.cursor, (int,))
        stmt = stmt.where(TrainingRecord.id < last_id)
    records = list(
        db.session.scalars(stmt.order_by(TrainingRecord.id.desc()).limit(query.limit + 1))
    )
    cursor = None
    if len(records) > query.limit:
        records = records[: query.limit]
        cursor = encode_cursor(records[-1].id)
    return training_records_out(records), cursor


def list_requirements(process: ScoredProcess | None) -> list[TrainingRequirement]:
    stmt = select(TrainingRequirement)
    if process is not None:
        stmt = stmt.where(TrainingRequirement.process == process)
    return list(
        db.session.scalars(
            stmt.order_by(
                TrainingRequirement.process, TrainingRequirement.role, TrainingRequirement.training
            )
        )
    )


# --- escalation and privacy ---------------------------------------------------------------------


def current_escalation(at: datetime | None = None) -> EscalationDeclaration | None:
    stmt = select(EscalationDeclaration)
    if at is not None:
        stmt = stmt.where(EscalationDeclaration.created_at <= at)
    return db.session.scalar(
        stmt.order_by(EscalationDeclaration.created_at.desc(), EscalationDeclaration.id.desc())
    )


def escalation_out(declaration: EscalationDeclaration) -> EscalationOut:
    refs = people_refs([declaration.declared_by_id])
    return EscalationOut(
        id=declaration.id,
        document_link=declaration.document_link,
        note=declaration.note,
        declared_on=declaration.declared_on,
        declared_by=_ref(refs, declaration.declared_by_id),
        created_at=declaration.created_at,
    )


def current_privacy_record(at: datetime | None = None) -> PrivacyRecord | None:
    stmt = select(PrivacyRecord)
    if at is not None:
        stmt = stmt.where(PrivacyRecord.recorded_at <= at)
    return db.session.scalar(
        stmt.order_by(PrivacyRecord.recorded_at.desc(), PrivacyRecord.id.desc()).limit(1)
    )


TELEMETRY_REFUSED = (
    "Telemetry does not run until a privacy assessment (DPIA) reference and the works "
    "council's consent are recorded (PUT /api/v1/governance/privacy)."
)


def telemetry_refusal(at: datetime | None = None) -> str | None:
    """Why telemetry may not run (at ``at``), or None when it may: the readings refuse with
    this message."""
    return TELEMETRY_REFUSED if current_privacy_record(at) is None else None


def privacy_state() -> PrivacyState:
    record = current_privacy_record()
    out = None
    if record is not None:
        refs = people_refs([record.recorded_by_id])
        out = PrivacyRecordOut(
            id=record.id,
            dpia_reference=record.dpia_reference,
            works_council_consent_on=record.works_council_consent_on,
            works_council_reference=record.works_council_reference,
            note=record.note,
            recorded_by=_ref(refs, record.recorded_by_id),
            recorded_at=record.recorded_at,
        )
    reason = telemetry_refusal()
    return PrivacyState(current=out, telemetry_allowed=reason is None, reason=reason)


# --- the facts of a reading ---------------------------------------------------------------------


def _training_counts(process: ScoredProcess, audience: set[int], day: date) -> tuple[int, int]:
    """(people of the audience whose roles require training, of those who completed every
    training their roles require, with a record valid on ``day``)."""
    wanted: dict[Role, set[str]] = defaultdict(set)
    for role, training in db.session.execute(
        select(TrainingRequirement.role, TrainingRequirement.training).where(
            TrainingRequirement.process == process
        )
    ):
        wanted[Role(role)].add(training)
    if not wanted or not audience:
        return 0, 0
    required: dict[int, set[str]] = defaultdict(set)
    for user_id, role in db.session.execute(
        select(UserRole.user_id, UserRole.role).where(
            UserRole.role.in_(list(wanted)), UserRole.user_id.in_(process_audience(process))
        )
    ):
        if user_id in audience:
            required[user_id] |= wanted[Role(role)]
    if not required:
        return 0, 0
    keys = set().union(*wanted.values())
    held: dict[int, set[str]] = defaultdict(set)
    for user_id, training in db.session.execute(
        select(TrainingRecord.user_id, TrainingRecord.training).where(
            TrainingRecord.user_id.in_(process_audience(process)),
            TrainingRecord.training.in_(keys),
            TrainingRecord.completed_on <= day,
            or_(TrainingRecord.expires_on.is_(None), TrainingRecord.expires_on >= day),
        )
    ):
        held[user_id].add(training)
    completed = sum(1 for uid, needs in required.items() if needs <= held[uid])
    return len(required), completed


def _roadmap_facts(process: ScoredProcess, at: datetime) -> tuple[int, int, int, bool]:
    day = at.date()
    items = db.session.execute(
        select(RoadmapItem.due_on, RoadmapItem.done_at, RoadmapItem.status, RoadmapItem.gate).where(
            RoadmapItem.process == process,
            RoadmapItem.created_at <= at,
            RoadmapItem.status != RoadmapStatus.dropped,
        )
    ).all()
    due = [i for i in items if i.due_on <= day]
    due_done = [i for i in due if i.done_at is not None and i.done_at <= at]
    # Every item has a due date: an item linked to the gate means the platform is chosen.
    platform = any(i.gate == PLATFORMS_GATE for i in items)
    return len(items), len(due), len(due_done), platform


def _process_facts(
    process: ScoredProcess, at: datetime, policy: Document | None
) -> facts.ProcessFacts:
    day = at.date()
    scope = db.session.get(ProcessScope, process)
    owner_id = None
    if scope is not None and scope.owner_id is not None:
        owner = db.session.get(User, scope.owner_id)
        owner_id = owner.id if owner is not None and owner.is_active else None
    group_ids = list(db.session.scalars(tagged_group_ids(process).order_by(Group.id)))
    sizes = active_member_counts(group_ids)
    ambition = current_ambition(process, at)
    items, due, due_done, platform = _roadmap_facts(process, at)
    audience = set(db.session.scalars(process_audience(process)))
    required, completed = _training_counts(process, audience, day)
    acknowledged = 0
    if policy is not None and audience:
        acknowledged = (
            db.session.scalar(
                select(func.count()).where(
                    Acknowledgement.document_id == policy.id,
                    Acknowledgement.acknowledged_at <= at,
                    Acknowledgement.user_id.in_(process_audience(process)),
                )
            )
            or 0
        )
    return facts.ProcessFacts(
        process=process.value,
        owner_id=owner_id,
        tagged_group_sizes=tuple(sizes[g] for g in group_ids),
        ambition_level=ambition.target_level if ambition else None,
        ambition_due=ambition.target_date if ambition else None,
        roadmap_items=items,
        roadmap_items_due=due,
        roadmap_items_due_done=due_done,
        platform_chosen=platform,
        training_required=required,
        training_completed=completed,
        policy_audience=len(audience),
        policy_acknowledged=acknowledged,
    )


def _evidence_facts(at: datetime) -> tuple[facts.Evidence, ...]:
    """The attestations made by ``at`` and not withdrawn by then; an approval given later does
    not count yet."""
    rows = db.session.scalars(
        select(Evidence)
        .where(
            Evidence.created_at <= at,
            or_(Evidence.withdrawn_at.is_(None), Evidence.withdrawn_at > at),
        )
        .order_by(Evidence.id)
    )
    out = []
    for e in rows:
        approved = e.approved_at is not None and e.approved_at <= at
        out.append(
            facts.Evidence(
                gate=e.gate,
                process=e.process.value if e.process is not None else None,
                link=e.link or e.document_ref or "",
                attested_by=e.attested_by_id if e.attested_by_id is not None else 0,
                approved_by=e.approved_by_id if approved else None,
                attested_on=e.attested_on,
                expires_on=e.expires_on,
            )
        )
    return tuple(out)


def governance_facts(at: datetime) -> facts.GovernanceFacts:
    """The governance records as they stood at ``at`` (an aware datetime), as the plain data
    the assessment reads. Records carry their own times (set, published, acknowledged,
    approved, done, completed), so an earlier ``at`` sees the records of then; the audience
    and the group memberships are those of now. ``last_reading_at`` is left to the readings."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    at = at.astimezone(UTC)
    policy = current_document(DocumentKind.policy, at)
    netiquette = current_document(DocumentKind.netiquette, at)
    citing = (
        db.session.scalar(
            select(func.count()).where(
                Document.kind == DocumentKind.policy,
                Document.published_at.is_not(None),
                Document.published_at <= at,
                Document.cites_reading_id.is_not(None),
            )
        )
        or 0
    )
    escalation = current_escalation(at)
    return facts.GovernanceFacts(
        privacy_recorded=current_privacy_record(at) is not None,
        policy_published=policy is not None and policy.approver_id is not None,
        netiquette_published=netiquette is not None and netiquette.approver_id is not None,
        escalation_declared=escalation is not None and escalation.declared_on <= at.date(),
        policy_revisions_citing_readings=citing,
        last_reading_at=None,
        evidence=_evidence_facts(at),
        processes={p.value: _process_facts(p, at, policy) for p in ScoredProcess},
    )
