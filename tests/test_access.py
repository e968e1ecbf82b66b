"""The per-object check and the bulk filters of esn.access agree, on random small worlds.

For every viewer the directory lets browse, the people that ``list_people`` returns (paged
through to the end, with random filters) are exactly the people ``can(viewer, "profile:read",
person)`` allows, restricted to what the filters ask for. ``include_inactive`` asks for everyone
the viewer may read; without it, deactivated people are left out. The bare bulk filter
``directory_filter`` is checked against ``can`` for every viewer, including external and
deactivated ones, who cannot browse.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from esn import access
from esn.accounts.actions import do_create_user, do_deactivate_user
from esn.accounts.models import User
from esn.directory.actions import do_create_department
from esn.directory.models import Department
from esn.directory.queries import list_people
from esn.directory.schemas import PeopleQuery
from esn.extensions import Base, db

NAMES = ["Ann", "Bob", "Ann Bob", "Bob Annink", "ann"]
LOCATIONS = ["Amsterdam", "amsterdam", "Utrecht", ""]
# Departments: 0 is the root, 1 is under 0, 2 is under 1; None is no department.
PARENT = {0: None, 1: 0, 2: 1}


@dataclass(frozen=True)
class Person:
    name: str
    active: bool
    external: bool
    admin: bool
    location: str
    department: int | None


people = st.builds(
    Person,
    name=st.sampled_from(NAMES),
    active=st.booleans(),
    external=st.booleans(),
    admin=st.booleans(),
    location=st.sampled_from(LOCATIONS),
    department=st.sampled_from([None, 0, 1, 2]),
)


@dataclass(frozen=True)
class Filters:
    department: int | None
    include_subdepartments: bool
    location: str | None
    q: str | None
    limit: int


filters = st.builds(
    Filters,
    department=st.sampled_from([None, None, 0, 1, 2]),
    include_subdepartments=st.booleans(),
    location=st.sampled_from([None, None, "AMSTERDAM", "utrecht"]),
    q=st.sampled_from([None, None, "ann", "bo", "ann bob", "nn"]),
    limit=st.integers(1, 3),
)


def _wipe() -> None:
    db.session.rollback()
    # Departments refer to each other; SQLite checks that row by row.
    db.session.execute(update(Department).values(parent_id=None))
    for table in reversed(Base.metadata.sorted_tables):
        db.session.execute(delete(table))
    db.session.commit()


def _build(world: list[Person]) -> tuple[list[User], dict[int, int]]:
    """Write ``world`` to the database; returns the users and the department ids by index."""
    _wipe()
    departments: dict[int, int] = {}
    for index, parent in PARENT.items():
        parent_id = departments[parent] if parent is not None else None
        departments[index] = do_create_department(None, f"D{index}", f"Dept {index}", parent_id).id
    users = []
    for n, p in enumerate(world):
        user = do_create_user(
            None,
            {
                "email": f"p{n}@example.org",
                "display_name": p.name,
                "roles": ["admin", "employee"] if p.admin else ["employee"],
                "password": None,
                "is_external": p.external,
                "location": p.location,
                "department_id": departments[p.department] if p.department is not None else None,
            },
        )
        if not p.active:
            do_deactivate_user(None, user)
        users.append(user)
    db.session.commit()
    return users, departments


def _subtree(index: int) -> set[int]:
    out = {index}
    changed = True
    while changed:
        grown = out | {child for child, parent in PARENT.items() if parent in out}
        changed = grown != out
        out = grown
    return out


def _matches(person: Person, f: Filters) -> bool:
    """What the filters ask for, written independently of the SQL."""
    if f.department is not None:
        wanted = _subtree(f.department) if f.include_subdepartments else {f.department}
        if person.department not in wanted:
            return False
    if f.location is not None and person.location.lower() != f.location.lower():
        return False
    if f.q is not None:
        words = person.name.lower().split()
        if not all(any(w.startswith(term) for w in words) for term in f.q.lower().split()):
            return False
    return True


def _listed(
    viewer: User, f: Filters, departments: dict[int, int], include_inactive: bool
) -> list[int]:
    """Every page of ``list_people`` for ``viewer``, concatenated."""
    ids: list[int] = []
    cursor = None
    for _ in range(50):
        query = PeopleQuery(
            department_id=departments[f.department] if f.department is not None else None,
            include_subdepartments=f.include_subdepartments,
            location=f.location,
            q=f.q,
            include_inactive=include_inactive,
            limit=f.limit,
            cursor=cursor,
        )
        page, cursor = list_people(viewer, query)
        assert len(page) <= f.limit
        ids += [u.id for u in page]
        if cursor is None:
            return ids
    raise AssertionError("paging did not end")


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=st.lists(people, min_size=1, max_size=6), f=filters)
def test_listing_agrees_with_profile_read(app, world, f):
    users, departments = _build(world)
    spec = {u.id: p for u, p in zip(users, world, strict=True)}
    for viewer in users:
        allowed = {t.id for t in users if access.can(viewer, "profile:read", t)}

        # The bulk filter alone is the bulk form of the object check, for every viewer.
        bulk = set(db.session.scalars(select(User.id).where(access.directory_filter(viewer))))
        assert bulk == allowed, (spec[viewer.id], bulk, allowed)

        if not access.can(viewer, "directory:browse"):
            assert not spec[viewer.id].active or spec[viewer.id].external
            continue
        for include_inactive in (False, True):
            listed = _listed(viewer, f, departments, include_inactive)
            assert len(listed) == len(set(listed)), "a person was listed twice"
            expected = {
                t for t in allowed if _matches(spec[t], f) and (include_inactive or spec[t].active)
            }
            assert set(listed) == expected, (spec[viewer.id], f, include_inactive)
            # Paging neither skips nor repeats: the pages make up the one-page answer, in order.
            whole = replace(f, limit=100)
            assert listed == _listed(viewer, whole, departments, include_inactive)


def test_anonymous_may_read_nobody(app):
    users, _ = _build([Person("Ann", True, False, True, "", None)])
    assert not access.can(None, "profile:read", users[0])
    assert set(db.session.scalars(select(User.id).where(access.directory_filter(None)))) == set()
