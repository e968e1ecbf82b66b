"""Bulk import of departments and people from the HR system's CSV export.

Columns (a header row is required; unknown columns are refused so a typo cannot be ignored;
column names are read case-insensitively):

=======================  ========  =====================================================
column                   required  meaning
=======================  ========  =====================================================
email                    yes       the person's e-mail address (matching key if no number)
display_name             yes       the name shown everywhere
employee_number          no        the HR key; the import matches on it first
department_code          no        the person's department (empty: none, e.g. externals)
department_name          no        creates the department, or renames it
parent_department_code   no        places the department under another one
title, location, bio     no        profile text (an empty cell clears it)
time_zone                no        IANA name; empty keeps the current one (new: UTC)
skills                   no        ``;``-separated (an empty cell clears them)
roles                    no        ``;``-separated, of: employee, moderator, innovation_manager,
                                   hr, communications, governance_lead (not admin); an empty
                                   cell means the default: employee, or none for externals.
                                   The admin role of a person is never touched.
is_external, is_bot      no        true/false (also yes/no, 1/0); empty is false
active                   no        true/false; empty is true
=======================  ========  =====================================================

A column that is absent leaves that field alone. A department's name and parent may be given on
any row that names its code, in any order (parents may come after their children); rows that
describe the same department differently are invalid.

A person is matched by employee number first, else by e-mail address; a known employee number
with a new address changes the address. Employee numbers are never changed by an import (a
person without one gets the one of the row matched by e-mail).

The import is idempotent: a second run of the same file writes nothing (not even its usage
event) and reports every row unchanged. It validates the whole file before writing anything;
invalid rows are reported with their line numbers (of the first physical line of the record)
and, unless ``skip_invalid`` is set, nothing is written. With ``skip_invalid`` an invalid row
is skipped as a whole, and so is every row of a department that is itself invalid (unknown, in
a cycle, under an invalid parent). ``deactivate_missing`` deactivates the people with an
employee number that no row of the file mentions (invalid rows count as mentions, so a typo
never deactivates anyone); people without an employee number, bots and the importing person
are left alone.

An import that changes anything is one action with one usage event (``admin:import:apply``,
carrying the counts). It writes in bulk, a few statements per table, so that tens of thousands
of rows take seconds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from sqlalchemy import Table, and_, bindparam, delete, insert, select, update

from esn.accounts.handles import unique_handles
from esn.accounts.models import ApiToken, Role, Skill, User, UserRole, UserSkill
from esn.accounts.schemas import ImportChange, ImportReport, ImportRowError
from esn.api.types import Code, Email, EmployeeNumber, LongText, Name, ShortText, TimeZone
from esn.clock import now
from esn.database import insert_ignoring_conflicts
from esn.directory.models import Department, DepartmentAssignment
from esn.directory.queries import normalise_skill
from esn.extensions import db
from esn.usage import kinds
from esn.usage.recorder import record_usage

REQUIRED = ("email", "display_name")
OPTIONAL = (
    "employee_number",
    "department_code",
    "department_name",
    "parent_department_code",
    "title",
    "location",
    "bio",
    "time_zone",
    "skills",
    "roles",
    "is_external",
    "is_bot",
    "active",
)
COLUMNS = REQUIRED + OPTIONAL
MAX_REPORTED_CHANGES = 1000
# Ids per IN (...) list: well below SQLite's and PostgreSQL's limits on bound parameters.
CHUNK = 1000
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}
# The bulk statements use the tables directly: no per-row ORM bookkeeping.
_USERS = cast(Table, User.__table__)
_USER_ROLES = cast(Table, UserRole.__table__)
_USER_SKILLS = cast(Table, UserSkill.__table__)
_TOKENS = cast(Table, ApiToken.__table__)
_ASSIGNMENTS = cast(Table, DepartmentAssignment.__table__)
_DEPARTMENTS = cast(Table, Department.__table__)
_SKILLS = cast(Table, Skill.__table__)
_CHANGE_COUNTS = (
    "departments_created",
    "departments_updated",
    "users_created",
    "users_updated",
    "users_deactivated",
)
# Fields of a person that an import may change, as columns of ``users``.
_PLAIN_FIELDS = (
    "email",
    "display_name",
    "employee_number",
    "title",
    "location",
    "bio",
    "time_zone",
    "is_external",
    "is_bot",
)


def _flag(default: bool) -> Any:
    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        lowered = value.strip().lower()
        if lowered == "":
            return default
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("must be true or false (also yes/no, 1/0)")

    return BeforeValidator(parse)


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    return value


def _known_email(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    # An address exactly as stored was validated and normalised when it was stored; validating
    # it again is most of the cost of re-importing an unchanged file.
    known = info.context.get("known_emails") if info.context else None
    if known and isinstance(value, str) and value.strip() in known:
        return value.strip()
    return handler(value)


class ImportRow(BaseModel):
    """One data row of the file, validated. ``None`` means the column is absent (or, for the
    keys that have no 'clear' meaning, empty): leave the field alone."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: Annotated[Email, WrapValidator(_known_email)]
    display_name: Name
    employee_number: EmployeeNumber | None = None
    department_code: Code | None = None
    department_name: Name | None = None
    parent_department_code: Code | None = None
    title: ShortText | None = None
    location: ShortText | None = None
    bio: LongText | None = None
    time_zone: TimeZone | None = None
    skills: Annotated[list[str] | None, BeforeValidator(_split)] = None
    roles: Annotated[list[Role] | None, BeforeValidator(_split)] = None
    is_external: Annotated[bool | None, _flag(False)] = None
    is_bot: Annotated[bool | None, _flag(False)] = None
    active: Annotated[bool | None, _flag(True)] = None

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        clean = [" ".join(s.split()) for s in value]
        if any(len(s) > 80 for s in clean):
            raise ValueError("a skill is at most 80 characters")
        if any("\x00" in s for s in clean):
            raise ValueError("must not contain NUL characters")
        if len(clean) > 50:
            raise ValueError("at most 50 skills")
        return [s for s in clean if s]

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[Role] | None) -> list[Role] | None:
        if value is not None and Role.admin in value:
            raise ValueError("the admin role is granted in the app, never by import")
        return value


# Columns whose empty cell means "leave alone" (or "none", for a department's description).
_EMPTY_IS_ABSENT = frozenset(
    {"employee_number", "department_name", "parent_department_code", "time_zone"}
)


def _row_data(raw: dict[str, str]) -> dict[str, Any]:
    """CSV cells as ImportRow input. A present but empty ``department_code`` means 'no
    department', so it is passed as an explicit None."""
    data: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _EMPTY_IS_ABSENT and not value.strip():
            continue
        if key == "department_code" and not value.strip():
            data[key] = None
        else:
            data[key] = value
    return data


def _default_roles(is_external: bool) -> set[str]:
    return set() if is_external else {Role.employee.value}


def _wanted_roles(row: ImportRow, is_external: bool) -> set[str]:
    """The importable roles the row asks for; the default when it names none."""
    return {r.value for r in row.roles} if row.roles else _default_roles(is_external)


@dataclass
class _Person:
    """The importable fields of a person, as stored."""

    id: int
    email: str
    employee_number: str | None
    display_name: str
    department_id: int | None
    title: str
    location: str
    bio: str
    time_zone: str
    is_external: bool
    is_bot: bool
    is_active: bool
    roles: set[str] = field(default_factory=set)
    skills: set[str] = field(default_factory=set)


def _load_people() -> dict[int, _Person]:
    # Plain table columns: Core rows, without the ORM's per-row bookkeeping.
    users, roles, skills, user_skills = _USERS.c, _USER_ROLES.c, _SKILLS.c, _USER_SKILLS.c
    people: dict[int, _Person] = {}
    for row in db.session.execute(
        select(
            users.id,
            users.email,
            users.employee_number,
            users.display_name,
            users.department_id,
            users.title,
            users.location,
            users.bio,
            users.time_zone,
            users.is_external,
            users.is_bot,
            users.is_active,
        )
    ):
        people[row.id] = _Person(*row)
    for user_id, role in db.session.execute(select(roles.user_id, roles.role)):
        people[user_id].roles.add(Role(role).value)
    for user_id, name in db.session.execute(
        select(user_skills.user_id, skills.name).join(_SKILLS, skills.id == user_skills.skill_id)
    ):
        people[user_id].skills.add(name)
    return people


class _Report:
    def __init__(self, dry_run: bool) -> None:
        self.rows = 0
        self.dry_run = dry_run
        self.errors: list[ImportRowError] = []
        self.department_changes: list[ImportChange] = []
        self.people_changes: list[ImportChange] = []
        self.counts = dict.fromkeys(
            (
                "departments_created",
                "departments_updated",
                "users_created",
                "users_updated",
                "users_unchanged",
                "users_deactivated",
                "rows_skipped",
            ),
            0,
        )
        self.bad_lines: set[int] = set()

    def error(self, line: int, field_name: str | None, message: str) -> None:
        self.errors.append(ImportRowError(line=line, field=field_name, message=message[:500]))
        self.bad_lines.add(line)

    def build(self, applied: bool) -> ImportReport:
        changes = self.department_changes + sorted(
            self.people_changes, key=lambda c: (c.line is None, c.line or 0)
        )
        return ImportReport(
            dry_run=self.dry_run,
            applied=applied,
            rows=self.rows,
            errors=sorted(self.errors, key=lambda e: e.line),
            changes=changes[:MAX_REPORTED_CHANGES],
            **self.counts,
        )


def import_people(
    text: str,
    *,
    actor: User | None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    deactivate_missing: bool = False,
) -> ImportReport:
    """Validate ``text`` and, unless ``dry_run`` or invalid rows forbid it, write it in the
    current transaction; the caller commits when ``report.applied`` and rolls back otherwise.

    Nothing is written when ``report.applied`` is false. The report's counts say what was (or,
    in a dry run or when refused, would be) done with the valid rows."""
    report = _Report(dry_run)
    people = _load_people()
    parsed = _parse(text, report, {p.email for p in people.values()})
    if parsed is None:
        return report.build(applied=False)
    rows, mentioned_numbers, mentioned_emails = parsed

    matched = _match_people(rows, report, people)
    departments = _plan_departments(rows, report)
    plan = _plan_people(matched, report, departments)

    claimed = {person.id for _, _, person in matched if person is not None}
    to_deactivate: list[_Person] = []
    if deactivate_missing:
        for person in people.values():
            if (
                person.employee_number
                and person.is_active
                and not person.is_bot
                and person.id not in claimed
                and person.employee_number not in mentioned_numbers
                and person.email not in mentioned_emails
                and (actor is None or person.id != actor.id)
            ):
                to_deactivate.append(person)
                report.people_changes.append(
                    ImportChange(
                        line=None, action="deactivated", key=person.email, fields=["active"]
                    )
                )
        report.counts["users_deactivated"] = len(to_deactivate)

    if skip_invalid:
        report.counts["rows_skipped"] = len(report.bad_lines)
    if (report.errors and not skip_invalid) or dry_run:
        return report.build(applied=False)
    if any(report.counts[k] for k in _CHANGE_COUNTS):
        _apply(plan, departments, to_deactivate, report, actor)
    return report.build(applied=True)


# --- reading ----------------------------------------------------------------------------------


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of every record, blank lines left out. A quoted cell may span lines,
    so a record's line is where it starts, one after where the previous one ended."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    end = 0
    for cells in reader:
        start, end = end + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield start, cells


def _parse(
    text: str, report: _Report, known_emails: set[str]
) -> tuple[list[tuple[int, ImportRow]], set[str], set[str]] | None:
    """The valid rows, and the employee numbers and e-mail addresses that any row mentions
    (valid or not); None when the file as a whole cannot be read. ``known_emails`` are the
    stored addresses (valid and normalised already)."""
    context = {"known_emails": known_emails}
    records = _records(text.removeprefix("\ufeff"))
    rows: list[tuple[int, ImportRow]] = []
    mentioned_numbers: set[str] = set()
    mentioned_emails: set[str] = set()
    seen_numbers: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    line = 1
    try:
        first = next(records, None)
        header = [h.strip().lower() for h in first[1]] if first else []
        line = first[0] if first else 1
        if _check_header(header, line, report):
            return None
        width = len(header)
        for line, cells in records:
            report.rows += 1
            raw = dict(zip(header, cells, strict=False))
            number = (raw.get("employee_number") or "").strip()
            if number:
                mentioned_numbers.add(number)
            mentioned_emails.add((raw.get("email") or "").strip().lower())
            if len(cells) != width:
                report.error(line, None, f"{len(cells)} cells where the header has {width} columns")
                continue
            try:
                row = ImportRow.model_validate(_row_data(raw), context=context)
            except ValidationError as exc:
                for err in exc.errors(include_url=False, include_input=False):
                    column = str(err["loc"][0]) if err["loc"] else None
                    report.error(line, column, err["msg"])
                continue
            if row.employee_number and row.employee_number in seen_numbers:
                first_line = seen_numbers[row.employee_number]
                report.error(
                    line, "employee_number", f"{row.employee_number} is also on line {first_line}"
                )
                continue
            if row.email in seen_emails:
                report.error(line, "email", f"{row.email} is also on line {seen_emails[row.email]}")
                continue
            if row.employee_number:
                seen_numbers[row.employee_number] = line
            seen_emails[row.email] = line
            rows.append((line, row))
    except csv.Error as exc:
        report.error(line, None, f"the CSV cannot be read after this line: {exc}")
        return None
    return rows, mentioned_numbers, mentioned_emails


def _check_header(header: list[str], line: int, report: _Report) -> bool:
    """Report what is wrong with the header; True when something is."""
    detail = []
    if not header:
        detail.append("the file is empty (a header row is required)")
    missing = [h for h in REQUIRED if header and h not in header]
    unknown = [h for h in header if h not in COLUMNS]
    twice = sorted({h for h in header if header.count(h) > 1})
    if missing:
        detail.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        detail.append(f"unknown columns: {', '.join(repr(h) for h in unknown)}")
    if twice:
        detail.append(f"columns appearing twice: {', '.join(twice)}")
    if detail:
        report.error(line, None, "; ".join(detail))
    return bool(detail)


# --- planning ---------------------------------------------------------------------------------


def _match_people(
    rows: list[tuple[int, ImportRow]], report: _Report, people: dict[int, _Person]
) -> list[tuple[int, ImportRow, _Person | None]]:
    """Each valid row with the person it is about (None: a new person)."""
    by_number = {p.employee_number: p for p in people.values() if p.employee_number}
    by_email = {p.email: p for p in people.values()}
    claimed: dict[int, int] = {}
    matched: list[tuple[int, ImportRow, _Person | None]] = []
    for line, row in rows:
        person = by_number.get(row.employee_number) if row.employee_number else None
        owner = by_email.get(row.email)
        if person is None and owner is not None:
            if row.employee_number and owner.employee_number:
                report.error(
                    line, "email", f"{row.email} belongs to a person with another employee number"
                )
                continue
            person = owner
        elif person is not None and owner is not None and owner.id != person.id:
            report.error(line, "email", f"{row.email} belongs to another person")
            continue
        if person is not None:
            if person.id in claimed:
                report.error(line, None, f"the same person as line {claimed[person.id]}")
                continue
            claimed[person.id] = line
        matched.append((line, row, person))
    return matched


@dataclass
class _Wanted:
    """A department as the file describes it: the first line naming it, and the name and
    parent code given on any row."""

    line: int
    name: str | None = None
    parent: str | None = None


@dataclass
class _DeptPlan:
    existing: dict[str, Department]
    wanted: dict[str, _Wanted]
    # code -> what is wrong with it (a department that is absent here is valid)
    invalid: dict[str, tuple[str, str]] = field(default_factory=dict)
    create_order: list[str] = field(default_factory=list)  # parents before children
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> name/parent
    _code_by_id: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._code_by_id = {d.id: c for c, d in self.existing.items()}

    def parent_of(self, code: str) -> str | None:
        wanted = self.wanted.get(code)
        if wanted is not None and wanted.parent:
            return wanted.parent
        dept = self.existing.get(code)
        if dept is not None and dept.parent_id is not None:
            return self._code_by_id[dept.parent_id]
        return None


def _plan_departments(rows: list[tuple[int, ImportRow]], report: _Report) -> _DeptPlan:
    """Gather the departments the valid rows describe; find the unknown ones, unknown parents
    and cycles; order the new ones parents first."""
    existing = {d.code: d for d in db.session.scalars(select(Department))}
    wanted: dict[str, _Wanted] = {}
    # Departments named on rows that are invalid for another reason, to explain why they
    # are unknown.
    named_on_bad_line: dict[str, int] = {}
    for line, row in rows:
        if line in report.bad_lines:
            if row.department_code and row.department_name:
                named_on_bad_line.setdefault(row.department_code, line)
            continue
        code, name, parent = row.department_code, row.department_name, row.parent_department_code
        if code is None:
            if name or parent:
                report.error(
                    line, "department_code", "needed when a department name or parent is given"
                )
            continue
        if parent == code:
            report.error(
                line, "parent_department_code", f"department {code} cannot be its own parent"
            )
            continue
        entry = wanted.setdefault(code, _Wanted(line))
        if name and entry.name and name != entry.name:
            report.error(
                line,
                "department_name",
                f"department {code} is named {entry.name!r} on another line",
            )
            continue
        if parent and entry.parent and parent != entry.parent:
            report.error(
                line,
                "parent_department_code",
                f"department {code} is placed under {entry.parent} on another line",
            )
            continue
        entry.name = entry.name or name
        entry.parent = entry.parent or parent
    plan = _DeptPlan(existing, wanted)

    def own_problem(code: str) -> tuple[str, str] | None:
        if code in existing:
            return None
        if code not in wanted:
            return "parent_department_code", f"unknown department {code}"
        if not wanted[code].name:
            if code in named_on_bad_line:
                return "department_code", (
                    f"unknown department {code}; it is named only on "
                    f"invalid line {named_on_bad_line[code]}"
                )
            return "department_code", (
                f"unknown department {code}; give department_name to create it"
            )
        return None

    # Walk up from every department; a department is invalid if it is itself, if it is on a
    # cycle, or if its parent is.
    invalid = plan.invalid
    valid: set[str] = set()
    for start in wanted:
        path: list[str] = []
        cursor: str | None = start
        while cursor is not None and cursor not in valid and cursor not in invalid:
            if cursor in path:
                cycle = [*path[path.index(cursor) :], cursor]
                for code in cycle:
                    invalid[code] = (
                        "parent_department_code",
                        f"departments {' > '.join(cycle)} form a cycle",
                    )
                break
            path.append(cursor)
            cursor = plan.parent_of(cursor)
        for code in reversed(path):
            if code in invalid:
                continue
            problem = own_problem(code)
            parent = plan.parent_of(code)
            if problem is None and parent is not None and parent in invalid:
                if parent not in existing and parent not in wanted:
                    problem = invalid[parent]
                else:
                    problem = ("parent_department_code", f"parent department {parent} is invalid")
            if problem is None:
                valid.add(code)
            else:
                invalid[code] = problem

    placed: set[str] = set()
    for code in wanted:
        if code in invalid or code in existing:
            continue
        # Parents first: climb to the first parent already placed (or an existing one). Valid
        # departments have valid parents and no cycle, so the climb ends.
        chain: list[str] = []
        cursor = code
        while cursor is not None and cursor not in existing and cursor not in placed:
            chain.append(cursor)
            cursor = plan.parent_of(cursor)
        plan.create_order.extend(reversed(chain))
        placed.update(chain)
    for code, entry in wanted.items():
        dept = existing.get(code)
        if dept is None or code in invalid:
            continue
        changes: dict[str, Any] = {}
        if entry.name and entry.name != dept.name:
            changes["name"] = entry.name
        if entry.parent:
            parent_dept = existing.get(entry.parent)
            if parent_dept is None or parent_dept.id != dept.parent_id:
                changes["parent"] = entry.parent
        if changes:
            plan.updates[code] = changes

    for code in plan.create_order:
        report.department_changes.append(
            ImportChange(line=wanted[code].line, action="department_created", key=code, fields=[])
        )
    for code, changes in plan.updates.items():
        report.department_changes.append(
            ImportChange(
                line=wanted[code].line,
                action="department_updated",
                key=code,
                fields=sorted(changes),
            )
        )
    report.counts["departments_created"] = len(plan.create_order)
    report.counts["departments_updated"] = len(plan.updates)
    return plan


@dataclass
class _PeoplePlan:
    creates: list[tuple[int, ImportRow]] = field(default_factory=list)
    updates: list[tuple[int, _Person, ImportRow, dict[str, Any]]] = field(default_factory=list)


def _plan_people(
    matched: list[tuple[int, ImportRow, _Person | None]],
    report: _Report,
    departments: _DeptPlan,
) -> _PeoplePlan:
    plan = _PeoplePlan()
    for line, row, person in matched:
        if line in report.bad_lines:
            continue
        if row.department_code is not None and row.department_code in departments.invalid:
            column, message = departments.invalid[row.department_code]
            if column == "parent_department_code" and not row.parent_department_code:
                column = "department_code"
            report.error(line, column, message)
            continue
        if person is None:
            plan.creates.append((line, row))
            report.people_changes.append(
                ImportChange(line=line, action="created", key=row.email, fields=[])
            )
            continue
        diff = _diff(person, row, departments)
        if diff:
            plan.updates.append((line, person, row, diff))
            report.people_changes.append(
                ImportChange(
                    line=line,
                    action="updated",
                    key=person.email,
                    fields=sorted("active" if k == "is_active" else k for k in diff),
                )
            )
        else:
            report.counts["users_unchanged"] += 1
    report.counts["users_created"] = len(plan.creates)
    report.counts["users_updated"] = len(plan.updates)
    return plan


def _diff(person: _Person, row: ImportRow, departments: _DeptPlan) -> dict[str, Any]:
    diff: dict[str, Any] = {}
    for name in _PLAIN_FIELDS:
        value = getattr(row, name)
        if value is not None and getattr(person, name) != value:
            diff[name] = value
    if row.active is not None and row.active != person.is_active:
        diff["is_active"] = row.active
    if row.department_code is not None:
        dept = departments.existing.get(row.department_code)
        if dept is None or dept.id != person.department_id:
            diff["department_code"] = row.department_code
    elif "department_code" in row.model_fields_set and person.department_id is not None:
        diff["department_code"] = None
    if row.skills is not None and {normalise_skill(s) for s in row.skills} != person.skills:
        diff["skills"] = row.skills
    if row.roles is not None:
        is_external = person.is_external if row.is_external is None else row.is_external
        wanted = _wanted_roles(row, is_external)
        if wanted != person.roles - {Role.admin.value}:
            diff["roles"] = wanted
    return diff


# --- writing ----------------------------------------------------------------------------------


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _apply(
    plan: _PeoplePlan,
    departments: _DeptPlan,
    to_deactivate: list[_Person],
    report: _Report,
    actor: User | None,
) -> None:
    moment = now()
    session = db.session
    ids = _apply_departments(departments, moment)
    skill_id = _skill_ids(
        [s for _, row in plan.creates for s in row.skills or []]
        + [s for *_, row, diff in plan.updates if "skills" in diff for s in row.skills or []]
    )
    users = _USERS
    assignments: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    skills: list[dict[str, Any]] = []

    if plan.creates:
        new_rows = [
            {
                "email": row.email,
                "display_name": row.display_name,
                "employee_number": row.employee_number,
                "department_id": ids[row.department_code] if row.department_code else None,
                "title": row.title or "",
                "location": row.location or "",
                "bio": row.bio or "",
                "time_zone": row.time_zone or "UTC",
                "is_external": bool(row.is_external),
                "is_bot": bool(row.is_bot),
                "is_active": row.active is not False,
                "deactivated_at": None if row.active is not False else moment,
                "auth_epoch": 0,
                "created_at": moment,
                "updated_at": moment,
            }
            for _, row in plan.creates
        ]
        taken = set(session.scalars(select(users.c.handle)))
        handles = unique_handles([str(row["email"]) for row in new_rows], taken)
        for row_data, handle in zip(new_rows, handles, strict=True):
            row_data["handle"] = handle
        # A plain executemany, then the new ids by (unique) e-mail address: on PostgreSQL an
        # INSERT .. RETURNING of many rows takes about four times as long.
        session.execute(insert(users), new_rows)
        id_of: dict[str, int] = {}
        for chunk in _chunks([row.email for _, row in plan.creates]):
            id_of.update(
                session.execute(select(users.c.email, users.c.id).where(users.c.email.in_(chunk)))
                .tuples()
                .all()
            )
        for (_, row), data in zip(plan.creates, new_rows, strict=True):
            user_id = id_of[row.email]
            if data["department_id"] is not None:
                assignments.append(
                    {
                        "user_id": user_id,
                        "department_id": data["department_id"],
                        "started_at": moment,
                        "ended_at": None,
                    }
                )
            roles.extend(
                {"user_id": user_id, "role": Role(r)}
                for r in sorted(_wanted_roles(row, bool(row.is_external)))
            )
            skills.extend(
                {"user_id": user_id, "skill_id": sid} for sid in _row_skill_ids(row, skill_id)
            )

    # Updates of the plain columns, one executemany per set of changed columns.
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    leaving: list[int] = []  # people whose open department assignment ends now
    revoke: list[int] = []
    clear_skills: list[int] = []
    clear_roles: list[int] = []
    for _line, person, row, diff in plan.updates:
        values = {k: v for k, v in diff.items() if k not in ("department_code", "skills", "roles")}
        if "department_code" in diff:
            new_dept = ids[diff["department_code"]] if diff["department_code"] else None
            values["department_id"] = new_dept
            if person.department_id is not None:
                leaving.append(person.id)
            if new_dept is not None:
                assignments.append(
                    {
                        "user_id": person.id,
                        "department_id": new_dept,
                        "started_at": moment,
                        "ended_at": None,
                    }
                )
        if "is_active" in values:
            values["deactivated_at"] = None if values["is_active"] else moment
            if not values["is_active"]:
                revoke.append(person.id)
        if values:
            values["updated_at"] = moment
            by_columns.setdefault(tuple(sorted(values)), []).append(
                {"_id": person.id} | {f"_{k}": v for k, v in values.items()}
            )
        if "skills" in diff:
            clear_skills.append(person.id)
            skills.extend(
                {"user_id": person.id, "skill_id": sid} for sid in _row_skill_ids(row, skill_id)
            )
        if "roles" in diff:
            clear_roles.append(person.id)
            roles.extend({"user_id": person.id, "role": Role(r)} for r in sorted(diff["roles"]))
    for columns, params in by_columns.items():
        # A bound parameter may not share its name with a column being set: prefix them.
        session.execute(
            update(users)
            .where(users.c.id == bindparam("_id"))
            .values({c: bindparam(f"_{c}", type_=users.c[c].type) for c in columns}),
            params,
        )
    for person in to_deactivate:
        revoke.append(person.id)
    if to_deactivate:
        session.execute(
            update(users)
            .where(users.c.id == bindparam("_id"))
            .values(is_active=False, deactivated_at=moment, updated_at=moment),
            [{"_id": p.id} for p in to_deactivate],
        )

    assignment_table = _ASSIGNMENTS
    for chunk in _chunks(leaving):
        session.execute(
            update(assignment_table)
            .where(assignment_table.c.user_id.in_(chunk), assignment_table.c.ended_at.is_(None))
            .values(ended_at=moment)
        )
    for chunk in _chunks(clear_skills):
        session.execute(delete(_USER_SKILLS).where(_USER_SKILLS.c.user_id.in_(chunk)))
    role_table = _USER_ROLES
    for chunk in _chunks(clear_roles):
        session.execute(
            delete(role_table).where(
                role_table.c.user_id.in_(chunk), role_table.c.role != Role.admin
            )
        )
    if assignments:
        session.execute(insert(assignment_table), assignments)
    if roles:
        session.execute(insert(role_table), roles)
    if skills:
        session.execute(insert(_USER_SKILLS), skills)
    _revoke_sessions(revoke, moment)

    counts = report.counts
    record_usage(
        kinds.IMPORT_APPLY,
        actor,
        object_type="import",
        payload={k: counts[k] for k in kinds.ImportSummary.model_fields},
    )
    # The statements above went around the ORM; objects loaded earlier must be read again.
    session.flush()
    session.expire_all()


def _apply_departments(departments: _DeptPlan, moment: datetime) -> dict[str, int]:
    """Create and update the departments; the id of every valid department code."""
    session = db.session
    ids = {code: d.id for code, d in departments.existing.items()}
    new = departments.create_order
    if new:
        # One INSERT for all (under their parent when it exists already), then one UPDATE
        # for those whose parent is new too.
        parents = {code: departments.parent_of(code) for code in new}
        created = session.execute(
            insert(_DEPARTMENTS).returning(_DEPARTMENTS.c.id, sort_by_parameter_order=True),
            [
                {
                    "code": code,
                    "name": departments.wanted[code].name,
                    "parent_id": ids.get(parents[code] or ""),
                    "created_at": moment,
                }
                for code in new
            ],
        ).scalars()
        ids.update(zip(new, created, strict=True))
        late = [
            {"_id": ids[code], "_parent": ids[parent]}
            for code, parent in parents.items()
            if parent is not None and parent not in departments.existing
        ]
        if late:
            session.execute(
                update(_DEPARTMENTS)
                .where(_DEPARTMENTS.c.id == bindparam("_id"))
                .values(parent_id=bindparam("_parent")),
                late,
            )
    for code, changes in departments.updates.items():
        dept = departments.existing[code]
        if "name" in changes:
            dept.name = changes["name"]
        if "parent" in changes:
            dept.parent_id = ids[changes["parent"]]
    session.flush()
    return ids


def _skill_ids(labels: list[str]) -> dict[str, int]:
    """Normalised name -> id of the skills ``labels`` name, creating the missing ones (race-safe:
    a concurrent creation of the same skill is not an error)."""
    wanted: dict[str, str] = {}
    for label in labels:
        wanted.setdefault(normalise_skill(label), label)
    if not wanted:
        return {}
    dialect = db.session.get_bind().dialect.name
    known: dict[str, int] = {}
    for chunk in _chunks(list(wanted)):
        known.update(
            db.session.execute(select(Skill.name, Skill.id).where(Skill.name.in_(chunk)))
            .tuples()
            .all()
        )
    missing = [{"name": n, "label": label} for n, label in wanted.items() if n not in known]
    if missing:
        db.session.execute(insert_ignoring_conflicts(Skill.__table__, dialect), missing)
        for chunk in _chunks([m["name"] for m in missing]):
            known.update(
                db.session.execute(select(Skill.name, Skill.id).where(Skill.name.in_(chunk)))
                .tuples()
                .all()
            )
    return known


def _row_skill_ids(row: ImportRow, skill_id: dict[str, int]) -> list[int]:
    # Labels that differ only in case or spacing are one skill.
    return sorted({skill_id[normalise_skill(s)] for s in row.skills or []})


def _revoke_sessions(user_ids: list[int], moment: datetime) -> None:
    """Sign these people out everywhere and revoke their API tokens."""
    users, tokens = _USERS, _TOKENS
    for chunk in _chunks(user_ids):
        db.session.execute(
            update(users).where(users.c.id.in_(chunk)).values(auth_epoch=users.c.auth_epoch + 1)
        )
        db.session.execute(
            update(tokens)
            .where(and_(tokens.c.user_id.in_(chunk), tokens.c.revoked_at.is_(None)))
            .values(revoked_at=moment)
        )
