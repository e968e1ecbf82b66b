"""``governance_facts`` and ``process_audience`` on a small fixed world, built over six weeks
with the actions themselves, checked against values counted by hand — now and at an earlier
moment (the records carry their own times, so an earlier reading sees the records of then)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from esn.accounts.actions import do_deactivate_user
from esn.accounts.models import User
from esn.clock import frozen_at
from esn.directory.actions import do_create_department
from esn.extensions import db
from esn.governance import actions
from esn.governance.models import (
    Document,
    DocumentKind,
    RoadmapStatus,
    ScoredProcess,
    TrainingRecord,
    TrainingSource,
)
from esn.governance.queries import access_roadmap_item, governance_facts, process_audience
from esn.governance.schemas import (
    DocumentCreate,
    EscalationDeclare,
    EvidenceCreate,
    PrivacyRecordIn,
    RequirementCreate,
)
from esn.groups.actions import do_archive_group, do_create_group, do_join
from esn.groups.models import Group, JoinPolicy, Visibility
from esn.processes import Process
from telemetry.facts import Evidence, GovernanceFacts, ProcessFacts
from tests.conftest import make_user

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


@dataclass
class World:
    lead: User
    lead2: User
    s1: User
    s2: User
    s3: User
    r1: User
    r2: User
    marketing_group: Group
    extra_group: Group


def _group(actor: User, name: str, process: Process, members: list[User]) -> Group:
    group = do_create_group(
        actor,
        {
            "name": name,
            "process": process,
            "visibility": Visibility.public,
            "join_policy": JoinPolicy.open,
        },
    )
    for person in members:
        do_join(person, group)
    db.session.commit()
    return group


def _record(user: User, training: str, completed: date, expires: date | None = None) -> None:
    db.session.add(
        TrainingRecord(
            user_id=user.id,
            training=training,
            completed_on=completed,
            expires_on=expires,
            source=TrainingSource.api,
            recorded_at=days(-40),
        )
    )
    db.session.commit()


def _roadmap(actor: User, process: str, due: date, **fields: object) -> int:
    item = actions.check_create_roadmap_item(
        actor,
        {
            "process": ScoredProcess(process),
            "deliverable": f"Deliver by {due}",
            "due_on": due,
            "quarter": None,
            "status": fields.pop("status", RoadmapStatus.planned),
            "gate": fields.pop("gate", None),
            "done_at": None,
        },
    )
    db.session.commit()
    return item.id


@pytest.fixture
def world(app: Flask) -> World:
    with frozen_at(days(-40)) as clock:
        sales = do_create_department(None, "SALES", "Sales", None)
        sales_nl = do_create_department(None, "SALES.NL", "Sales NL", sales.id)
        rnd = do_create_department(None, "RND", "Research", None)
        db.session.commit()
        lead = make_user("lead@example.org", roles=["employee", "governance_lead"])
        lead2 = make_user("lead2@example.org", roles=["employee", "governance_lead"])
        lead.department_id = lead2.department_id = rnd.id
        db.session.commit()
        s1 = make_user("s1@example.org", department_id=sales.id)
        s2 = make_user("s2@example.org", department_id=sales.id, roles=["employee", "moderator"])
        s3 = make_user("s3@example.org", department_id=sales_nl.id)
        s4 = make_user("s4@example.org", department_id=sales_nl.id, is_external=True)
        s5 = make_user("s5@example.org", department_id=sales.id, is_bot=True)
        s6 = make_user("s6@example.org", department_id=sales.id)
        do_deactivate_user(None, s6)
        db.session.commit()
        r1 = make_user("r1@example.org", department_id=rnd.id)
        r2 = make_user("r2@example.org", department_id=rnd.id)

        marketing_group = _group(s1, "Campaigns", Process.marketing, [s2, s3, s5])
        extra_group = _group(r2, "Brand", Process.general, [s4])
        audience_group = _group(r1, "Agency", Process.general, [])
        old = _group(s2, "Old campaigns", Process.marketing, [])
        do_archive_group(s2, old)
        db.session.commit()

        actions.do_update_scope(
            lead,
            ScoredProcess.marketing,
            owner_id=s1.id,
            department_ids=[sales.id],
            audience_group_ids=[audience_group.id],
            tagged_group_ids=[extra_group.id],
        )
        for role, training in (("employee", "smb"), ("moderator", "mod-course")):
            actions.check_create_requirement(
                lead, RequirementCreate(process="marketing", role=role, training=training)
            )
        db.session.commit()

        # Training: s1 complete; s2 misses the moderators' course; s3's expired the day before;
        # r1 completed after the moment of the facts.
        _record(s1, "smb", date(2026, 1, 5))
        _record(s2, "smb", date(2026, 1, 5), date(2027, 1, 5))
        _record(s3, "smb", date(2025, 6, 1), days(-1).date())
        _record(r1, "smb", days(2).date())
        _record(r1, "other", date(2026, 1, 5))

        # Roadmap: done (due and done), due and not done, the platform choice, dropped, and one
        # added after the moment of the facts.
        clock.set(days(-30))
        done_id = _roadmap(lead, "marketing", days(-5).date())
        _roadmap(lead, "marketing", days(-1).date())
        _roadmap(lead, "marketing", date(2026, 12, 31), gate="platforms_chosen")
        _roadmap(lead, "marketing", days(-3).date(), status=RoadmapStatus.dropped)
        _roadmap(lead, "service", date(2026, 9, 30), gate="something_else")
        clock.set(days(-6))
        item = access_roadmap_item(done_id)
        actions.check_update_roadmap_item(lead, item, {"status": RoadmapStatus.done})
        db.session.commit()
        clock.set(days(1))
        _roadmap(lead, "marketing", days(-9).date(), status=RoadmapStatus.done)

        # Ambitions: the current one at T0 and a later one.
        clock.set(days(-10))
        actions.do_set_ambition(lead, ScoredProcess.marketing, 3, date(2027, 6, 30), "")
        clock.set(days(1))
        actions.do_set_ambition(lead, ScoredProcess.marketing, 4, date(2027, 12, 31), "")
        db.session.commit()

        # Policy v1, acknowledged by s1, s2 and the lead (not in the marketing audience).
        clock.set(days(-21))
        v1 = actions.check_create_document(
            lead, DocumentCreate(kind=DocumentKind.policy, title="Policy", body="Be kind.")
        )
        db.session.commit()
        clock.set(days(-20))
        actions.check_publish(lead2, v1)
        db.session.commit()
        for when, person in ((-19, s1), (-18, s2), (-18, lead)):
            clock.set(days(when))
            actions.check_acknowledge(person, v1)
            db.session.commit()
        # Policy v2, adjusted after a reading; acknowledged by s1 before T0 and s3 after it.
        clock.set(days(-3))
        v2 = actions.check_create_document(
            lead2, DocumentCreate(kind=DocumentKind.policy, title="Policy 2", body="Be kinder.")
        )
        v2.cites_reading_id = 7  # the readings table is not ours to fill here
        db.session.commit()
        clock.set(days(-2))
        actions.check_publish(lead, v2)
        db.session.commit()
        for when, person in ((-1, s1), (1 / 24, s3)):
            clock.set(days(when))
            actions.check_acknowledge(person, db.session.get(Document, v2.id))
            db.session.commit()
        # The netiquette is only a draft.
        actions.check_create_document(
            lead, DocumentCreate(kind=DocumentKind.netiquette, title="N", body="Hi.")
        )
        db.session.commit()

        # Evidence: approved before T0; approved after T0; withdrawn before T0; attested after.
        clock.set(days(-5))
        e1 = actions.check_attest(
            lead,
            EvidenceCreate(
                gate="escalation_tested",
                process="service",
                link="https://wiki.example/e1",
                expires_on=date(2027, 1, 1),
            ),
        )
        e2 = actions.check_attest(
            lead, EvidenceCreate(gate="policy_described", document_ref="DMS-1")
        )
        e3 = actions.check_attest(lead, EvidenceCreate(gate="g", link="https://wiki.example/e3"))
        db.session.commit()
        clock.set(days(-4))
        actions.check_withdraw(lead2, e3)
        clock.set(days(-1))
        actions.check_approve(lead2, e1)
        clock.set(days(1 / 24))
        actions.check_approve(lead2, e2)
        actions.check_attest(lead, EvidenceCreate(gate="late", link="https://wiki.example/l"))
        db.session.commit()

        # The escalation procedure and the privacy record.
        clock.set(days(-3))
        actions.check_declare_escalation(
            lead, EscalationDeclare(document_link="https://wiki.example/esc")
        )
        clock.set(days(-1))
        actions.check_record_privacy(
            lead,
            PrivacyRecordIn(
                dpia_reference="DPIA-1",
                works_council_consent_on=days(-2).date(),
                works_council_reference="OR-1",
            ),
        )
        db.session.commit()
    return World(lead, lead2, s1, s2, s3, r1, r2, marketing_group, extra_group)


def test_process_audience(world: World) -> None:
    marketing = set(db.session.scalars(process_audience("marketing")))
    # SALES with SALES.NL (not the external, the bot or the deactivated), and the audience
    # group's member r1.
    assert marketing == {world.s1.id, world.s2.id, world.s3.id, world.r1.id}
    everyone = {
        p.id for p in (world.lead, world.lead2, world.s1, world.s2, world.s3, world.r1, world.r2)
    }
    assert set(db.session.scalars(process_audience("recruitment"))) == everyone
    # Usable as a subquery, more than once in one statement.
    both = select(func.count()).where(
        User.id.in_(process_audience("marketing")), User.id.in_(process_audience("marketing"))
    )
    assert db.session.scalar(both) == 4


def test_governance_facts_now(world: World) -> None:
    facts = governance_facts(T0)
    marketing = ProcessFacts(
        process="marketing",
        owner_id=world.s1.id,
        tagged_group_sizes=(3, 2),
        ambition_level=3,
        ambition_due=date(2027, 6, 30),
        roadmap_items=3,
        roadmap_items_due=2,
        roadmap_items_due_done=1,
        platform_chosen=True,
        training_required=4,
        training_completed=1,
        policy_audience=4,
        policy_acknowledged=1,
    )
    others = {
        p: ProcessFacts(process=p, policy_audience=7, policy_acknowledged=1)
        for p in ("recruitment", "innovation", "production")
    }
    service = ProcessFacts(
        process="service", roadmap_items=1, policy_audience=7, policy_acknowledged=1
    )
    assert facts == GovernanceFacts(
        privacy_recorded=True,
        policy_published=True,
        netiquette_published=False,
        escalation_declared=True,
        policy_revisions_citing_readings=1,
        last_reading_at=None,
        evidence=(
            Evidence(
                gate="escalation_tested",
                process="service",
                link="https://wiki.example/e1",
                attested_by=world.lead.id,
                approved_by=world.lead2.id,
                attested_on=days(-5).date(),
                expires_on=date(2027, 1, 1),
            ),
            Evidence(
                gate="policy_described",
                process=None,
                link="DMS-1",
                attested_by=world.lead.id,
                approved_by=None,  # approved after T0
                attested_on=days(-5).date(),
                expires_on=None,
            ),
        ),
        processes={
            "marketing": marketing,
            "recruitment": others["recruitment"],
            "innovation": others["innovation"],
            "production": others["production"],
            "service": service,
        },
    )


def test_governance_facts_at_an_earlier_moment(world: World) -> None:
    facts = governance_facts(days(-15))
    assert (
        facts.privacy_recorded,
        facts.policy_published,
        facts.escalation_declared,
        facts.policy_revisions_citing_readings,
        facts.evidence,
    ) == (False, True, False, 0, ())
    marketing = facts.processes["marketing"]
    # Policy v1 was in force, acknowledged by s1 and s2 of the audience.
    assert (marketing.policy_audience, marketing.policy_acknowledged) == (4, 2)
    assert (marketing.ambition_level, marketing.ambition_due) == (None, None)
    # The roadmap items existed; none was due yet.
    assert (marketing.roadmap_items, marketing.roadmap_items_due) == (3, 0)
    # s3's training was still valid then; s1's too.
    assert (marketing.training_required, marketing.training_completed) == (4, 2)
    later = governance_facts(days(2))
    assert later.processes["marketing"].ambition_level == 4
    assert later.processes["marketing"].roadmap_items == 4
    assert later.processes["marketing"].policy_acknowledged == 2  # s1 and s3 on v2


def test_governance_facts_needs_an_aware_time(world: World) -> None:
    with pytest.raises(ValueError, match="aware"):
        governance_facts(T0.replace(tzinfo=None))
