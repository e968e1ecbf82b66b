"""Shapes of sign-in, the signed-in person, tokens and user administration."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from esn.accounts.models import Role
from esn.api.types import (
    Code,
    Email,
    EmployeeNumber,
    Id,
    Input,
    LongText,
    Name,
    Output,
    Password,
    ShortText,
    SkillName,
    TimeZone,
)
from esn.directory.schemas import Profile
from esn.governance.schemas import PendingAcknowledgement


class SignIn(Input):
    email: Email
    password: Password


class Me(Profile):
    roles: list[Role]


class SignedInPerson(Me):
    """The signed-in person, with what they are asked to do on signing in."""

    pending_acknowledgements: list[PendingAcknowledgement] = Field(
        default_factory=list,
        description="Policy or netiquette versions to acknowledge (new since the last time).",
    )


class SessionState(Output):
    user: SignedInPerson | None
    csrf_token: str = Field(max_length=200)


class PasswordChange(Input):
    current_password: Password
    new_password: Password


class TokenCreate(Input):
    name: Annotated[Name, Field(max_length=100)]
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenOut(Output):
    id: int
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16)
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(max_length=100, description="The secret. It is shown only this once.")


class TokenList(Output):
    items: list[TokenOut]


class UserCreate(Input):
    email: Email
    display_name: Name
    employee_number: EmployeeNumber | None = None
    department_id: Id | None = None
    roles: list[Role] = Field(default_factory=list, max_length=10)
    password: Password | None = None
    is_external: bool = False
    is_bot: bool = False
    title: ShortText = ""
    location: ShortText = ""
    time_zone: TimeZone = "UTC"
    skills: list[SkillName] = Field(default_factory=list, max_length=50)
    bio: LongText = ""


class UserUpdate(Input):
    email: Email | None = None
    display_name: Name | None = None
    employee_number: EmployeeNumber | None = None
    department_id: Id | None = None
    roles: list[Role] | None = Field(None, max_length=10)
    password: Password | None = None
    is_external: bool | None = None
    is_bot: bool | None = None
    title: ShortText | None = None
    location: ShortText | None = None
    time_zone: TimeZone | None = None
    skills: list[SkillName] | None = Field(None, max_length=50)
    bio: LongText | None = None


class AdminUser(Me):
    employee_number: str | None = Field(max_length=64)
    created_at: datetime
    deactivated_at: datetime | None


class DepartmentCreate(Input):
    code: Code
    name: Name
    parent_id: Id | None = None


class DepartmentUpdate(Input):
    code: Code | None = None
    name: Name | None = None
    parent_id: Id | None = None


class ImportQuery(Input):
    dry_run: bool = False
    skip_invalid: bool = False
    deactivate_missing: bool = Field(
        False, description="Deactivate employees with an employee number absent from the file."
    )


class ImportRowError(Output):
    line: int
    field: str | None = Field(max_length=64)
    message: str = Field(max_length=500)


class ImportChange(Output):
    line: int | None
    action: str = Field(max_length=32)
    key: str = Field(max_length=254)
    fields: list[str]


class ImportReport(Output):
    dry_run: bool
    applied: bool
    rows: int
    departments_created: int
    departments_updated: int
    users_created: int
    users_updated: int
    users_unchanged: int
    users_deactivated: int
    rows_skipped: int
    errors: list[ImportRowError]
    changes: list[ImportChange]


class PersonRef(Output):
    """A person as shown next to what they wrote."""

    id: int
    display_name: str = Field(max_length=200)
    handle: str = Field(max_length=64)
