"""Helpers for the dashboard tests: departments of chosen sizes, people who interact with each
other, a signed-in governance lead, and readings stored as the product stores them."""

from __future__ import annotations

import importlib.util
import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from esn.accounts.models import User
from esn.clock import frozen_at
from esn.directory.models import Department
from esn.extensions import db
from esn.governance.readings import Reading
from esn.usage import kinds
from tests.conftest import ApiClient, make_user
from tests.telemetry import world
from tests.telemetry.reference import Ev

PUBLISH = kinds.POST_PUBLISH.name
COMMENT = kinds.COMMENT_CREATE.name
REACT = kinds.REACTION_ADD.name
MENTION = kinds.MENTION.name
VISIT = kinds.VISIT.name
NETWORK = ("N1", "X1", "X2", "X4")

# The world's last day measured, and the moment the tests ask (two days later).
LAST = world.START + timedelta(days=20)
ASKED = world.at(22)
WINDOW = 28

_roots = itertools.count(1)

MISSING_READING_MODULES = [
    name
    for name in ("telemetry.assessment", "telemetry.rulebook")
    if importlib.util.find_spec(name) is None
]
needs_readings = pytest.mark.skipif(
    bool(MISSING_READING_MODULES),
    reason="readings cannot be taken yet: missing module(s) "
    + ", ".join(MISSING_READING_MODULES)
    + " (POST /api/v1/governance/readings imports them)",
)


def departments(sizes: list[int], parents: dict[int, int] | None = None) -> list[int]:
    """Departments D0, D1, … (``parents`` maps an index to its parent's index)."""
    ids = world.make_departments(len(sizes))
    for child, parent in (parents or {}).items():
        dept = db.session.get(Department, ids[child])
        assert dept is not None
        dept.parent_id = ids[parent]
    db.session.commit()
    return ids


def people_in(
    ids: list[int], sizes: list[int], extra: list[dict[str, Any]] | None = None
) -> list[list[User]]:
    """``sizes[i]`` eligible people in department ``ids[i]`` (one ``make_people`` call: its
    e-mail addresses are numbered from 0), plus ``extra`` people (bots, externals …) returned
    as a last list."""
    specs: list[dict[str, Any]] = []
    for dept, size in zip(ids, sizes, strict=True):
        specs += [{"department_id": dept} for _ in range(size)]
    specs += extra or []
    users = world.make_people(specs)
    out: list[list[User]] = []
    at = 0
    for size in [*sizes, len(extra or [])]:
        out.append(users[at : at + size])
        at += size
    return out


def lead(app: Any) -> ApiClient:
    """A governance lead without a department (so that department counts stay exact), signed
    in when the tests ask, with the privacy record in place."""
    with frozen_at(world.BEFORE):
        make_user("lead@example.org", roles=["employee", "governance_lead"])
    with frozen_at(ASKED):
        api = ApiClient(app)
        assert api.sign_in("lead@example.org").status_code == 200
        world.record_privacy(api)
    return api


def circle(users: list[User], day: int, process: str | None = None) -> list[Ev]:
    """Everyone posts a thread; the next person comments on it, the one before reacts; each
    mentions the next. Every tie is reciprocated around the circle."""
    events: list[Ev] = []
    n = len(users)
    for i, u in enumerate(users):
        nxt, prev = users[(i + 1) % n], users[(i - 1) % n]
        root = next(_roots)
        events.append(Ev(world.at(day, 9), PUBLISH, u.id, None, process, root, root))
        if n > 1:
            events.append(Ev(world.at(day, 11), COMMENT, nxt.id, u.id, process, root))
            events.append(Ev(world.at(day, 12), REACT, prev.id, u.id, process, root, root))
            events.append(Ev(world.at(day, 13), MENTION, u.id, nxt.id, process))
            events.append(Ev(world.at(day, 14), MENTION, nxt.id, u.id, process))
    return events


def visits(users: list[User], day: int) -> list[Ev]:
    return [Ev(world.at(day, 8), VISIT, u.id) for u in users]


def get_indicators(
    api: ApiClient, scope: str, window: int = WINDOW, at: date = LAST
) -> dict[str, Any]:
    with frozen_at(ASKED):
        response = api.get(
            f"/api/v1/governance/indicators?scope={scope}&window_days={window}&at={at}"
        )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return {"population": body["population"], **{i["key"]: i for i in body["indicators"]}}


def hidden(item: dict[str, Any]) -> None:
    assert item["suppressed"] is True, item
    assert item["reason"] == "insufficient_data", item
    assert item["value"] is None and item["numerator"] is None, item
    assert item["denominator"] is None and item["detail"] is None, item


def shown(item: dict[str, Any]) -> None:
    assert item["suppressed"] is False and item["reason"] is None, item
    assert item["value"] is not None, item


# --- readings stored directly (while the assessment is not there) --------------------------------


def indicator(
    key: str, value: float | None, numerator: float | None = None, denominator: float | None = None
) -> dict[str, Any]:
    suppressed = value is None
    return {
        "key": key,
        "value": value,
        "numerator": None if suppressed else numerator,
        "denominator": None if suppressed else denominator,
        "suppressed": suppressed,
        "reason": "insufficient_data" if suppressed else None,
        "detail": None,
    }


def gate(name: str, level: int, status: str, value: float | None = None) -> dict[str, Any]:
    return {
        "gate": name,
        "level": level,
        "kind": "measured",
        "metric": "A1",
        "value": value,
        "numerator": None,
        "denominator": None,
        "threshold": 0.16,
        "status": status,
        "window_days": 183,
        "source": "usage_events",
    }


def store_reading(
    level: int,
    figures: dict[str, dict[str, float | None]],
    gates: list[dict[str, Any]],
    *,
    taken: datetime | None = None,
) -> int:
    """A reading row in the stored shape: ``figures`` maps a scope to {indicator: value or
    None (suppressed)}."""
    content = {
        "indicators": {
            scope: {
                "population": 12,
                "window_days": 90,
                "indicators": [indicator(k, v, v, 1.0) for k, v in values.items()],
            }
            for scope, values in figures.items()
        },
        "processes": [
            {
                "process": "innovation",
                "level": level,
                "measured_level": level,
                "declared_level": level,
                "ambition": 3,
                "gap": 3 - level,
                "gates": gates,
                "blocking": [],
            }
        ],
    }
    db.session.rollback()
    reading = Reading(
        taken_at=taken or datetime(2026, 3, 20, 12, tzinfo=UTC),
        measured_through=LAST,
        definitions_version="smg-indicators-1",
        thresholds_version="smg-thresholds-1",
        taken_by_id=None,
        trigger="manual",
        content=content,
        facts={},
    )
    db.session.add(reading)
    db.session.commit()
    return reading.id
