"""What the assessment needs to know besides the usage events: the governance records of the
installation (process scopes, ambitions, roadmap, evidence, policy, training), as plain data.

The host application builds these from its own tables (``esn.governance.queries.governance_facts``);
the assessment reads nothing else, so a reading can be reproduced from its stored facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Evidence:
    """A declared attestation for a gate: who attested, who approved (four eyes: the approver
    must be a different person), from when and until when it holds."""

    gate: str  # a gate key of the rulebook, e.g. "policy_described"
    process: str | None  # None: holds for every process
    link: str
    attested_by: int
    approved_by: int | None
    attested_on: date
    expires_on: date | None

    def approved(self) -> bool:
        return self.approved_by is not None and self.approved_by != self.attested_by

    def current(self, on: date) -> bool:
        return self.expires_on is None or self.expires_on >= on


@dataclass(frozen=True)
class ProcessFacts:
    process: str
    owner_id: int | None = None
    # Active members of each group tagged with the process (the "tagged space").
    tagged_group_sizes: tuple[int, ...] = ()
    ambition_level: int | None = None
    ambition_due: date | None = None
    roadmap_items: int = 0  # all items of the process
    roadmap_items_due: int = 0  # items whose due date is on or before the day of the reading
    roadmap_items_due_done: int = 0
    # A roadmap item linked to the "platforms_chosen" gate that is done, or has a due date.
    platform_chosen: bool = False
    # People of the process audience whose roles require training / of those, who completed it.
    training_required: int = 0
    training_completed: int = 0
    # People of the process audience / of those, who acknowledged the current policy version.
    policy_audience: int = 0
    policy_acknowledged: int = 0


@dataclass(frozen=True)
class GovernanceFacts:
    # DPIA reference and works-council consent recorded: without them no reading is produced.
    privacy_recorded: bool = False
    # The current social-media policy version: has a document, a version and an approver.
    policy_published: bool = False
    netiquette_published: bool = False
    escalation_declared: bool = False
    # Policy revisions whose change note cites a reading (the improvement loops).
    policy_revisions_citing_readings: int = 0
    last_reading_at: datetime | None = None
    evidence: tuple[Evidence, ...] = ()
    processes: dict[str, ProcessFacts] = field(default_factory=dict)
