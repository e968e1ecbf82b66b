"""What the demo company is: its departments, its people's habits, and how each business process
takes up the network over time.

Everything here is a parameter of the simulation (``esn.demo.simulate``); nothing is measured.
The defaults are chosen so that the five processes end at different maturity levels and so that
an early and a late reading differ: marketing and service lead, innovation climbs once its
roadmap items are done (the idea platform goes live), recruitment is steady, production stalls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from esn.processes import Process


@dataclass(frozen=True)
class Adoption:
    """The share of a process's people who take part in a month: a logistic curve from
    ``start`` to ``end`` centred on ``midpoint`` (months from the beginning), plus ``boost``
    from the month ``boost_from`` on (a roadmap item done: a platform launched, a campaign)."""

    start: float
    end: float
    midpoint: float
    steepness: float = 1.0
    boost: float = 0.0
    boost_from: int | None = None

    def share(self, month: float) -> float:
        curve = self.start + (self.end - self.start) / (
            1.0 + math.exp(-(month - self.midpoint) / self.steepness)
        )
        if self.boost_from is not None and month >= self.boost_from:
            curve += self.boost
        return max(0.0, min(1.0, curve))


@dataclass(frozen=True)
class ProcessBehaviour:
    """How the people of one process behave on the network."""

    adoption: Adoption
    # Chance that a thread gets an answer (a comment by someone else), and how many reactions.
    answer_propensity: float
    reactions_per_thread: float
    # Median hours to the first answer.
    answer_hours: float
    # Chance that an answer or reaction comes from another department.
    cross_department: float
    # Chance that a responder is someone the author answered before (reciprocity).
    reciprocity: float
    # Share of actions taken outside 07:00-19:00 or at weekends.
    after_hours: float
    # Chance that a post is a question.
    questions: float
    # Posts per active regular person per working day.
    post_rate: float
    # Governance habits: who acknowledges the policy, who completes the training.
    acknowledges: float
    trains: float
    hashtags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DepartmentSpec:
    code: str
    name: str
    share: float  # of the employees
    process: Process  # the process its people mostly work in
    secondary: Process | None = None  # a process they also take part in
    children: tuple[tuple[str, str], ...] = ()  # sub-departments (code, name)


@dataclass(frozen=True)
class RoadmapSpec:
    process: Process
    deliverable: str
    due_month: int  # months from the beginning (may lie beyond the simulated period)
    done_month: int | None = None  # when it is done, if within the period
    platform: bool = False  # the "platforms chosen" gate


@dataclass(frozen=True)
class CompanySpec:
    name: str
    employees: int
    months: int
    externals: int
    departments: tuple[DepartmentSpec, ...]
    behaviour: dict[Process, ProcessBehaviour]
    roadmap: tuple[RoadmapSpec, ...]
    ambitions: dict[Process, int]
    # Person types: a share of lurkers (read, rarely react) and of heavy contributors.
    lurkers: float = 0.45
    heavy: float = 0.06
    heavy_factor: float = 6.0
    # Months (from the beginning) at the end of which readings are taken; by default a third,
    # two thirds and the end of the period.
    readings: tuple[int, ...] = ()
    domain: str = "demo.example"

    def reading_months(self) -> tuple[int, ...]:
        if self.readings:
            return self.readings
        third = max(1, self.months // 3)
        return tuple(sorted({third, max(third + 1, 2 * self.months // 3), self.months}))


DEPARTMENTS: tuple[DepartmentSpec, ...] = (
    DepartmentSpec("MGT", "Management & Staff", 0.06, Process.general, Process.recruitment),
    DepartmentSpec(
        "MKT",
        "Marketing & Communications",
        0.11,
        Process.marketing,
        Process.innovation,
        (("MKT-BRD", "Brand & Content"), ("MKT-DIG", "Digital Marketing")),
    ),
    DepartmentSpec(
        "SAL",
        "Sales",
        0.12,
        Process.marketing,
        None,
        (("SAL-NL", "Sales Benelux"), ("SAL-DE", "Sales DACH")),
    ),
    DepartmentSpec("HRM", "Human Resources", 0.06, Process.recruitment),
    DepartmentSpec(
        "RND",
        "Research & Development",
        0.14,
        Process.innovation,
        Process.production,
        (("RND-LAB", "Product Lab"), ("RND-ENG", "Engineering")),
    ),
    DepartmentSpec(
        "PRD",
        "Production",
        0.24,
        Process.production,
        Process.innovation,
        (("PRD-N", "Plant North"), ("PRD-S", "Plant South"), ("PRD-Q", "Quality")),
    ),
    DepartmentSpec(
        "SVC",
        "Service & Maintenance",
        0.19,
        Process.service,
        Process.production,
        (("SVC-FLD", "Field Service"), ("SVC-DSK", "Customer Support")),
    ),
    DepartmentSpec(
        "FIT",
        "Finance & IT",
        0.08,
        Process.general,
        Process.service,
        (("FIT-FIN", "Finance"), ("FIT-IT", "IT")),
    ),
)

BEHAVIOUR: dict[Process, ProcessBehaviour] = {
    Process.marketing: ProcessBehaviour(
        Adoption(0.25, 0.70, midpoint=3, steepness=1.5),
        answer_propensity=0.78,
        reactions_per_thread=2.4,
        answer_hours=2.0,
        cross_department=0.45,
        reciprocity=0.5,
        after_hours=0.08,
        questions=0.1,
        post_rate=0.22,
        acknowledges=0.96,
        trains=0.85,
        hashtags=("campaign", "brand", "launch", "customerstory"),
    ),
    Process.service: ProcessBehaviour(
        Adoption(0.20, 0.60, midpoint=4, steepness=1.5),
        answer_propensity=0.72,
        reactions_per_thread=1.4,
        answer_hours=3.0,
        cross_department=0.3,
        reciprocity=0.45,
        after_hours=0.22,
        questions=0.55,
        post_rate=0.18,
        acknowledges=0.95,
        trains=0.8,
        hashtags=("fieldtip", "outage", "spareparts", "howto"),
    ),
    Process.innovation: ProcessBehaviour(
        Adoption(0.06, 0.12, midpoint=3, steepness=2, boost=0.45, boost_from=5),
        answer_propensity=0.62,
        reactions_per_thread=2.0,
        answer_hours=8.0,
        cross_department=0.55,
        reciprocity=0.4,
        after_hours=0.12,
        questions=0.2,
        post_rate=0.16,
        acknowledges=0.93,
        trains=0.85,
        hashtags=("idea", "prototype", "hackathon", "pilot"),
    ),
    Process.recruitment: ProcessBehaviour(
        Adoption(0.15, 0.35, midpoint=5, steepness=2),
        answer_propensity=0.5,
        reactions_per_thread=1.6,
        answer_hours=10.0,
        cross_department=0.25,
        reciprocity=0.3,
        after_hours=0.06,
        questions=0.25,
        post_rate=0.14,
        acknowledges=0.85,
        trains=0.75,
        hashtags=("welcome", "vacancy", "onboarding", "referral"),
    ),
    Process.production: ProcessBehaviour(
        Adoption(0.04, 0.07, midpoint=6, steepness=2),
        answer_propensity=0.3,
        reactions_per_thread=0.6,
        answer_hours=30.0,
        cross_department=0.06,
        reciprocity=0.1,
        after_hours=0.35,
        questions=0.35,
        post_rate=0.12,
        acknowledges=0.45,
        trains=0.35,
        hashtags=("shiftreport", "safety", "downtime", "lean"),
    ),
    Process.general: ProcessBehaviour(
        Adoption(0.15, 0.3, midpoint=4, steepness=2),
        answer_propensity=0.5,
        reactions_per_thread=1.8,
        answer_hours=6.0,
        cross_department=0.6,
        reciprocity=0.3,
        after_hours=0.1,
        questions=0.1,
        post_rate=0.08,
        acknowledges=0.8,
        trains=0.6,
        hashtags=("friday", "kudos", "lunch"),
    ),
}

ROADMAP: tuple[RoadmapSpec, ...] = (
    RoadmapSpec(Process.marketing, "Campaign space per product line", 2, 2, platform=True),
    RoadmapSpec(Process.marketing, "Brand ambassadors programme", 6, 5),
    RoadmapSpec(Process.marketing, "Customer stories with partners", 14),
    RoadmapSpec(
        Process.service, "Field-service Q&A group with accepted answers", 3, 3, platform=True
    ),
    RoadmapSpec(Process.service, "Spare-parts knowledge base", 8, 8),
    RoadmapSpec(Process.service, "Service partners invited", 16),
    RoadmapSpec(Process.innovation, "Idea platform chosen and launched", 5, 5, platform=True),
    RoadmapSpec(Process.innovation, "First idea campaign with a jury", 6, 6),
    RoadmapSpec(Process.innovation, "Innovation champions in every department", 10, 9),
    RoadmapSpec(Process.innovation, "Open innovation with suppliers", 20),
    RoadmapSpec(Process.recruitment, "Onboarding group for new hires", 4, 4, platform=True),
    RoadmapSpec(Process.recruitment, "Referral campaign", 9),
    RoadmapSpec(Process.recruitment, "Alumni network", 22),
    RoadmapSpec(Process.production, "Shift-handover channel per plant", 4, platform=True),
    RoadmapSpec(Process.production, "Safety moments shared weekly", 7),
    RoadmapSpec(Process.production, "Tablets on the shop floor", 12),
    RoadmapSpec(Process.production, "Supplier quality community", 18),
)

AMBITIONS: dict[Process, int] = {
    Process.marketing: 4,
    Process.service: 4,
    Process.innovation: 4,
    Process.recruitment: 3,
    Process.production: 3,
}


def default_company(employees: int = 400, months: int = 12) -> CompanySpec:
    """The default demo company, scaled to ``employees`` people over ``months`` months."""
    if employees < 40:
        raise ValueError("the demo company needs at least 40 employees")
    if months < 3:
        raise ValueError("the demo company needs at least 3 months of activity")
    return CompanySpec(
        name="Northwind Industries",
        employees=employees,
        months=months,
        externals=max(6, employees // 60),
        departments=DEPARTMENTS,
        behaviour=dict(BEHAVIOUR),
        roadmap=ROADMAP,
        ambitions=dict(AMBITIONS),
    )


def with_behaviour(spec: CompanySpec, process: Process, **changes: float) -> CompanySpec:
    """``spec`` with some behaviour parameters of one process changed."""
    behaviour = dict(spec.behaviour)
    behaviour[process] = replace(behaviour[process], **changes)  # type: ignore[arg-type]
    return replace(spec, behaviour=behaviour)
