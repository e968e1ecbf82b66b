"""Bulk import of departments and people from the HR system's CSV export.

Columns (a header row is required; unknown columns are refused so a typo cannot be ignored):

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
                                   hr, communications, governance_lead (not admin)
is_external, is_bot      no        true/false (also yes/no, 1/0); empty is false
active                   no        true/false; empty is true
=======================  ========  =====================================================

A column that is absent leaves that field alone. The import is idempotent: a second run of the
same file changes nothing and says so. It validates the whole file before writing anything;
invalid rows are reported with their line numbers and, unless ``skip_invalid`` is set, nothing
is written. The whole import is one action with one usage event (``admin:import:apply``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from sqlalchemy import delete, insert, select, update

from esn.accounts.models import ApiToken, Role, Skill, User, UserRole, UserSkill
from esn.accounts.schemas import ImportChange, ImportReport, ImportRowError
from esn.accounts.actions import skill_ids
from esn.api.types import Code, Email, EmployeeNumber, LongText, Name, ShortText, TimeZone
from esn.clock import now
from esn.directory.models import Department, DepartmentAssignment
from esn.directory.queries import normalise_skill
from esn.extensions import db
from esn.usage import kinds
from esn.usage.recorder import record_usage

REQUIRED = ("email", "display_name")
OPTIONAL = (
    "employee_number", "department_code", "department_name", "parent_department_code",
    "title", "location", "bio", "time_zone", "skills", "roles", "is_external", "is_bot", "active",
)
IMPORTABLE_ROLES = {r for r in Role if r is not Role.admin}
MAX_REPORTED_CHANGES = 1000
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n", ""}


def _flag(value: str, default: bool) -> bool:
    lowered = value.strip().lower()
    if lowered == "":
        return default
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("must be true or false")


class ImportRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: Email
    display_name: Name
    employee_number: EmployeeNumber | None = None
    department_code: Code | None = None
    department_name: Name | None = None
    parent_department_code: Code | None = None
    title: ShortText | None = None
    location: ShortText | None = None
    bio: LongText | None = None
    time_zone: TimeZone | None = None
    skills: list[str] | None = None
    roles: list[Role] | None = None
    is_external: bool | None = None
    is_bot: bool | None = None
    active: bool | None = None

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        clean = [" ".join(s.split()) for s in value]
        if any(len(s) > 80 for s in clean):
            raise ValueError("a skill is at most 80 characters")
        if len(clean) > 50:
            raise ValueError("at most 50 skills")
        return [s for s in clean if s]

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[Role] | None) -> list[Role] | None:
        if value is not None and Role.admin in value:
            raise ValueError("the admin role is granted in the app, never by import")
        return value


def _row_data(raw: dict[str, str], present: set[str]) -> dict[str, Any]:
    """Turn CSV cells into ImportRow input: empty optional cells mean 'clear' or 'default'."""
    data: dict[str, Any] = {}
    for key in present:
        value = (raw.get(key) or "").strip()
        if key in ("skills", "roles"):
            data[key] = [p.strip() for p in value.split(";") if p.strip()]
        elif key in ("is_external", "is_bot"):
            data[key] = _flag(value, False)
        elif key == "active":
            data[key] = _flag(value, True)
        elif key == "department_code":
            data[key] = value or None  # present but empty: no department
        elif key in ("employee_number", "department_name",
                     "parent_department_code", "time_zone"):
            if value:
                data[key] = value
        else:
            data[key] = value
    return data


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


def _load_people() -> tuple[dict[str, _Person], dict[str, _Person]]:
    people: dict[int, _Person] = {}
    for row in db.session.execute(
        select(User.id, User.email, User.employee_number, User.display_name, User.department_id,
               User.title, User.location, User.bio, User.time_zone, User.is_external,
               User.is_bot, User.is_active)
    ):
        people[row.id] = _Person(*row)
    for user_id, role in db.session.execute(select(UserRole.user_id, UserRole.role)):
        people[user_id].roles.add(str(role))
    for user_id, name in db.session.execute(
        select(UserSkill.user_id, Skill.name).join(Skill, Skill.id == UserSkill.skill_id)
    ):
        people[user_id].skills.add(name)
    by_number = {p.employee_number: p for p in people.values() if p.employee_number}
    by_email = {p.email: p for p in people.values()}
    return by_number, by_email


class _Report:
    def __init__(self, rows: int, dry_run: bool) -> None:
        self.rows = rows
        self.dry_run = dry_run
        self.errors: list[ImportRowError] = []
        self.changes: list[ImportChange] = []
        self.counts = dict.fromkeys(
            ("departments_created", "departments_updated", "users_created", "users_updated",
             "users_unchanged", "users_deactivated", "rows_skipped"), 0)
        self.bad_lines: set[int] = set()

    def error(self, line: int, field_name: str | None, message: str) -> None:
        self.errors.append(ImportRowError(line=line, field=field_name, message=message[:500]))
        self.bad_lines.add(line)

    def change(self, line: int | None, action: str, key: str, fields: list[str]) -> None:
        if len(self.changes) < MAX_REPORTED_CHANGES:
            self.changes.append(ImportChange(line=line, action=action, key=key, fields=fields))

    def build(self, applied: bool) -> ImportReport:
        return ImportReport(
            dry_run=self.dry_run, applied=applied, rows=self.rows, errors=self.errors,
            changes=self.changes, **self.counts,
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
    current transaction (the caller commits when ``report.applied``)."""
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="__extra__", strict=False)
    header = reader.fieldnames or []
    report = _Report(0, dry_run)
    cleaned = [h.strip() for h in header]
    unknown = [h for h in cleaned if h not in REQUIRED + OPTIONAL]
    missing = [h for h in REQUIRED if h not in cleaned]
    if not header or unknown or missing or len(set(cleaned)) != len(cleaned):
        detail = []
        if not header:
            detail.append("the file is empty")
        if missing:
            detail.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            detail.append(f"unknown columns: {', '.join(unknown)}")
        if len(set(cleaned)) != len(cleaned):
            detail.append("a column appears twice")
        report.error(1, None, "; ".join(detail))
        return report.build(applied=False)
    reader.fieldnames = cleaned
    present = set(cleaned)

    rows: list[tuple[int, ImportRow]] = []
    seen_numbers: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    try:
        for raw in reader:
            line = reader.line_num
            report.rows += 1
            if raw.get("__extra__"):
                report.error(line, None, "more cells than columns")
                continue
            try:
                row = ImportRow.model_validate(_row_data(raw, present))
            except ValidationError as exc:
                for err in exc.errors(include_url=False, include_input=False):
                    report.error(line, ".".join(str(p) for p in err["loc"]) or None, err["msg"])
                continue
            except ValueError as exc:
                report.error(line, None, str(exc))
                continue
            if row.employee_number and row.employee_number in seen_numbers:
                report.error(line, "employee_number",
                             f"also on line {seen_numbers[row.employee_number]}")
                continue
            if row.email in seen_emails:
                report.error(line, "email", f"also on line {seen_emails[row.email]}")
                continue
            if row.employee_number:
                seen_numbers[row.employee_number] = line
            seen_emails[row.email] = line
            rows.append((line, row))
    except csv.Error as exc:
        report.error(reader.line_num, None, f"the CSV cannot be read: {exc}")
        return report.build(applied=False)

    departments = _plan_departments(rows, report)
    by_number, by_email = _load_people()
    plan = _plan_people(rows, report, departments, by_number, by_email)

    if report.errors and not skip_invalid:
        return report.build(applied=False)
    report.counts["rows_skipped"] = len(report.bad_lines)

    file_numbers = {row.employee_number for _, row in rows if row.employee_number}
    to_deactivate = []
    if deactivate_missing:
        for number, person in by_number.items():
            if number not in file_numbers and person.is_active and not person.is_bot:
                to_deactivate.append(person)
                report.change(None, "deactivated", person.email, ["active"])
        report.counts["users_deactivated"] = len(to_deactivate)

    if dry_run:
        return report.build(applied=False)
    _apply(plan, departments, to_deactivate, report, actor)
    return report.build(applied=True)


@dataclass
class _DeptPlan:
    # code -> (name, parent_code, line) as the file says; existing code -> Department row
    wanted: dict[str, tuple[str | None, str | None, int]]
    existing: dict[str, Department]
    create_order: list[str]
    ids: dict[str, int] = field(default_factory=dict)


def _plan_departments(rows: list[tuple[int, ImportRow]], report: _Report) -> _DeptPlan:
    existing = {d.code: d for d in db.session.scalars(select(Department))}
    wanted: dict[str, tuple[str | None, str | None, int]] = {}
    bad_rows: set[int] = set()
    for line, row in rows:
        code = row.department_code
        if code is None:
            if row.department_name or row.parent_department_code:
                report.error(line, "department_code", "needed when a department name or parent is given")
                bad_rows.add(line)
            continue
        name, parent = row.department_name, row.parent_department_code
        if code in wanted:
            prev_name, prev_parent, prev_line = wanted[code]
            if (name and prev_name and name != prev_name) or (
                parent and prev_parent and parent != prev_parent
            ):
                report.error(line, "department_name",
                             f"department {code} is described differently on line {prev_line}")
                bad_rows.add(line)
                continue
            wanted[code] = (prev_name or name, prev_parent or parent, prev_line)
        else:
            wanted[code] = (name, parent, line)
    for code, (name, parent, line) in wanted.items():
        if code not in existing and not name:
            report.error(line, "department_code",
                         f"unknown department {code}; give department_name to create it")
        if parent and parent not in existing and parent not in wanted:
            report.error(line, "parent_department_code", f"unknown department {parent}")
    # Parents first; a cycle in the resulting tree is an error.
    order: list[str] = []
    state: dict[str, int] = {}

    def parent_of(code: str) -> str | None:
        if code in wanted and wanted[code][1]:
            return wanted[code][1]
        dept = existing.get(code)
        if dept is not None and dept.parent_id is not None:
            return next((c for c, d in existing.items() if d.id == dept.parent_id), None)
        return None

    for code in wanted:
        chain: list[str] = []
        cursor: str | None = code
        while cursor is not None and state.get(cursor) != 2:
            if cursor in chain:
                report.error(wanted[code][2], "parent_department_code",
                             f"departments {' > '.join([*chain, cursor])} form a cycle")
                break
            chain.append(cursor)
            cursor = parent_of(cursor)
        else:
            for c in reversed(chain):
                state[c] = 2
                if c in wanted and c not in existing:
                    order.append(c)
    return _DeptPlan(wanted, existing, order)


@dataclass
class _PeoplePlan:
    creates: list[tuple[int, ImportRow]] = field(default_factory=list)
    updates: list[tuple[int, _Person, ImportRow, dict[str, Any]]] = field(default_factory=list)


def _plan_people(
    rows: list[tuple[int, ImportRow]],
    report: _Report,
    departments: _DeptPlan,
    by_number: dict[str, _Person],
    by_email: dict[str, _Person],
) -> _PeoplePlan:
    plan = _PeoplePlan()
    for line, row in rows:
        if line in report.bad_lines:
            continue
        person = by_number.get(row.employee_number) if row.employee_number else None
        owner = by_email.get(row.email)
        if person is None and owner is not None:
            if row.employee_number and owner.employee_number and owner.employee_number != row.employee_number:
                report.error(line, "email", "belongs to a person with another employee number")
                continue
            person = owner
        elif person is not None and owner is not None and owner.id != person.id:
            report.error(line, "email", "belongs to another person")
            continue
        if person is None:
            plan.creates.append((line, row))
            continue
        diff = _diff(person, row, departments)
        if diff:
            plan.updates.append((line, person, row, diff))
        else:
            report.counts["users_unchanged"] += 1
    for line, row in plan.creates:
        report.change(line, "created", row.email, [])
    report.counts["users_created"] = len(plan.creates)
    for line, person, _row, diff in plan.updates:
        report.change(line, "updated", person.email, sorted(diff))
    report.counts["users_updated"] = len(plan.updates)
    for code in departments.create_order:
        report.change(departments.wanted[code][2], "department_created", code, [])
    report.counts["departments_created"] = len(departments.create_order)
    for code, (name, parent, line) in departments.wanted.items():
        dept = departments.existing.get(code)
        if dept is None:
            continue
        fields = []
        if name and name != dept.name:
            fields.append("name")
        if parent:
            parent_dept = departments.existing.get(parent)
            if parent_dept is None or parent_dept.id != dept.parent_id:
                fields.append("parent")
        if fields:
            report.change(line, "department_updated", code, fields)
            report.counts["departments_updated"] += 1
    return plan


def _diff(person: _Person, row: ImportRow, departments: _DeptPlan) -> dict[str, Any]:
    diff: dict[str, Any] = {}
    for name in ("email", "display_name", "title", "location", "bio", "time_zone",
                 "is_external", "is_bot", "employee_number"):
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
        kept_admin = {Role.admin.value} & person.roles
        if {r.value for r in row.roles} | kept_admin != person.roles:
            diff["roles"] = row.roles
    return diff


def _apply(
    plan: _PeoplePlan,
    departments: _DeptPlan,
    to_deactivate: list[_Person],
    report: _Report,
    actor: User | None,
) -> None:
    moment = now()
    session = db.session
    ids = {code: d.id for code, d in departments.existing.items()}
    for code in departments.create_order:
        name, _parent, _line = departments.wanted[code]
        dept = Department(code=code, name=name or code, created_at=moment)
        session.add(dept)
        session.flush()
        ids[code] = dept.id
    for code, (name, parent, _line) in departments.wanted.items():
        dept = departments.existing.get(code) or session.get(Department, ids[code])
        assert dept is not None
        if name and dept.name != name:
            dept.name = name
        if parent and dept.parent_id != ids[parent]:
            dept.parent_id = ids[parent]
    session.flush()

    all_skills = {s for _, row in plan.creates if row.skills for s in row.skills}
    all_skills |= {s for *_, row, diff in plan.updates if "skills" in diff for s in row.skills or []}
    skill_id = {}
    if all_skills:
        skill_ids(sorted(all_skills))
        skill_id = dict(session.execute(select(Skill.name, Skill.id).where(
            Skill.name.in_({normalise_skill(s) for s in all_skills}))).tuples().all())

    if plan.creates:
        new_rows = [
            {
                "email": row.email,
                "display_name": row.display_name,
                "employee_number": row.employee_number,
                "department_id": ids.get(row.department_code) if row.department_code else None,
                "title": row.title or "",
                "location": row.location or "",
                "bio": row.bio or "",
                "time_zone": row.time_zone or "UTC",
                "is_external": bool(row.is_external),
                "is_bot": bool(row.is_bot),
                "is_active": row.active is not False,
                "auth_epoch": 0,
                "created_at": moment,
                "updated_at": moment,
            }
            for _, row in plan.creates
        ]
        created = session.execute(
            insert(User).returning(User.id, sort_by_parameter_order=True), new_rows
        ).scalars().all()
        assignments, roles, skills = [], [], []
        for user_id, (_, row), data in zip(created, plan.creates, new_rows, strict=True):
            if data["department_id"] is not None:
                assignments.append({"user_id": user_id, "department_id": data["department_id"], "started_at": moment})
            default_roles = [] if row.is_external else [Role.employee]
            roles.extend({"user_id": user_id, "role": r}
                         for r in set(row.roles if row.roles is not None else default_roles))
            skills.extend({"user_id": user_id, "skill_id": skill_id[normalise_skill(s)]}
                          for s in set(row.skills or []))
        if assignments:
            session.execute(insert(DepartmentAssignment), assignments)
        if roles:
            session.execute(insert(UserRole), roles)
        if skills:
            session.execute(insert(UserSkill), _unique(skills))

    moves, closing = [], []
    for _line, person, row, diff in plan.updates:
        values: dict[str, Any] = {k: v for k, v in diff.items()
                                  if k not in ("department_code", "skills", "roles")}
        if "department_code" in diff:
            new_dept = ids.get(diff["department_code"]) if diff["department_code"] else None
            values["department_id"] = new_dept
            closing.append(person.id)
            if new_dept is not None:
                moves.append({"user_id": person.id, "department_id": new_dept, "started_at": moment})
        if values.get("is_active") is False:
            values["deactivated_at"] = moment
        elif values.get("is_active") is True:
            values["deactivated_at"] = None
        if values:
            session.execute(
                update(User).where(User.id == person.id).values(updated_at=moment, **values)
                .execution_options(synchronize_session=False)
            )
            if values.get("is_active") is False:
                _revoke_sessions(person.id, moment)
        if "skills" in diff:
            session.execute(delete(UserSkill).where(UserSkill.user_id == person.id))
            wanted = _unique([{"user_id": person.id, "skill_id": skill_id[normalise_skill(s)]}
                              for s in row.skills or []])
            if wanted:
                session.execute(insert(UserSkill), wanted)
        if "roles" in diff:
            session.execute(delete(UserRole).where(UserRole.user_id == person.id,
                                                   UserRole.role != Role.admin))
            granted = [{"user_id": person.id, "role": r} for r in set(row.roles or [])]
            if granted:
                session.execute(insert(UserRole), granted)
    if closing:
        session.execute(
            update(DepartmentAssignment)
            .where(DepartmentAssignment.user_id.in_(closing), DepartmentAssignment.ended_at.is_(None))
            .values(ended_at=moment)
            .execution_options(synchronize_session=False)
        )
    if moves:
        session.execute(insert(DepartmentAssignment), moves)
    for person in to_deactivate:
        session.execute(
            update(User).where(User.id == person.id)
            .values(is_active=False, deactivated_at=moment, updated_at=moment)
            .execution_options(synchronize_session=False)
        )
        _revoke_sessions(person.id, moment)
    counts = report.counts
    record_usage(
        kinds.IMPORT_APPLY,
        actor,
        object_type="import",
        payload={k: counts[k] for k in ("departments_created", "departments_updated", "users_created",
                                        "users_updated", "users_deactivated", "rows_skipped")},
    )
    session.expire_all()


def _revoke_sessions(user_id: int, moment: Any) -> None:
    db.session.execute(
        update(User).where(User.id == user_id).values(auth_epoch=User.auth_epoch + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=moment).execution_options(synchronize_session=False)
    )


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for row in rows:
        key = tuple(sorted(row.items()))
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out
