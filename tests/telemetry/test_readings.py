"""Readings through the API: the contract's exact shape, levels from events and records,
reproducibility, and the comparison of two readings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from esn.clock import frozen_at
from tests.conftest import ApiClient
from tests.telemetry import world
from tests.telemetry.test_indicators import lead_api, office, office_events  # noqa: F401

PROCESSES = ["marketing", "recruitment", "innovation", "production", "service"]
GATE_KEYS = {"gate", "level", "kind", "metric", "value", "numerator", "denominator",
             "threshold", "status", "window_days", "source"}  # fmt: skip


def take(api: ApiClient, day: int, at_day: int) -> dict[str, Any]:
    with frozen_at(world.at(day)):
        response = api.post(
            "/api/v1/governance/readings",
            json={"at": (world.START + timedelta(days=at_day)).isoformat()},
        )
    assert response.status_code == 201, str(response.get_json())
    return response.get_json()


def test_a_reading_has_the_contract_shape(app, lead_api):  # noqa: F811
    reading = take(lead_api, 30, 27)
    assert {"id", "taken_at", "definitions_version", "thresholds_version", "processes"} <= set(
        reading
    )
    assert reading["definitions_version"] == "smg-indicators-1"
    assert reading["thresholds_version"] == "smg-thresholds-1"
    assert [p["process"] for p in reading["processes"]] == PROCESSES
    for process in reading["processes"]:
        assert set(process) == {"process", "level", "measured_level", "declared_level",
                                "ambition", "gap", "gates", "blocking"}  # fmt: skip
        # Nothing declared: no owner, no policy, no evidence — level 1 everywhere.
        assert process["level"] == 1
        assert process["ambition"] is None and process["gap"] is None
        for gate in process["gates"]:
            assert set(gate) == GATE_KEYS, gate
            assert gate["status"] in {
                "pass", "fail", "insufficient_data", "stale_evidence", "missing"
            }  # fmt: skip
            assert gate["kind"] in {"measured", "declared"}
        assert process["blocking"], "level 2 has gates that do not pass"
        for gate in process["blocking"]:
            assert gate["level"] == 2 and gate["status"] != "pass"
            assert set(gate) >= GATE_KEYS and "distance" in gate
    with frozen_at(world.at(30)):
        again = lead_api.get(f"/api/v1/governance/readings/{reading['id']}").get_json()
        listed = lead_api.get("/api/v1/governance/readings").get_json()
    assert again == reading
    assert [r["id"] for r in listed["items"]] == [reading["id"]]
    assert listed["items"][0]["levels"] == dict.fromkeys(PROCESSES, 1)


def test_the_same_events_give_the_same_reading(app, lead_api):  # noqa: F811
    first = take(lead_api, 30, 27)
    second = take(lead_api, 31, 27)
    assert first["id"] != second["id"]
    assert first["indicators"] == second["indicators"]
    # Only the "recent reading" gate may differ: the first reading exists for the second.
    strip = {"recent_reading"}

    def gates(reading: dict[str, Any]) -> list[Any]:
        return [[g for g in p["gates"] if g["gate"] not in strip] for p in reading["processes"]]

    assert gates(first) == gates(second)


def test_comparing_two_readings(app, office, lead_api):  # noqa: F811
    before = take(lead_api, 30, 20)
    after = take(lead_api, 30, 27)
    with frozen_at(world.at(30)):
        response = lead_api.get(
            f"/api/v1/governance/readings/compare?from={before['id']}&to={after['id']}"
        )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["from_reading"]["id"] == before["id"] and body["to_reading"]["id"] == after["id"]
    assert [p["process"] for p in body["processes"]] == PROCESSES
    for p in body["processes"]:
        assert p["change"] == "same" and p["from_level"] == p["to_level"] == 1
    deltas = {(d["scope"], d["key"]): d for d in body["indicators"]}
    a1 = deltas[("org", "A1")]
    old = next(i for i in before["indicators"]["org"]["indicators"] if i["key"] == "A1")
    new = next(i for i in after["indicators"]["org"]["indicators"] if i["key"] == "A1")
    assert a1["from_value"] == old["value"] and a1["to_value"] == new["value"]
    assert a1["delta"] == new["value"] - old["value"]
    # T1 has nothing to show in either reading: no delta, marked suppressed.
    assert deltas[("org", "T1")] == {
        "scope": "org", "key": "T1", "from_value": None, "to_value": None, "delta": None,
        "suppressed": True,
    }  # fmt: skip


def test_a_process_climbs_to_level_2_and_says_what_blocks_level_3(app, office, lead_api):  # noqa: F811
    """Innovation gets an owner and a tagged group of five, and p1's thread makes A1 over
    183 days 7/10 in the office world: level 2 holds (measured), and level 3 is blocked by the
    baseline — each blocking gate with its distance."""
    from esn.extensions import db
    from esn.groups.models import Group, GroupMember, GroupRole, JoinPolicy, Visibility
    from esn.processes import Process

    p = office["p"]
    db.session.rollback()
    group = Group(
        name="Idea lab", visibility=Visibility.public, join_policy=JoinPolicy.open,
        process=Process.innovation, created_by_id=p[1],
    )  # fmt: skip
    db.session.add(group)
    db.session.flush()
    for i in range(1, 6):
        role = GroupRole.owner if i == 1 else GroupRole.member
        db.session.add(GroupMember(group_id=group.id, user_id=p[i], role=role))
    db.session.commit()
    with frozen_at(world.at(30)):
        response = lead_api.put(
            "/api/v1/governance/scopes/innovation", json={"owner_id": office["lead"].id}
        )
        assert response.status_code == 200, str(response.get_json())
        response = lead_api.post(
            "/api/v1/governance/ambitions",
            json={"process": "innovation", "target_level": 3, "target_date": "2027-12-31"},
        )
        assert response.status_code in (200, 201), str(response.get_json())
    reading = take(lead_api, 30, 27)
    innovation = next(x for x in reading["processes"] if x["process"] == "innovation")
    assert innovation["level"] == 2, innovation
    assert innovation["measured_level"] >= 2
    assert innovation["ambition"] == 3 and innovation["gap"] == 1
    level2 = {g["gate"]: g for g in innovation["gates"] if g["level"] == 2}
    assert level2["owner_and_space"]["status"] == "pass"
    a1 = level2["interactive_share"]
    assert a1["status"] == "pass" and a1["window_days"] == 183 and a1["source"] == "events"
    # Innovation events: p1's question thread, p3's reaction, p2's comment (p1's own comment
    # does not count): 3 interactive people of 10.
    assert (a1["numerator"], a1["denominator"]) == (3, 10)
    blocking = {g["gate"]: g for g in innovation["blocking"]}
    assert all(g["level"] == 3 for g in innovation["blocking"])
    assert blocking["policy_described"]["status"] == "missing"
    assert blocking["policy_described"]["kind"] == "declared"
    for gate in innovation["blocking"]:
        assert gate["explanation"], gate  # what it takes, in words
    assert blocking["policy_adjusted"]["distance"] == 1
    # Marketing has neither owner nor space: level 1.
    marketing = next(x for x in reading["processes"] if x["process"] == "marketing")
    assert marketing["level"] == 1
