"""The SMG level of one business process: every gate of the rulebook checked against the
indicators of the process and the governance facts (SMG_MODEL.md, "Scoring").

``assess`` is a pure function: it reads only its arguments (the measured indicators through
``measure``, the facts, the rulebook and the day), so the same inputs give the same assessment
and a stored reading can be reproduced from its facts and versions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any

from telemetry.facts import Evidence, GovernanceFacts, ProcessFacts
from telemetry.rulebook import LEVELS, SHARE_METRICS, Requirement, Rulebook
from telemetry.values import IndicatorValue

PASS = "pass"  # noqa: S105 (a status, not a password)
FAIL = "fail"
INSUFFICIENT_DATA = "insufficient_data"
STALE_EVIDENCE = "stale_evidence"
MISSING = "missing"
STATUSES = (PASS, FAIL, INSUFFICIENT_DATA, STALE_EVIDENCE, MISSING)

Measure = Callable[[str, int], IndicatorValue | None]

# Declared evidence keys that the platform can also see for itself (a published, approved
# document; a declared escalation procedure): the fact of GovernanceFacts that passes them.
PLATFORM_DECLARATIONS = {
    "policy_described": "policy_published",
    "netiquette_published": "netiquette_published",
    "escalation_procedure": "escalation_declared",
}

# What one numerator unit of a share is, for the distance of a blocking gate.
UNITS = {
    "A1": "people with an interaction",
    "A2": "people visiting",
    "A3": "contributors",
    "P3": "contributions by the top 10% of contributors",
    "R1": "answered threads",
    "N1": "reciprocated ties",
    "X1": "cross-department ties",
    "X4": "departments with a tie into the process",
    "T1": "retained cohort members",
    "T2": "monthly active people",
    "H1": "after-hours interactions",
    "Q1": "answered question threads",
    "policy_acknowledged": "acknowledgements of the current policy",
    "training_completed": "people trained",
    "roadmap_due_done": "due roadmap items done",
}
MEDIANS = {
    "R2": "median time to first response",
    "R4": "median escalation latency",
}


@dataclass(frozen=True)
class GateResult:
    """One (gate, level) requirement checked for one process."""

    gate: str
    level: int
    kind: str
    metric: str
    value: float | None
    numerator: float | None
    denominator: float | None
    threshold: float | None
    status: str
    window_days: int | None
    source: str
    # For a requirement that does not pass: how far it is (numerator units for shares, hours
    # for medians, a count for counts; None where no number applies) and what to do.
    distance: float | None = None
    explanation: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def public(self) -> dict[str, Any]:
        """A gate entry of the dashboard contract."""
        return {
            "gate": self.gate,
            "level": self.level,
            "kind": self.kind,
            "metric": self.metric,
            "value": self.value,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "threshold": self.threshold,
            "status": self.status,
            "window_days": self.window_days,
            "source": self.source,
        }

    def blocking(self) -> dict[str, Any]:
        """A blocking entry: the gate entry with its distance and a sentence."""
        return {**self.public(), "distance": self.distance, "explanation": self.explanation}


@dataclass(frozen=True)
class ProcessAssessment:
    process: str
    level: int
    measured_level: int
    declared_level: int
    ambition: int | None
    gap: int | None
    gates: tuple[GateResult, ...]
    blocking: tuple[GateResult, ...]
    rulebook_version: str = field(default="")

    def public(self) -> dict[str, Any]:
        """A process entry of a reading, in the dashboard contract's shape."""
        return {
            "process": self.process,
            "level": self.level,
            "measured_level": self.measured_level,
            "declared_level": self.declared_level,
            "ambition": self.ambition,
            "gap": self.gap,
            "gates": [g.public() for g in self.gates],
            "blocking": [g.blocking() for g in self.blocking],
        }


def assess(
    process: str,
    measure: Measure,
    facts: GovernanceFacts,
    rulebook: Rulebook,
    on: date,
) -> ProcessAssessment:
    """The assessment of ``process`` on the day ``on``.

    ``measure(metric, window_days)`` gives the process's indicator over the window ending on
    ``on`` (None where the host cannot measure it; suppressed where too few people are behind
    it). The level is the highest L such that every requirement of every level up to L passes
    (1 when a level-2 requirement does not); measured and declared levels apply the same rule
    to one kind of requirement only. The blocking gates are the requirements of the next level
    that do not pass.
    """
    pf = facts.processes.get(process) or ProcessFacts(process=process)
    measured: dict[tuple[str, int], IndicatorValue | None] = {}

    def cached(metric: str, window: int) -> IndicatorValue | None:
        if (metric, window) not in measured:
            measured[(metric, window)] = measure(metric, window)
        return measured[(metric, window)]

    results: list[GateResult] = []
    for gate in rulebook.gates:
        if not gate.applies_to(process):
            continue
        for req in gate.requirements:
            results.append(_check(req, process, pf, facts, rulebook, on, cached))

    level = _level(results, {"measured", "declared"})
    measured_level = _level(results, {"measured"})
    declared_level = _level(results, {"declared"})
    blocking = tuple(r for r in results if r.level == level + 1 and not r.passed)
    ambition = pf.ambition_level
    return ProcessAssessment(
        process=process,
        level=level,
        measured_level=measured_level,
        declared_level=declared_level,
        ambition=ambition,
        gap=ambition - level if ambition is not None else None,
        gates=tuple(results),
        blocking=blocking,
        rulebook_version=rulebook.version,
    )


def _level(results: list[GateResult], kinds: set[str]) -> int:
    level = 1
    for candidate in LEVELS:
        if all(r.passed for r in results if r.level == candidate and r.kind in kinds):
            level = candidate
        else:
            break
    return level


# --- one requirement ------------------------------------------------------------------------


def _result(
    req: Requirement,
    status: str,
    value: float | None = None,
    numerator: float | None = None,
    denominator: float | None = None,
    distance: float | None = None,
    explanation: str | None = None,
) -> GateResult:
    if status == PASS:
        distance, explanation = None, None
    return GateResult(
        gate=req.gate,
        level=req.level,
        kind=req.kind,
        metric=req.metric,
        value=value,
        numerator=numerator,
        denominator=denominator,
        threshold=req.threshold,
        status=status,
        window_days=req.window_days,
        source=req.source,
        distance=distance,
        explanation=explanation,
    )


def _check(
    req: Requirement,
    process: str,
    pf: ProcessFacts,
    facts: GovernanceFacts,
    book: Rulebook,
    on: date,
    measure: Measure,
) -> GateResult:
    if req.kind == "declared":
        return _declared(req, process, facts, on)
    if req.source == "events":
        assert req.window_days is not None  # the rulebook gives every indicator a window
        return _indicator(req, measure(req.metric, req.window_days), book)
    return _fact(req, pf, facts, book, on)


def _declared(req: Requirement, process: str, facts: GovernanceFacts, on: date) -> GateResult:
    """Passes on the platform's own record, or on evidence that a different person approved
    and that has not expired; evidence approved but expired is stale; anything else (none,
    attested but not approved, approved by the attester) is missing."""
    platform = PLATFORM_DECLARATIONS.get(req.metric)
    if platform is not None and getattr(facts, platform):
        return _result(req, PASS)
    relevant = evidence_for(facts, req.metric, process, on)
    approved = [e for e in relevant if e.approved()]
    if any(e.current(on) for e in approved):
        return _result(req, PASS)
    if approved:
        expired = max(e.expires_on for e in approved if e.expires_on is not None)
        return _result(
            req, STALE_EVIDENCE, explanation=f"evidence expired on {expired.isoformat()}"
        )
    if relevant:
        return _result(
            req,
            MISSING,
            explanation="evidence attested, but it needs approval by a second person",
        )
    return _result(req, MISSING, explanation="needs evidence approved by a second person")


def _indicator(req: Requirement, v: IndicatorValue | None, book: Rulebook) -> GateResult:
    if v is None:
        return _result(
            req, INSUFFICIENT_DATA, explanation=f"{req.metric} is not measured for this process"
        )
    if v.suppressed or v.value is None:
        if (
            v.suppressed
            and req.metric == "EXT"
            and req.comparison == "at_least"
            and req.threshold is not None
            and req.threshold >= book.k
        ):
            # A count of people suppressed by the privacy rules is under k, so under the
            # threshold: the gate fails without showing the count.
            return _result(
                req,
                FAIL,
                explanation=f"fewer than {book.k} external participants active; "
                f"at least {_num(req.threshold)} needed",
            )
        return _result(
            req,
            INSUFFICIENT_DATA,
            explanation=f"too few people behind {req.metric} (fewer than {book.k}) "
            "or nothing to measure",
        )
    value: float = v.value
    numerator, denominator = v.numerator, v.denominator
    if req.metric == "X1":
        # The gate compares the cross-department share s = (EI+1)/2 = cross ties / all ties.
        s = v.detail.get("s")
        value = float(s) if s is not None else (v.value + 1) / 2
        if numerator is not None and denominator is not None:
            cross = (numerator + denominator) / 2
            numerator = int(cross) if float(cross).is_integer() else cross
    return _compare(req, value, numerator, denominator)


def _compare(
    req: Requirement, value: float, numerator: float | None, denominator: float | None
) -> GateResult:
    """Checks ``value`` against the requirement's threshold. A share with its numerator and
    denominator is compared exactly (45/100 against 0.45 is not subject to rounding) and its
    distance is in numerator units at the current denominator."""
    threshold = req.threshold
    assert threshold is not None
    share = (
        req.metric in SHARE_METRICS
        and numerator is not None
        and denominator is not None
        and denominator > 0
    )
    if share:
        assert numerator is not None and denominator is not None
        exact = Fraction(numerator) / Fraction(denominator)
        bound = Fraction(str(threshold))
        ok = exact >= bound if req.comparison == "at_least" else exact <= bound
    else:
        ok = value >= threshold if req.comparison == "at_least" else value <= threshold
    if ok:
        return _result(req, PASS, value, numerator, denominator)
    distance: float
    if share:
        assert numerator is not None and denominator is not None
        limit = Fraction(str(threshold)) * Fraction(denominator)
        if req.comparison == "at_least":
            distance = _int(math.ceil(limit - Fraction(numerator)))
        else:
            distance = _int(math.ceil(Fraction(numerator) - math.floor(limit)))
        unit = UNITS.get(req.metric, f"{req.metric} units")
        more = "more" if req.comparison == "at_least" else "fewer"
        explanation = f"{_num(distance)} {more} {unit} at the current volume"
    else:
        gap = value - threshold if req.comparison == "at_most" else threshold - value
        distance = round(gap, 2)
        explanation = _sentence(req, value, distance)
    return _result(req, FAIL, value, numerator, denominator, distance, explanation)


def _sentence(req: Requirement, value: float, distance: float) -> str:
    threshold = req.threshold
    assert threshold is not None
    if req.metric in MEDIANS:
        return (
            f"{MEDIANS[req.metric]} is {_num(round(value, 2))} h: it must fall by "
            f"{_num(distance)} h to at most {_num(threshold)} h"
        )
    if req.metric == "EXT":
        return f"{_num(distance)} more external participants active in the process"
    if req.metric == "policy_revisions_citing_readings":
        return f"{_num(distance)} more policy revision(s) citing a reading"
    if req.metric == "days_since_reading":
        return (
            f"the last reading is {_num(value)} days old (at most {_num(threshold)}): "
            "take a reading"
        )
    bound = "at least" if req.comparison == "at_least" else "at most"
    return f"{req.metric} is {_num(round(value, 4))}, needs {bound} {_num(threshold)}"


def _fact(
    req: Requirement, pf: ProcessFacts, facts: GovernanceFacts, book: Rulebook, on: date
) -> GateResult:
    metric = req.metric
    if metric == "owner_and_space":
        largest = max(pf.tagged_group_sizes, default=None)
        if pf.owner_id is None:
            return _result(req, MISSING, largest, explanation="name an owner for the process")
        if largest is None:
            return _result(req, MISSING, explanation="tag a group or space with the process")
        if largest >= book.k:
            return _result(req, PASS, largest)
        return _result(
            req,
            FAIL,
            largest,
            distance=book.k - largest,
            explanation=f"{book.k - largest} more active members in a tagged group "
            f"(at least {book.k})",
        )
    if metric == "platform_chosen":
        if pf.platform_chosen:
            return _result(req, PASS)
        return _result(
            req,
            MISSING,
            explanation="choose the platforms: a roadmap item linked to platforms_chosen, "
            "done or with a due date",
        )
    if metric == "days_since_reading":
        if facts.last_reading_at is None:
            return _result(req, MISSING, explanation="no reading taken yet: take a reading")
        age = max((on - facts.last_reading_at.date()).days, 0)
        return _compare(req, age, None, None)
    if metric == "policy_revisions_citing_readings":
        return _compare(req, facts.policy_revisions_citing_readings, None, None)
    if metric == "policy_acknowledged":
        if not facts.policy_published:
            return _result(
                req,
                MISSING,
                explanation="publish an approved policy so that the audience can acknowledge it",
            )
        return _people_share(req, pf.policy_acknowledged, pf.policy_audience, book, "audience")
    if metric == "training_completed":
        if pf.training_required == 0:
            return _result(
                req,
                MISSING,
                explanation="no training requirement defined for the roles of this process",
            )
        return _people_share(
            req, pf.training_completed, pf.training_required, book, "people who need training"
        )
    if metric == "roadmap_due_done":
        if pf.ambition_level is None:
            return _result(req, MISSING, explanation="set an ambition level for the process")
        if pf.roadmap_items == 0:
            return _result(req, MISSING, explanation="plan at least one roadmap item")
        if pf.roadmap_items_due == 0:
            return _result(req, PASS, None, 0, 0)  # nothing due yet
        done, due = pf.roadmap_items_due_done, pf.roadmap_items_due
        return _compare(req, done / due, done, due)
    raise ValueError(f"no rule for the fact metric {metric!r}")  # the rulebook rejects these


def _people_share(
    req: Requirement, numerator: int, denominator: int, book: Rulebook, who: str
) -> GateResult:
    """A share of people: under k people, neither the figure nor a verdict is shown."""
    if denominator < book.k:
        return _result(
            req,
            INSUFFICIENT_DATA,
            explanation=f"fewer than {book.k} {who}: the share is not shown",
        )
    return _compare(req, numerator / denominator, numerator, denominator)


def _int(x: int) -> int:
    return max(int(x), 0)


def _num(x: float) -> str:
    """A number for a sentence: 13, 0.58, 2.5 (no trailing zeros)."""
    return f"{x:g}" if isinstance(x, float) else str(x)


def evidence_for(facts: GovernanceFacts, key: str, process: str, on: date) -> tuple[Evidence, ...]:
    """The evidence a declared requirement with evidence key ``key`` reads for ``process`` on
    ``on`` (for display next to a gate)."""
    return tuple(
        e
        for e in facts.evidence
        if e.gate == key and (e.process is None or e.process == process) and e.attested_on <= on
    )


__all__ = [
    "FAIL",
    "INSUFFICIENT_DATA",
    "MISSING",
    "PASS",
    "STALE_EVIDENCE",
    "STATUSES",
    "GateResult",
    "Measure",
    "ProcessAssessment",
    "assess",
    "evidence_for",
]
