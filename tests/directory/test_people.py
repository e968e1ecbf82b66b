"""The people directory: listing, filtering, lookup, visibility and paging; reading profiles."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from esn.accounts.actions import do_deactivate_user
from esn.accounts.models import User
from esn.directory.actions import do_create_department
from esn.directory.models import Department
from esn.extensions import db
from tests.conftest import ApiClient, make_user

PEOPLE = "/api/v1/people"


def make_department(code: str, name: str, parent: Department | None = None) -> Department:
    db.session.rollback()
    department = do_create_department(None, code, name, parent.id if parent else None)
    db.session.commit()
    return department


def deactivate(user: User) -> None:
    db.session.rollback()
    do_deactivate_user(None, user)
    db.session.commit()


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [p["display_name"] for p in response.get_json()["items"]]


@pytest.fixture
def world(app, admin, employee) -> SimpleNamespace:
    """A three-level tree ORG > ENG > PLATFORM plus SALES, and people placed in it."""
    org = make_department("ORG", "Organisation")
    eng = make_department("ENG", "Engineering", org)
    platform = make_department("PLAT", "Platform", eng)
    sales = make_department("SALES", "Sales", org)
    w = SimpleNamespace(org=org, eng=eng, platform=platform, sales=sales)
    w.anna = make_user(
        "anna@example.org",
        display_name="Anna de Vries",
        department_id=platform.id,
        title="Data scientist",
        location="Amsterdam",
        time_zone="Europe/Amsterdam",
        skills=["Python", "Machine  Learning"],
        bio="Likes graphs.",
    )
    w.jo = make_user(
        "jo@example.org",
        display_name="Jo Annink",
        department_id=eng.id,
        location="amsterdam",
        skills=["Go"],
    )
    w.joanne = make_user(
        "joanne@example.org",
        display_name="Joanne Smith",
        department_id=org.id,
        location="Utrecht",
        skills=["Sales"],
    )
    w.sam = make_user(
        "sam@example.org", display_name="Sam Seller", department_id=sales.id, location="Utrecht"
    )
    w.ghost = make_user(
        "ghost@example.org",
        display_name="Annabel Gone",
        department_id=eng.id,
        location="Amsterdam",
        skills=["Python"],
    )
    deactivate(w.ghost)
    w.bot = make_user(
        "bot@example.org",
        display_name="Build Bot",
        department_id=platform.id,
        is_bot=True,
        password=None,
    )
    w.guest = make_user(
        "guest@example.org", display_name="Gus Guest", is_external=True, location="Amsterdam"
    )
    return w


# --- departments --------------------------------------------------------------------------------


def test_department_filter_includes_subdepartments_by_default(employee_api, world):
    assert names(employee_api.get(PEOPLE, query_string={"department_id": world.eng.id})) == [
        "Anna de Vries",
        "Build Bot",
        "Jo Annink",
    ]
    assert names(employee_api.get(PEOPLE, query_string={"department_id": world.org.id})) == [
        "Anna de Vries",
        "Build Bot",
        "Jo Annink",
        "Joanne Smith",
        "Sam Seller",
    ]
    assert names(employee_api.get(PEOPLE, query_string={"department_id": world.platform.id})) == [
        "Anna de Vries",
        "Build Bot",
    ]


def test_department_filter_without_subdepartments(employee_api, world):
    direct = {"include_subdepartments": "false"}
    assert names(
        employee_api.get(PEOPLE, query_string={"department_id": world.eng.id, **direct})
    ) == [
        "Jo Annink",
    ]
    assert names(
        employee_api.get(PEOPLE, query_string={"department_id": world.org.id, **direct})
    ) == [
        "Joanne Smith",
    ]


def test_unknown_department_lists_nobody(employee_api, world):
    assert names(employee_api.get(PEOPLE, query_string={"department_id": 999_999})) == []


# --- skill and location ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "skill", ["machine learning", "  MACHINE   learning ", "Machine\tLearning"]
)
def test_skill_filter_is_case_and_whitespace_insensitive(employee_api, world, skill):
    assert names(employee_api.get(PEOPLE, query_string={"skill": skill})) == ["Anna de Vries"]


def test_skill_filter_is_exact_not_prefix(employee_api, world):
    assert names(employee_api.get(PEOPLE, query_string={"skill": "machine"})) == []
    # The deactivated Annabel has Python too, but is hidden.
    assert names(employee_api.get(PEOPLE, query_string={"skill": "PYTHON"})) == ["Anna de Vries"]


def test_location_filter_is_case_insensitive(employee_api, world):
    assert names(employee_api.get(PEOPLE, query_string={"location": "AMSTERDAM"})) == [
        "Anna de Vries",
        "Gus Guest",
        "Jo Annink",
    ]
    assert names(employee_api.get(PEOPLE, query_string={"location": " utrecht "})) == [
        "Joanne Smith",
        "Sam Seller",
    ]


def test_filters_combine(employee_api, world):
    query = {"department_id": world.org.id, "location": "amsterdam", "skill": "go"}
    assert names(employee_api.get(PEOPLE, query_string=query)) == ["Jo Annink"]


# --- lookup q -------------------------------------------------------------------------------


LOOKUPS = [
    # Start of any word of a name, case-insensitive; never the middle of a word.
    ("ann", ["Anna de Vries", "Jo Annink"]),
    ("ANN", ["Anna de Vries", "Jo Annink"]),
    ("de", ["Anna de Vries"]),
    ("vri", ["Anna de Vries"]),
    ("nnink", []),
    ("oanne", []),
    # Every word must match something.
    ("ann jo", ["Jo Annink"]),
    ("  jo   ann ", ["Jo Annink"]),
    ("ann xyz", []),
    # Skills: by their start, and by the start of one of their words.
    ("pyth", ["Anna de Vries"]),
    ("go", ["Jo Annink"]),
    ("machine learning", ["Anna de Vries"]),
    ("learn", ["Anna de Vries"]),
    # A name word and a skill together.
    ("jo go", ["Jo Annink"]),
]


def test_lookup_by_name_word_prefix_and_skill(employee_api, world):
    for q, expected in LOOKUPS:
        assert names(employee_api.get(PEOPLE, query_string={"q": q})) == expected, q


def test_blank_q_lists_everyone_visible(employee_api, world):
    assert len(names(employee_api.get(PEOPLE, query_string={"q": "   "}))) == 8


WILDCARDS = [
    ("%", ["%Percy Pct"]),
    ("_", ["_Under Score"]),
    ("\\", ["\\Back Slash"]),
    ("a%", []),
    ("a_na", []),
    ("%p", ["%Percy Pct"]),
    ("%x", []),
    ("pct%", []),
    ("\\b", ["\\Back Slash"]),
]


def test_q_wildcards_are_literal(employee_api, world):
    make_user("pct@example.org", display_name="%Percy Pct", password=None)
    make_user("under@example.org", display_name="_Under Score", password=None)
    make_user("back@example.org", display_name="\\Back Slash", password=None)
    for q, expected in WILDCARDS:
        assert names(employee_api.get(PEOPLE, query_string={"q": q})) == expected, q


# --- visibility -----------------------------------------------------------------------------


def test_deactivated_people_are_hidden(employee_api, admin_api, world):
    assert "Annabel Gone" not in names(employee_api.get(PEOPLE))
    assert "Annabel Gone" not in names(admin_api.get(PEOPLE))
    # Asking does not help a non-administrator.
    assert "Annabel Gone" not in names(
        employee_api.get(PEOPLE, query_string={"include_inactive": "true"})
    )
    assert "Annabel Gone" not in names(
        employee_api.get(PEOPLE, query_string={"include_inactive": "true", "q": "annabel"})
    )


def test_admin_may_include_deactivated_people(admin_api, world):
    listed = admin_api.get(
        PEOPLE, query_string={"include_inactive": "true", "department_id": world.eng.id}
    )
    assert names(listed) == ["Anna de Vries", "Annabel Gone", "Build Bot", "Jo Annink"]
    found = admin_api.get(PEOPLE, query_string={"include_inactive": "true", "skill": "python"})
    assert names(found) == ["Anna de Vries", "Annabel Gone"]


def test_deactivated_profile_is_404_for_employees_and_readable_by_admins(
    employee_api, admin_api, world
):
    response = employee_api.get(f"{PEOPLE}/{world.ghost.id}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = admin_api.get(f"{PEOPLE}/{world.ghost.id}").get_json()
    assert body["is_active"] is False and body["display_name"] == "Annabel Gone"


def test_bots_are_listed_and_marked(employee_api, world):
    items = employee_api.get(PEOPLE, query_string={"q": "build"}).get_json()["items"]
    assert [(p["display_name"], p["is_bot"]) for p in items] == [("Build Bot", True)]
    anna = employee_api.get(PEOPLE, query_string={"q": "anna"}).get_json()["items"][0]
    assert anna["is_bot"] is False


def test_external_people_cannot_browse_but_read_their_own_profile(app, world):
    guest = ApiClient(app)
    assert guest.sign_in("guest@example.org").status_code == 200
    for path in (PEOPLE, "/api/v1/departments"):
        response = guest.get(path)
        assert response.status_code == 403, path
        assert response.get_json()["type"].endswith("/forbidden")
    own = guest.get(f"{PEOPLE}/{world.guest.id}")
    assert own.status_code == 200
    assert own.get_json()["is_external"] is True
    # Whether a colleague exists is not theirs to find out.
    assert guest.get(f"{PEOPLE}/{world.anna.id}").status_code == 404


def test_external_people_are_listed_for_employees(employee_api, world):
    items = employee_api.get(PEOPLE, query_string={"q": "gus"}).get_json()["items"]
    assert [(p["display_name"], p["is_external"]) for p in items] == [("Gus Guest", True)]


# --- profiles -------------------------------------------------------------------------------


def test_profile_has_its_fields(employee_api, world):
    response = employee_api.get(f"{PEOPLE}/{world.anna.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == world.anna.id
    assert body["display_name"] == "Anna de Vries"
    assert body["email"] == "anna@example.org"
    assert body["title"] == "Data scientist"
    assert body["department"] == {"id": world.platform.id, "code": "PLAT", "name": "Platform"}
    assert body["location"] == "Amsterdam"
    assert body["time_zone"] == "Europe/Amsterdam"
    assert body["skills"] == ["Machine Learning", "Python"]
    assert body["bio"] == "Likes graphs."
    assert body["is_active"] is True and body["is_bot"] is False and body["is_external"] is False
    assert "password_hash" not in body and "auth_epoch" not in body


def test_summary_in_list_has_no_private_fields(employee_api, world):
    anna = employee_api.get(PEOPLE, query_string={"q": "vries"}).get_json()["items"][0]
    assert anna["skills"] == ["Machine Learning", "Python"]
    assert anna["department"]["code"] == "PLAT"
    assert "password_hash" not in anna and "email" not in anna


def test_unknown_person_is_404(employee_api, world):
    response = employee_api.get(f"{PEOPLE}/999999")
    assert response.status_code == 404
    assert response.get_json()["type"].endswith("/not-found")


def test_anonymous_cannot_read_profiles(api, world):
    assert api.get(f"{PEOPLE}/{world.anna.id}").status_code == 401


# --- paging ---------------------------------------------------------------------------------


def test_cursor_pagination_with_ties_on_display_name(app, employee_api, employee):
    for i in range(7):
        make_user(f"same{i}@example.org", display_name="Same Name", password=None)
    make_user("samea@example.org", display_name="Same Able", password=None)
    make_user("samez@example.org", display_name="Same Zed", password=None)
    everyone = employee_api.get(PEOPLE, query_string={"q": "same", "limit": 100}).get_json()
    assert everyone["next_cursor"] is None
    expected = [p["id"] for p in everyone["items"]]
    assert len(expected) == 9
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query: dict[str, Any] = {"q": "same", "limit": 2}
        if cursor:
            query["cursor"] = cursor
        page = employee_api.get(PEOPLE, query_string=query).get_json()
        pages += 1
        assert len(page["items"]) <= 2
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 5
    # Within the tie the order is by id, so it is stable.
    tied = [p["id"] for p in everyone["items"] if p["display_name"] == "Same Name"]
    assert tied == sorted(tied)


def test_last_full_page_has_no_dangling_cursor(employee_api, employee):
    for i in range(2):
        make_user(f"pair{i}@example.org", display_name="Pair Person", password=None)
    page = employee_api.get(PEOPLE, query_string={"q": "pair", "limit": 2}).get_json()
    assert len(page["items"]) == 2 and page["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["garbage!", "WyJhIl0", "WyJhIiwiYiJd", "WzEsMl0"])
def test_bad_cursor_is_400(employee_api, cursor):
    response = employee_api.get(PEOPLE, query_string={"cursor": cursor})
    assert response.status_code == 400
    assert response.get_json()["type"].endswith("/invalid-cursor")


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 101}, {"department_id": 0}, {"bogus": 1}]
)
def test_invalid_query_is_422(employee_api, query):
    assert employee_api.get(PEOPLE, query_string=query).status_code == 422


# --- departments list -------------------------------------------------------------------------


def test_departments_list_counts_active_members(employee_api, world):
    response = employee_api.get("/api/v1/departments")
    assert response.status_code == 200
    rows = {
        d["code"]: (d["name"], d["parent_id"], d["member_count"])
        for d in response.get_json()["items"]
    }
    assert rows == {
        # Annabel in ENG is deactivated and not counted; members of sub-departments are not
        # members of the parent.
        "ENG": ("Engineering", world.org.id, 1),
        "ORG": ("Organisation", None, 1),
        "PLAT": ("Platform", world.eng.id, 2),
        "SALES": ("Sales", world.org.id, 1),
    }


# --- beyond ASCII -----------------------------------------------------------------------------


BEYOND_ASCII = [
    ({"q": "émile"}, ["Émile Öztürk"]),
    ({"q": "ÖZ"}, ["Émile Öztürk"]),
    ({"q": "øy"}, ["Øystein Ås"]),
    ({"q": "ås"}, ["Øystein Ås"]),
    ({"location": "zürich"}, ["Émile Öztürk"]),
    ({"location": "Zürich"}, ["Émile Öztürk"]),
    ({"skill": "ÜBERSETZEN"}, ["Øystein Ås"]),
    ({"q": "über"}, ["Øystein Ås"]),
]


def test_case_insensitive_beyond_ascii(employee_api, employee):
    make_user("emile@example.org", display_name="Émile Öztürk", location="ZÜRICH", password=None)
    make_user(
        "oystein@example.org", display_name="Øystein Ås", skills=["Übersetzen"], password=None
    )
    for query, expected in BEYOND_ASCII:
        assert names(employee_api.get(PEOPLE, query_string=query)) == expected, query
