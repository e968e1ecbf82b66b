"""Shapes of people and departments in the directory."""

from __future__ import annotations

from pydantic import Field

from esn.api.types import (
    Cursor,
    Id,
    Input,
    LongText,
    Name,
    Output,
    SearchText,
    ShortText,
    SkillName,
    TimeZone,
)


class DepartmentRef(Output):
    id: int
    code: str = Field(max_length=32)
    name: str = Field(max_length=200)


class DepartmentOut(DepartmentRef):
    parent_id: int | None
    member_count: int


class DepartmentList(Output):
    items: list[DepartmentOut]


class PersonSummary(Output):
    id: int
    display_name: str = Field(max_length=200)
    title: str = Field(max_length=200)
    department: DepartmentRef | None
    location: str = Field(max_length=200)
    skills: list[str]
    is_external: bool
    is_bot: bool


class Profile(PersonSummary):
    email: str = Field(max_length=254)
    time_zone: str = Field(max_length=64)
    bio: str = Field(max_length=5000)
    is_active: bool
    avatar_url: str | None = Field(
        None,
        description="The avatar's thumbnail; `medium`, `large` or `original` in place of `thumb` "
        "for other sizes. Null without an avatar.",
    )


class PeoplePage(Output):
    items: list[PersonSummary]
    next_cursor: str | None


class PeopleQuery(Input):
    q: SearchText | None = Field(None, description="Matches names (word prefix) and skills.")
    department_id: Id | None = None
    include_subdepartments: bool = True
    skill: SkillName | None = None
    location: ShortText | None = None
    include_inactive: bool = Field(False, description="Administrators only.")
    limit: int = Field(25, ge=1, le=100)
    cursor: Cursor | None = None


class ProfileUpdate(Input):
    """Fields a person edits on their own profile (administrators may edit anyone's)."""

    display_name: Name | None = None
    title: ShortText | None = None
    location: ShortText | None = None
    time_zone: TimeZone | None = None
    skills: list[SkillName] | None = Field(None, max_length=50)
    bio: LongText | None = None
