"""HTTP boundary of the people directory and departments."""

from __future__ import annotations

from flask import Blueprint

from esn import access
from esn.accounts.actions import do_update_profile
from esn.accounts.auth import require_user
from esn.accounts.models import User
from esn.api.problems import reject_nulls
from esn.api.spec import operation
from esn.directory import queries
from esn.directory.schemas import (
    DepartmentList,
    DepartmentOut,
    PeoplePage,
    PeopleQuery,
    PersonSummary,
    Profile,
    ProfileUpdate,
)
from esn.extensions import db
from esn.photos.queries import avatar_url

bp = Blueprint("directory", __name__, url_prefix="/api/v1")


@operation(
    bp,
    "/people",
    "GET",
    summary="List and filter people",
    tags=["directory"],
    query=PeopleQuery,
    response=PeoplePage,
)
def list_people(query: PeopleQuery) -> PeoplePage:
    """Filter by department (with sub-departments by default), skill and location; ``q``
    matches the start of any word of a name or of a skill (every word of ``q`` must match).
    Ordered by name."""
    viewer = require_user()
    access.require(viewer, "directory:browse")
    people, cursor = queries.list_people(viewer, query)
    return PeoplePage(items=[PersonSummary.model_validate(p) for p in people], next_cursor=cursor)


def profile_out(person: User) -> Profile:
    out = Profile.model_validate(person)
    out.avatar_url = avatar_url(person.id)
    return out


@operation(
    bp,
    "/people/<int:user_id>",
    "GET",
    summary="Read a profile",
    tags=["directory"],
    response=Profile,
)
def get_person(user_id: int) -> Profile:
    viewer = require_user()
    return profile_out(queries.access_profile(viewer, user_id))


@operation(
    bp,
    "/people/<int:user_id>",
    "PATCH",
    summary="Edit a profile",
    tags=["directory"],
    body=ProfileUpdate,
    response=Profile,
)
def update_person(user_id: int, body: ProfileUpdate) -> Profile:
    """The owner and administrators may edit; fields left out stay as they are."""
    viewer = require_user()
    person = queries.access_profile(viewer, user_id)
    access.require(viewer, "profile:edit", person)
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes)
    do_update_profile(viewer, person, changes)
    db.session.commit()
    return profile_out(person)


@operation(
    bp,
    "/departments",
    "GET",
    summary="List departments",
    tags=["directory"],
    response=DepartmentList,
)
def list_departments() -> DepartmentList:
    """Every department with its parent and the number of active members."""
    viewer = require_user()
    access.require(viewer, "directory:browse")
    return DepartmentList(
        items=[
            DepartmentOut(id=d.id, code=d.code, name=d.name, parent_id=d.parent_id, member_count=n)
            for d, n in queries.list_departments()
        ]
    )
