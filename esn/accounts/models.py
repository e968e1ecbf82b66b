"""People, their roles and skills, and personal API tokens."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from esn.clock import now
from esn.database import UTCDateTime
from esn.directory.models import Department
from esn.extensions import Base


class Role(enum.StrEnum):
    employee = "employee"
    moderator = "moderator"
    innovation_manager = "innovation_manager"
    hr = "hr"
    communications = "communications"
    governance_lead = "governance_lead"
    admin = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased; the unique constraint is therefore case-insensitive in effect.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    employee_number: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The @handle for mentions; unique, derived from the e-mail address (esn.accounts.handles).
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), index=True)
    # None for people who have never set a password (imported, waiting for an invitation).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_external: Mapped[bool] = mapped_column(Boolean, default=False)
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    title: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(String(200), default="", index=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    bio: Mapped[str] = mapped_column(Text, default="")
    # Part of the session identifier: bumping it signs the person out everywhere.
    auth_epoch: Mapped[int] = mapped_column(Integer, default=0)
    # The day (UTC) of the last recorded visit; at most one visit event per person per day.
    last_visit_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    department: Mapped[Department | None] = relationship(lazy="joined")
    # Loaded when read: most loads of a person (an author, a recipient, who is asking) never
    # need them; listings that show them ask for them in one query (selectinload).
    role_rows: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", order_by="UserRole.role"
    )
    skill_rows: Mapped[list[UserSkill]] = relationship(cascade="all, delete-orphan")

    @property
    def roles(self) -> list[Role]:
        return sorted({row.role for row in self.role_rows})

    def has_role(self, role: Role) -> bool:
        return role in self.roles

    @property
    def skills(self) -> list[str]:
        return sorted(row.skill.label for row in self.skill_rows)

    # Flask-Login protocol. The id carries the auth epoch so that a bump invalidates sessions.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.auth_epoch}"


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            name="role",
            native_enum=False,
            create_constraint=True,
            length=32,
            validate_strings=True,
        ),
        primary_key=True,
    )


class Skill(Base):
    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised key: lower case, single spaces.
    name: Mapped[str] = mapped_column(String(80), unique=True)
    # How the skill was first written, for display.
    label: Mapped[str] = mapped_column(String(80))


class UserSkill(Base):
    __tablename__ = "user_skills"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(
        ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    skill: Mapped[Skill] = relationship(lazy="joined")


class ApiToken(Base):
    """A personal API token; only a SHA-256 digest of the secret is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64))
    # The first characters of the token, so that a person can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
