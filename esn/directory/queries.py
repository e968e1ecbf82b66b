"""Reads of the people directory and the department tree."""

from __future__ import annotations

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import aliased, selectinload

from esn import access
from esn.accounts.models import Skill, User, UserSkill
from esn.api.pagination import decode_cursor, encode_cursor
from esn.api.problems import not_found
from esn.directory.models import Department
from esn.directory.schemas import PeopleQuery
from esn.extensions import db


def normalise_skill(label: str) -> str:
    return " ".join(label.split()).lower()


def subtree_ids(department_id: int) -> Select[tuple[int]]:
    """A query for the ids of a department and all its descendants (recursive CTE)."""
    tree = select(Department.id).where(Department.id == department_id).cte(recursive=True)
    child = aliased(Department)
    tree = tree.union_all(select(child.id).where(child.parent_id == tree.c.id))
    return select(tree.c.id)


def access_department(department_id: int) -> Department:
    department = db.session.get(Department, department_id)
    if department is None:
        raise not_found("department")
    return department


def access_profile(viewer: User, user_id: int) -> User:
    """The person ``user_id`` if ``viewer`` may read their profile, else 404 (not 403: whether
    a deactivated account exists is not everyone's business)."""
    user = db.session.get(User, user_id)
    if user is None or not access.can(viewer, "profile:read", user):
        raise not_found("person")
    return user


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_people(viewer: User, query: PeopleQuery) -> tuple[list[User], str | None]:
    """One page of the directory, ordered by name, filtered by what ``viewer`` may see."""
    stmt = (
        select(User).where(access.directory_filter(viewer)).options(selectinload(User.skill_rows))
    )
    if not (query.include_inactive and access.is_admin(viewer)):
        stmt = stmt.where(User.is_active.is_(True))
    if query.department_id is not None:
        if query.include_subdepartments:
            stmt = stmt.where(User.department_id.in_(subtree_ids(query.department_id)))
        else:
            stmt = stmt.where(User.department_id == query.department_id)
    if query.skill:
        stmt = stmt.where(
            User.id.in_(
                select(UserSkill.user_id)
                .join(Skill, Skill.id == UserSkill.skill_id)
                .where(Skill.name == normalise_skill(query.skill))
            )
        )
    if query.location:
        stmt = stmt.where(func.lower(User.location) == query.location.strip().lower())
    if query.q and query.q.strip():
        terms = query.q.split()[:8]
        for term in terms:
            pattern = _like_escape(term.lower())
            name = func.lower(User.display_name)
            # Skills match by the start of any of their words too: ``q`` is split into words,
            # so "machine learning" must find the skill "machine learning" word by word.
            stmt = stmt.where(
                or_(
                    name.like(pattern + "%", escape="\\"),
                    name.like("% " + pattern + "%", escape="\\"),
                    User.id.in_(
                        select(UserSkill.user_id)
                        .join(Skill, Skill.id == UserSkill.skill_id)
                        .where(
                            or_(
                                Skill.name.like(pattern + "%", escape="\\"),
                                Skill.name.like("% " + pattern + "%", escape="\\"),
                            )
                        )
                    ),
                )
            )
    if query.cursor:
        last_name, last_id = decode_cursor(query.cursor, (str, int))
        stmt = stmt.where(
            or_(
                User.display_name > last_name,
                and_(User.display_name == last_name, User.id > last_id),
            )
        )
    stmt = stmt.order_by(User.display_name, User.id).limit(query.limit + 1)
    people = list(db.session.scalars(stmt).unique())
    next_cursor = None
    if len(people) > query.limit:
        people = people[: query.limit]
        last = people[-1]
        next_cursor = encode_cursor(last.display_name, last.id)
    return people, next_cursor


def list_departments() -> list[tuple[Department, int]]:
    counts = (
        select(User.department_id, func.count().label("n"))
        .where(User.is_active.is_(True))
        .group_by(User.department_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Department, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.department_id == Department.id)
        .order_by(Department.code)
    ).all()
    return [(dept, int(n)) for dept, n in rows]
