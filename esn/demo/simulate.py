"""The demo simulator: a company and a year (or more) of its life, acted out through the
product's own actions with the settable clock.

Every person, group, post, comment, reaction, mention, follow, visit, acknowledgement and
training record is created by the action a user or an administrator would trigger (``do_*`` /
``check_*``), at the simulated moment, so that the usage event log, the rollups and the readings
are exactly what the product would hold had the company used it. Nothing writes the event
table directly.

The simulation is deterministic: one ``random.Random`` seeded once, people and threads kept in
lists in creation order, and the clock set for every action. The same seed and parameters give
the same rows and the same readings.

How it runs: the days are walked in order. For each day the people who take part in their
process that month (``Adoption``) visit, post and follow; each post schedules its answers and
reactions at later moments (the process's answer propensity and time to answer, responders
from the same department or not, and people the author answered before first). Scheduled
actions wait in a queue ordered by time and are carried out when their day comes. The
governance calendar (privacy record, scopes, policies and their acknowledgements, training,
roadmap items done, evidence) runs alongside; at the end of each reading month a reading is
taken, as a governance lead would. One transaction per simulated day.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from esn.accounts.actions import do_create_user, do_record_visit, do_set_password, do_update_user
from esn.accounts.models import Role, User
from esn.clock import SettableClock, set_clock
from esn.demo import pictures
from esn.demo.company import CompanySpec, ProcessBehaviour
from esn.demo.text import TextMaker, person_name
from esn.directory.actions import do_create_department
from esn.extensions import db
from esn.governance import actions as gov
from esn.governance import schemas as gs
from esn.governance.models import Document, DocumentKind, RoadmapStatus
from esn.governance.telemetry_service import bring_rollups_up_to, do_take_reading
from esn.groups import actions as groups
from esn.groups.models import Group, JoinPolicy, Visibility
from esn.moderation import actions as moderation
from esn.moderation.models import ModerationReport
from esn.photos import actions as photos
from esn.photos import pipeline
from esn.processes import SCORED, Process
from esn.social import actions as social
from esn.social.models import Comment, FollowType, Post, PostKind, ReactionKind, TargetType

log = logging.getLogger(__name__)

ZONE = ZoneInfo("Europe/Amsterdam")
TRAINING = "social-media-basics"
REACTIONS = (
    ReactionKind.like,
    ReactionKind.like,
    ReactionKind.like,
    ReactionKind.insightful,
    ReactionKind.celebrate,
    ReactionKind.support,
)


PHOTO_CAPTIONS = (
    "What an evening! #socialclub",
    "Thanks to everyone who came #socialclub",
    "The view from the terrace",
    "Team photo, finally everyone in one place",
    "Who organised the music? Great job #socialclub",
)


@dataclass
class Person:
    user: User
    index: int
    department: str  # the top department's code
    process: Process
    secondary: Process | None
    kind: str  # lurker | regular | heavy
    affinity: float  # takes part in a month when affinity < the process's adoption share
    external: bool = False
    answered: list[int] = field(default_factory=list)  # indexes of people they answered
    groups: set[int] = field(default_factory=set)
    started: bool = False
    trained: bool = False


@dataclass
class Thread:
    # The id, not the entity: holding thousands of posts in the session would make every
    # ORM-enabled UPDATE of posts (the comment counter) evaluate its criteria against all.
    post_id: int
    author: int  # person index
    process: Process
    group_id: int | None
    question: bool
    answered: bool = False


@dataclass
class DemoResult:
    seed: int
    employees: int
    months: int
    start: date
    end: date
    sign_ins: dict[str, tuple[str, str]]  # role → (email, password)
    reading_ids: list[int]
    seconds: float
    counts: dict[str, int]


class Simulation:
    def __init__(
        self,
        spec: CompanySpec,
        *,
        seed: int = 1,
        end: date,
        passwords: dict[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
        self.end = end
        self.start = _months_before(end, spec.months)
        self.text = TextMaker(self.rng)
        self.passwords = passwords or {}
        self.progress = progress or (lambda _m: None)
        self.clock = SettableClock(_at(self.start, 8))
        self.people: list[Person] = []
        self.by_process: dict[Process, list[int]] = {p: [] for p in Process}
        self.by_department: dict[str, list[int]] = {}
        self.departments: dict[str, int] = {}
        self.groups: dict[Process, list[Group]] = {p: [] for p in Process}
        self.group_by_id: dict[int, Group] = {}
        self.staff: dict[str, User] = {}
        self.queue: list[tuple[datetime, int, Callable[[], None]]] = []
        self.order = itertools.count()
        self.threads: list[Thread] = []
        self.policy: Document | None = None
        self.reading_ids: list[int] = []
        self.counts: dict[str, int] = {}

    # --- the run ------------------------------------------------------------------------------

    def run(self) -> DemoResult:
        began = time.perf_counter()
        set_clock(self.clock)
        # The simulation keeps its people and groups across its daily commits; reloading them
        # after every commit would only cost time (nothing else writes meanwhile).
        session = db.session()
        expire = session.expire_on_commit
        session.expire_on_commit = False
        try:
            self._company()
            db.session.commit()
            calendar = self._calendar()
            reading_days = {
                _months_after(self.start, m) - timedelta(days=1): m
                for m in self.spec.reading_months()
            }
            day = self.start
            while day <= self.end:
                month = _month_index(self.start, day)
                for event in calendar.get(day, []):
                    self._at(day, 9, self.rng.randint(0, 59))
                    event()
                self._day(day, month)
                self._drain(_at(day + timedelta(days=1), 0))
                db.session.commit()
                if day in reading_days:
                    self._take_reading(day)
                if day.day == 1:
                    self.progress(f"{day:%Y-%m}: {len(self.threads)} threads so far")
                day += timedelta(days=1)
            self.queue.clear()  # what would happen after the last day does not
        finally:
            set_clock(None)
            session.expire_on_commit = expire
        return DemoResult(
            seed=self.seed,
            employees=self.spec.employees,
            months=self.spec.months,
            start=self.start,
            end=self.end,
            sign_ins={k: (u.email, self.passwords.get(k, "")) for k, u in self.staff.items()},
            reading_ids=self.reading_ids,
            seconds=time.perf_counter() - began,
            counts=dict(self.counts),
        )

    def _at(self, day: date, hour: int, minute: int = 0) -> datetime:
        moment = _at(day, hour, minute)
        self.clock.set(moment)
        return moment

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # --- the company --------------------------------------------------------------------------

    def _company(self) -> None:
        spec = self.spec
        self._at(self.start, 8)
        for dept in spec.departments:
            top = do_create_department(None, dept.code, dept.name, None)
            self.departments[dept.code] = top.id
            for code, name in dept.children:
                self.departments[code] = do_create_department(None, code, name, top.id).id
        # Sizes by share, the rest to the largest department.
        sizes = [int(spec.employees * d.share) for d in spec.departments]
        sizes[max(range(len(sizes)), key=lambda i: sizes[i])] += spec.employees - sum(sizes)
        index = 0
        for dept, size in zip(spec.departments, sizes, strict=True):
            units = [code for code, _ in dept.children] or [dept.code]
            for n in range(size):
                unit = dept.code if n == 0 else units[n % len(units)]
                self._person(index, dept.code, unit, dept.process, dept.secondary, n == 0)
                index += 1
        partner_process = (Process.marketing, Process.service, Process.innovation)
        for n in range(spec.externals):
            process = partner_process[n % len(partner_process)]
            self._person(index, "EXT", None, process, None, False, external=True)
            index += 1
        self._staff()
        self._groups()

    def _person(
        self,
        index: int,
        department: str,
        unit: str | None,
        process: Process,
        secondary: Process | None,
        head: bool,
        *,
        external: bool = False,
    ) -> None:
        first, last = person_name(index)
        domain = "partner.example" if external else self.spec.domain
        roll = self.rng.random()
        kind = (
            "heavy"
            if roll < self.spec.heavy
            else "lurker"
            if roll < self.spec.heavy + self.spec.lurkers
            else "regular"
        )
        user = do_create_user(
            None,
            {
                "email": f"{_slug(first)}.{_slug(last)}.{index}@{domain}",
                "display_name": f"{first} {last}",
                "employee_number": None if external else f"E{index + 1:06d}",
                "department_id": self.departments.get(unit) if unit else None,
                "title": ("Head of " if head else "") + (unit or "Partner"),
                "location": "Utrecht" if index % 3 else "Eindhoven",
                "time_zone": "Europe/Amsterdam",
                "is_external": external,
                "roles": ["employee"],
            },
        )
        person = Person(
            user=user,
            index=index,
            department=department,
            process=process,
            secondary=secondary,
            kind="regular" if head else kind,
            affinity=self.rng.random(),
            external=external,
        )
        self.people.append(person)
        self.by_process[process].append(index)
        if secondary is not None:
            self.by_process[secondary].append(index)
        self.by_department.setdefault(department, []).append(index)

    def _staff(self) -> None:
        """Give roles to some of the people: the accounts the README's sign-ins use."""

        taken: set[int] = set()

        def pick(department: str, offset: int) -> Person:
            """The ``offset``-th person of ``department`` not given a role yet (in a small
            company, the next free person of any department)."""
            members = [i for i in self.by_department[department] if i not in taken]
            if len(members) <= offset:
                members = [p.index for p in self.people if p.index not in taken and not p.external]
                offset = 0
            chosen = self.people[members[offset]]
            taken.add(chosen.index)
            return chosen

        wanted = {
            "admin": (pick("FIT", 1), [Role.admin]),
            "governance_lead": (pick("MGT", 1), [Role.governance_lead]),
            "second_governance_lead": (pick("MGT", 2), [Role.governance_lead]),
            "innovation_manager": (pick("RND", 1), [Role.innovation_manager]),
            "hr": (pick("HRM", 0), [Role.hr]),
            "communications": (pick("MKT", 1), [Role.communications]),
            "moderator": (pick("SVC", 1), [Role.moderator]),
            "employee": (pick("SVC", 3), []),
        }
        for key, (person, roles) in wanted.items():
            user = person.user
            password = self.passwords.get(key)
            changes: dict[str, Any] = {"roles": sorted({"employee", *(r.value for r in roles)})}
            do_update_user(None, user, changes)
            if password:
                do_set_password(user, password, actor=None)
            person.kind = "regular" if key != "employee" else "heavy"
            person.affinity = 0.0  # staff take part from the first day
            self.staff[key] = user

    def _groups(self) -> None:
        layout: dict[Process, list[tuple[str, Visibility, JoinPolicy]]] = {
            Process.marketing: [
                ("Campaigns", Visibility.public, JoinPolicy.open),
                ("Brand council", Visibility.private, JoinPolicy.request),
            ],
            Process.service: [
                ("Field service Q&A", Visibility.public, JoinPolicy.open),
                ("Support escalations", Visibility.private, JoinPolicy.request),
            ],
            Process.innovation: [
                ("Idea lab", Visibility.public, JoinPolicy.open),
                ("Innovation champions", Visibility.private, JoinPolicy.invite),
            ],
            Process.recruitment: [
                ("Onboarding", Visibility.public, JoinPolicy.open),
                ("Hiring managers", Visibility.private, JoinPolicy.request),
            ],
            Process.production: [
                ("Shift handover", Visibility.public, JoinPolicy.open),
                ("Plant improvement", Visibility.public, JoinPolicy.open),
            ],
            Process.general: [
                ("Company news", Visibility.public, JoinPolicy.open),
                ("Social club", Visibility.public, JoinPolicy.open),
                ("Works council", Visibility.secret, JoinPolicy.invite),
            ],
        }
        owners = {
            Process.marketing: "MKT",
            Process.service: "SVC",
            Process.innovation: "RND",
            Process.recruitment: "HRM",
            Process.production: "PRD",
            Process.general: "MGT",
        }
        for process, specs in layout.items():
            owner = self.people[self.by_department[owners[process]][0]]
            for name, visibility, policy in specs:
                group = groups.do_create_group(
                    owner.user,
                    {
                        "name": name,
                        "description": self.text.group_description(name, process),
                        "visibility": visibility,
                        "join_policy": policy,
                        "process": process,
                        "process_owner_id": owner.user.id,
                    },
                )
                owner.groups.add(group.id)
                self.groups[process].append(group)
                self.group_by_id[group.id] = group
                self._count("groups")

    # --- the governance calendar ----------------------------------------------------------------

    def _calendar(self) -> dict[date, list[Callable[[], None]]]:
        """What governance does on which day, months counted from the beginning."""
        cal: dict[date, list[Callable[[], None]]] = {}

        def on(month: int, day: int, action: Callable[[], None]) -> None:
            when = _months_after(self.start, month) + timedelta(days=day)
            if when <= self.end:
                cal.setdefault(when, []).append(action)

        on(0, 0, self._privacy_and_scopes)
        on(0, 2, self._ambitions_and_roadmap)
        on(0, 7, partial(self._document, DocumentKind.netiquette, "Netiquette", None))
        on(0, 20, partial(self._document, DocumentKind.policy, "Social media policy", None))
        on(0, 24, self._training_requirements)
        on(1, 10, self._escalation)
        on(1, 15, self._evidence)
        for item in self.spec.roadmap:
            if item.done_month is not None:
                on(item.done_month, 12, partial(self._roadmap_done, item.deliverable))
        readings = self.spec.reading_months()
        # Improvement loops: a policy revision that cites the latest reading, after each of
        # the first readings.
        for m in readings[:-1]:
            on(m, 10, partial(self._document, DocumentKind.policy, "Social media policy", "latest"))
        for m in range(self.spec.months):
            on(m, 25, self._training_round)
        # After the second reading the marketing and service owners review their after-hours
        # share with the works council (a declared gate of level 4).
        if len(readings) > 1:
            on(readings[1], 15, self._after_hours_reviewed)
        # A get-together of the social club each quarter, with an album of photos.
        for m in range(2, self.spec.months, 3):
            on(m, 18, partial(self._album, m))
        return cal

    def _album(self, month: int) -> None:
        """Someone from the social club makes an album of the quarter's get-together and a
        few colleagues add photos; each photo is a thread people react to and comment on."""
        club = next(g for g in self.groups[Process.general] if g.name == "Social club")
        members = [p for p in self.people if club.id in p.groups and not p.external]
        if len(members) < 2:
            return
        owner = self.rng.choice(members)
        quarter = (self.clock.current.month - 1) // 3 + 1
        album = photos.do_create_album(
            owner.user,
            {"title": f"Get-together Q{quarter} {self.clock.current.year}", "description": ""},
            club,
        )
        behaviour = self.spec.behaviour[Process.general]
        for n in range(self.rng.randint(3, 5)):
            who = owner if n == 0 else self.rng.choice(members)
            self.clock.set(self.clock.current + timedelta(minutes=self.rng.randint(5, 90)))
            processed = pipeline.process(pictures.picture(self.rng), filename="IMG.jpg")
            keys = photos.store_files(processed)
            caption = self.rng.choice(PHOTO_CAPTIONS)
            photo = photos.do_add_photo(who.user, processed, keys, {"caption": caption}, album)
            assert photo.post_id is not None
            self._count("photos")
            thread = Thread(photo.post_id, who.index, Process.general, club.id, False)
            self.threads.append(thread)
            self._plan_responses(thread, behaviour)

    def _lead(self) -> User:
        return self.staff["governance_lead"]

    def _privacy_and_scopes(self) -> None:
        admin = self.staff["admin"]
        gov.check_record_privacy(
            admin,
            gs.PrivacyRecordIn(
                dpia_reference="DPIA-2025-014",
                works_council_consent_on=self.clock.current.date(),
                works_council_reference="WC decision 2025/07",
                note="Aggregates only; k = 5; no appraisal use.",
            ),
        )
        owners = {
            Process.marketing: "MKT",
            Process.service: "SVC",
            Process.innovation: "RND",
            Process.recruitment: "HRM",
            Process.production: "PRD",
        }
        for process in SCORED:
            audience = [
                self.departments[d.code] for d in self.spec.departments if d.process == process
            ]
            owner = self.people[self.by_department[owners[process]][0]].user
            gov.check_update_scope(
                self._lead(),
                process,  # type: ignore[arg-type]
                gs.ScopeUpdate(owner_id=owner.id, audience_department_ids=audience),
            )

    def _ambitions_and_roadmap(self) -> None:
        lead = self._lead()
        target = _months_after(self.start, 24)
        for process, level in self.spec.ambitions.items():
            gov.check_set_ambition(
                lead,
                gs.AmbitionCreate(
                    process=process,
                    target_level=level,
                    target_date=target,
                    note=f"Level {level} within two years",
                ),
            )
        for item in self.spec.roadmap:
            gov.check_create_roadmap_item(
                lead,
                {
                    "process": item.process,
                    "deliverable": item.deliverable,
                    "due_on": _months_after(self.start, item.due_month),
                    "gate": "platforms_chosen" if item.platform else None,
                    "status": RoadmapStatus.planned,
                    "done_at": None,
                },
            )

    def _roadmap_done(self, deliverable: str) -> None:
        from esn.governance.models import RoadmapItem

        item = db.session.scalar(select(RoadmapItem).where(RoadmapItem.deliverable == deliverable))
        if item is not None:
            gov.check_update_roadmap_item(self._lead(), item, {"status": RoadmapStatus.done})
            self._count("roadmap items done")

    def _document(self, kind: DocumentKind, title: str, cites: str | None) -> None:
        lead, approver = self._lead(), self.staff["admin"]
        reading_id = self.reading_ids[-1] if cites and self.reading_ids else None
        version = (
            db.session.scalar(
                select(func.count()).where(
                    Document.kind == kind, Document.published_at.is_not(None)
                )
            )
            or 0
        ) + 1
        document = gov.check_create_document(
            lead,
            gs.DocumentCreate(
                kind=kind,
                title=title,
                body=self.text.policy_body(title, version),
                change_note=(
                    f"Adjusted after reading {reading_id}" if reading_id else "First version"
                ),
                cites_reading_id=reading_id,
            ),
        )
        gov.check_publish(approver, document)
        self._count(f"{kind} versions")
        if kind == DocumentKind.policy:
            self.policy = document
            # People acknowledge the new version over the following weeks, as they sign in.
            for person in self.people:
                if person.external:
                    continue
                habit = self.spec.behaviour[person.process].acknowledges
                if self.rng.random() < habit:
                    delay = timedelta(days=self.rng.randint(0, 30), hours=self.rng.randint(0, 9))
                    self._schedule(
                        self.clock.current + delay,
                        partial(self._acknowledge, person, document),
                    )

    def _acknowledge(self, person: Person, document: Document) -> None:
        if self.policy is None or self.policy.id != document.id:
            return  # a newer version came meanwhile; they acknowledge that one
        gov.check_acknowledge(person.user, document)
        self._count("acknowledgements")

    def _training_requirements(self) -> None:
        for process in SCORED:
            gov.check_create_requirement(
                self._lead(),
                gs.RequirementCreate(process=process, role=Role.employee, training=TRAINING),
            )

    def _training_round(self) -> None:
        """HR records the training sessions of the last two months."""
        hr = self.staff["hr"]
        today = self.clock.current.date()
        for person in self.people:
            if person.external or person.trained:
                continue
            habit = self.spec.behaviour[person.process].trains
            # Spread over the rounds: each round trains a part of those who will.
            if self.rng.random() < habit / 2:
                gov.check_record_training(
                    hr,
                    gs.TrainingRecordCreate(
                        user_id=person.user.id,
                        training=TRAINING,
                        completed_on=today - timedelta(days=self.rng.randint(1, 40)),
                    ),
                )
                person.trained = True
                self._count("training records")

    def _escalation(self) -> None:
        gov.check_declare_escalation(
            self._lead(),
            gs.EscalationDeclare(
                document_link="https://intranet.demo.example/policies/escalation",
                note="Moderators answer reports within one working day.",
            ),
        )

    def _evidence(self) -> None:
        lead, second = self._lead(), self.staff["second_governance_lead"]
        today = self.clock.current.date()
        kept = gov.check_attest(
            lead,
            gs.EvidenceCreate(
                gate="policy_described",
                link="https://intranet.demo.example/policies/social-media",
                note="Policy approved by the board",
            ),
        )
        gov.check_approve(second, kept)
        expired = gov.check_attest(
            lead,
            gs.EvidenceCreate(
                gate="training",
                process=Process.production,
                document_ref="Toolbox meeting attendance lists, plant North",
                attested_on=today,
                expires_on=today + timedelta(days=90),
                note="Paper attendance lists; to be replaced by the LMS export",
            ),
        )
        gov.check_approve(second, expired)
        self._count("evidence")

    def _after_hours_reviewed(self) -> None:
        lead, second = self._lead(), self.staff["second_governance_lead"]
        for process in (Process.marketing, Process.service):
            evidence = gov.check_attest(
                lead,
                gs.EvidenceCreate(
                    gate="after_hours_reviewed",
                    process=process,
                    document_ref=f"Works council minutes: after-hours share of {process.value}",
                    note="Reviewed with the works council; no action needed",
                ),
            )
            gov.check_approve(second, evidence)
            self._count("evidence")

    def _take_reading(self, day: date) -> None:
        self._at(day + timedelta(days=1), 7, 30)
        bring_rollups_up_to(day)
        reading = do_take_reading(self._lead(), day, trigger="manual")
        db.session.commit()
        self.reading_ids.append(reading.id)
        self.progress(f"reading {reading.id} through {day}")

    # --- a day of activity --------------------------------------------------------------------

    def _day(self, day: date, month: int) -> None:
        weekend = day.weekday() >= 5
        spec = self.spec
        for person in self.people:
            process = person.process
            behaviour = spec.behaviour[process]
            if person.affinity >= behaviour.adoption.share(month + day.day / 31):
                continue
            if not person.started:
                self._start(person, day)
            visits = 0.08 if weekend else (0.35 if person.kind == "lurker" else 0.7)
            if self.rng.random() >= visits:
                continue
            when = self._moment(day, behaviour, weekend)
            self._schedule(when, partial(self._visit, person))
            if person.kind == "lurker":
                if self.rng.random() < 0.05:
                    self._schedule(when + timedelta(minutes=5), partial(self._react_recent, person))
                continue
            rate = behaviour.post_rate * (spec.heavy_factor if person.kind == "heavy" else 1.0)
            if weekend:
                rate *= 0.2
            posting = process
            if person.secondary is not None and self.rng.random() < 0.3:
                posting = person.secondary
                if person.affinity >= spec.behaviour[posting].adoption.share(month):
                    posting = process
            while self.rng.random() < rate:
                self._schedule(
                    when + timedelta(minutes=self.rng.randint(1, 90)),
                    partial(self._post, person, posting),
                )
                rate /= 2

    def _moment(self, day: date, behaviour: ProcessBehaviour, weekend: bool) -> datetime:
        if weekend or self.rng.random() < behaviour.after_hours:
            hour = (
                self.rng.choice((5, 6, 19, 20, 21, 22)) if not weekend else self.rng.randint(8, 21)
            )
        else:
            hour = self.rng.randint(7, 17)
        local = datetime(day.year, day.month, day.day, hour, self.rng.randint(0, 59), tzinfo=ZONE)
        return local.astimezone(UTC)

    def _start(self, person: Person, day: date) -> None:
        """A person's first active day: join their process's open groups, follow colleagues."""
        person.started = True
        when = self._moment(day, self.spec.behaviour[person.process], False)

        def start() -> None:
            for process in (person.process, person.secondary):
                if process is None:
                    continue
                for group in self.groups[process]:
                    if group.id in person.groups:
                        continue
                    if group.join_policy == JoinPolicy.open:
                        groups.do_join(person.user, group)
                        person.groups.add(group.id)
                        self._count("memberships")
            colleagues = self.by_department.get(person.department, [])
            for other in self.rng.sample(colleagues, min(4, len(colleagues))):
                if other != person.index and social.do_follow(
                    person.user, FollowType.user, self.people[other].user.id
                ):
                    self._count("follows")

        self._schedule(when, start)

    def _visit(self, person: Person) -> None:
        if do_record_visit(person.user):
            self._count("visits")

    def _post(self, person: Person, process: Process) -> None:
        behaviour = self.spec.behaviour[process]
        candidates = [g for g in self.groups[process] if g.id in person.groups]
        group = self.rng.choice(candidates) if candidates and self.rng.random() < 0.75 else None
        question = self.rng.random() < behaviour.questions
        article = not question and self.rng.random() < 0.08
        title, body = self.text.post(process, behaviour.hashtags, question, article)
        post = social.do_create_post(
            person.user,
            {
                "kind": PostKind.article if article else PostKind.post,
                "title": title,
                "body": body,
                "process": process,
                "is_question": question,
                "publish": True,
            },
            group,
        )
        self._count("posts")
        thread = Thread(post.id, person.index, process, group.id if group else None, question)
        self.threads.append(thread)
        self._plan_responses(thread, behaviour)

    def _responders(
        self, thread: Thread, behaviour: ProcessBehaviour, count: int, *, comments: bool
    ) -> list[int]:
        author = self.people[thread.author]
        month = _month_index(self.start, self.clock.current.date())
        share = behaviour.adoption.share(month)
        pool_same = [i for i in self.by_department.get(author.department, []) if i != thread.author]
        pool_process = [i for i in self.by_process[thread.process] if i != thread.author]
        chosen: list[int] = []
        for _ in range(count * 3):
            if len(chosen) >= count:
                break
            roll = self.rng.random()
            if author.answered and roll < behaviour.reciprocity:
                candidate = self.rng.choice(author.answered)
            elif roll < behaviour.reciprocity + behaviour.cross_department or not pool_same:
                candidate = self.rng.choice(pool_process or pool_same)
            else:
                candidate = self.rng.choice(pool_same)
            responder = self.people[candidate]
            if candidate in chosen or candidate == thread.author:
                continue
            own = self.spec.behaviour[responder.process].adoption.share(month)
            if responder.affinity >= max(share, own):
                continue  # not on the network this month
            if comments and responder.kind == "lurker" and self.rng.random() < 0.8:
                continue  # lurkers rarely write
            if not self._can_see(responder, thread):
                continue
            chosen.append(candidate)
        return chosen

    def _can_see(self, person: Person, thread: Thread) -> bool:
        """The access policy's ``post:read``, from what the simulation knows: externals see
        only their own groups' threads (and their own)."""
        if thread.group_id is None:
            return not person.external or thread.author == person.index
        group = self.group_by_id[thread.group_id]
        if group.id in person.groups:
            return True
        return group.visibility == Visibility.public and not person.external

    def _plan_responses(self, thread: Thread, behaviour: ProcessBehaviour) -> None:
        start = self.clock.current
        if self.rng.random() < behaviour.answer_propensity:
            answers = 1 + (self.rng.random() < 0.35) + (self.rng.random() < 0.1)
            for n, who in enumerate(self._responders(thread, behaviour, answers, comments=True)):
                delay = self.rng.lognormvariate(0, 1.0) * behaviour.answer_hours * (1 + n)
                self._schedule(
                    start + timedelta(hours=delay),
                    partial(self._answer, thread, who),
                )
        reactions = (
            int(self.rng.expovariate(1 / behaviour.reactions_per_thread))
            if behaviour.reactions_per_thread
            else 0
        )
        for who in self._responders(thread, behaviour, reactions, comments=False):
            delay = self.rng.lognormvariate(0, 1.2) * behaviour.answer_hours
            self._schedule(start + timedelta(hours=delay), partial(self._react, thread, who))

    def _answer(self, thread: Thread, who: int) -> None:
        post = self._post_of(thread)
        if post.deleted_at is not None:
            return
        person, author = self.people[who], self.people[thread.author]
        mention = None
        if self.rng.random() < 0.15:
            mention = author.user.handle
        elif self.rng.random() < 0.1 and person.answered:
            mention = self.people[self.rng.choice(person.answered)].user.handle
        body = self.text.comment(thread.process, thread.question, mention)
        comment = social.do_create_comment(person.user, post, body, None)
        self._count("comments")
        # Now and then someone reports a post in the open feed; the moderator handles it.
        if thread.group_id is None and self.rng.random() < 0.01:
            self._schedule(
                self.clock.current + timedelta(minutes=30), partial(self._report, thread, who)
            )
        if thread.author not in person.answered[-30:]:
            person.answered.append(thread.author)
        if thread.question and not thread.answered and self.rng.random() < 0.7:
            thread.answered = True
            self._schedule(
                self.clock.current + timedelta(hours=self.rng.uniform(0.5, 30)),
                partial(self._accept, thread, comment.id),
            )
        # The author sometimes replies to the answer.
        if self.rng.random() < 0.3:
            self._schedule(
                self.clock.current + timedelta(hours=self.rng.uniform(0.2, 6)),
                partial(self._reply, thread, comment),
            )

    def _post_of(self, thread: Thread) -> Post:
        post = db.session.get(Post, thread.post_id)
        assert post is not None  # the simulation deletes nothing
        return post

    def _report(self, thread: Thread, who: int) -> None:
        if self._post_of(thread).deleted_at is not None:
            return
        report = moderation.check_raise_report(
            self.people[who].user,
            "post",
            thread.post_id,
            "Contains a customer's name and phone number",
            self.rng.choice(("low", "normal", "normal", "high")),
        )
        self._count("reports")
        hours = self.rng.lognormvariate(0, 0.8) * 5
        self._schedule(self.clock.current + timedelta(hours=hours), partial(self._resolve, report))

    def _resolve(self, report: ModerationReport) -> None:
        moderation.check_resolve_report(
            self.staff["moderator"], report, "warned", "Asked the author to remove the details"
        )

    def _reply(self, thread: Thread, parent: Comment) -> None:
        post = self._post_of(thread)
        if post.deleted_at is not None or parent.deleted_at is not None:
            return
        author = self.people[thread.author]
        social.do_create_comment(author.user, post, self.text.reply(), parent)
        self._count("comments")

    def _accept(self, thread: Thread, comment_id: int) -> None:
        post = self._post_of(thread)
        if post.deleted_at is None:
            social.check_accept_answer(self.people[thread.author].user, post, comment_id)
            self._count("accepted answers")

    def _react(self, thread: Thread, who: int) -> None:
        post = self._post_of(thread)
        if post.deleted_at is not None:
            return
        author = self.people[thread.author]
        social.do_react(
            self.people[who].user,
            post,
            TargetType.post,
            post.id,
            author.user.id,
            self.rng.choice(REACTIONS),
        )
        self._count("reactions")

    def _react_recent(self, person: Person) -> None:
        for thread in reversed(self.threads[-40:]):
            if thread.author != person.index and (self._can_see(person, thread)):
                self._react(thread, person.index)
                return

    # --- the queue ----------------------------------------------------------------------------

    def _schedule(self, when: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self.queue, (when, next(self.order), action))

    def _drain(self, before: datetime) -> None:
        """Carry out the scheduled actions due before ``before``, in time order, each at its
        moment."""
        while self.queue and self.queue[0][0] < before:
            when, _, action = heapq.heappop(self.queue)
            self.clock.set(when)
            action()


# --- dates ----------------------------------------------------------------------------------------


def _slug(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def _months_after(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    target_year, target_month = day.year + year, month + 1
    last = (
        date(target_year + (target_month == 12), target_month % 12 + 1, 1) - timedelta(days=1)
    ).day
    return date(target_year, target_month, min(day.day, last))


def _months_before(day: date, months: int) -> date:
    return _months_after(day, -months) + timedelta(days=1)


def _month_index(start: date, day: date) -> int:
    return (day.year - start.year) * 12 + day.month - start.month - (day.day < start.day)
