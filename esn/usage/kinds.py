"""The declared kinds of usage event and the payload each may carry.

A kind is named ``source:subject:action``. Recording an undeclared kind, or a payload field
that its kind does not declare, raises ``UsageKindError``: telemetry can only trust a log whose
vocabulary is closed. Features declare their kinds at import time with ``declare``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

KIND_PATTERN = re.compile(r"^[a-z][a-z_]*:[a-z][a-z_]*:[a-z][a-z_]*$")


class UsageKindError(ValueError):
    """An undeclared kind, or a payload that does not match its kind's declaration."""


class NoPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class UsageKind:
    name: str
    payload: type[BaseModel]
    # What this kind means to telemetry; stated once here so the indicator code can ask.
    interaction: bool = False
    contribution: bool = False
    description: str = ""


_REGISTRY: dict[str, UsageKind] = {}


def declare(
    name: str,
    payload: type[BaseModel] = NoPayload,
    *,
    interaction: bool = False,
    contribution: bool = False,
    description: str = "",
) -> UsageKind:
    """Add a kind to the vocabulary. Declaring the same name twice is a programming error."""
    if not KIND_PATTERN.match(name):
        raise UsageKindError(f"usage kind {name!r} is not of the form source:subject:action")
    if name in _REGISTRY:
        raise UsageKindError(f"usage kind {name!r} is declared twice")
    if payload.model_config.get("extra") != "forbid":
        raise UsageKindError(f"payload of {name!r} must forbid unknown fields")
    kind = UsageKind(name, payload, interaction, contribution, description)
    _REGISTRY[name] = kind
    return kind


def get(name: str) -> UsageKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageKindError(f"unknown usage kind {name!r}") from None


def all_kinds() -> list[UsageKind]:
    return sorted(_REGISTRY.values(), key=lambda k: k.name)


# --- kinds of the foundation -------------------------------------------------------------


class ImportSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    departments_created: int
    departments_updated: int
    users_created: int
    users_updated: int
    users_deactivated: int
    rows_skipped: int


class DepartmentMove(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    from_department_id: int | None
    to_department_id: int | None


class ChangedFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    fields: list[str]


SIGN_IN = declare("account:session:sign_in", description="a person signed in with a password")
SIGN_OUT = declare("account:session:sign_out")
VISIT = declare(
    "account:session:visit",
    description="the first authenticated request of a person on a UTC day (A2 visitor share)",
)
PASSWORD_CHANGE = declare("account:password:change")
TOKEN_CREATE = declare("account:token:create")
TOKEN_REVOKE = declare("account:token:revoke")
PROFILE_UPDATE = declare("account:profile:update", ChangedFields)
USER_CREATE = declare("admin:user:create")
USER_UPDATE = declare("admin:user:update", ChangedFields)
USER_DEACTIVATE = declare("admin:user:deactivate")
USER_REACTIVATE = declare("admin:user:reactivate")
DEPARTMENT_MOVE = declare("admin:user:move_department", DepartmentMove)
DEPARTMENT_CREATE = declare("admin:department:create")
DEPARTMENT_UPDATE = declare("admin:department:update", ChangedFields)
IMPORT_APPLY = declare("admin:import:apply", ImportSummary)


# --- kinds of the social core -------------------------------------------------------------------
# Telemetry: an interaction is a post, a comment or reply, a reaction or a mention; a
# contribution is a post or a comment. ``owner_id`` on an event is the person whose content was
# answered, reacted to or mentioned — the tie u→v of the network indicators.


class PostPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str  # post | article
    is_question: bool


class CommentPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    is_reply: bool
    on_question: bool


class ReactionPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reaction: str
    target: str  # post | comment


class MentionPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str  # post | comment


class FollowPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    target: str  # user | group | hashtag


class RolePayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    role: str


class AnnouncementPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    department_id: int | None


POST_DRAFT = declare("social:post:save_draft", PostPayload)
POST_PUBLISH = declare("social:post:publish", PostPayload, interaction=True, contribution=True)
POST_EDIT = declare("social:post:edit", ChangedFields)
POST_DELETE = declare("social:post:delete")
COMMENT_CREATE = declare(
    "social:comment:create", CommentPayload, interaction=True, contribution=True
)
COMMENT_EDIT = declare("social:comment:edit")
COMMENT_DELETE = declare("social:comment:delete")
REACTION_ADD = declare("social:reaction:add", ReactionPayload, interaction=True)
REACTION_REMOVE = declare("social:reaction:remove", ReactionPayload)
MENTION = declare("social:mention:create", MentionPayload, interaction=True)
ANSWER_ACCEPT = declare("social:answer:accept")
FOLLOW = declare("social:follow:create", FollowPayload)
UNFOLLOW = declare("social:follow:delete", FollowPayload)
ANNOUNCEMENT_PIN = declare("social:announcement:pin", AnnouncementPayload)
ANNOUNCEMENT_UNPIN = declare("social:announcement:unpin")
GROUP_CREATE = declare("groups:group:create")
GROUP_UPDATE = declare("groups:group:update", ChangedFields)
GROUP_ARCHIVE = declare("groups:group:archive")
MEMBER_JOIN = declare("groups:member:join")
MEMBER_LEAVE = declare("groups:member:leave")
MEMBER_REMOVE = declare("groups:member:remove")
MEMBER_ROLE = declare("groups:member:change_role", RolePayload)
REQUEST_CREATE = declare("groups:request:create")
REQUEST_APPROVE = declare("groups:request:approve")
REQUEST_DECLINE = declare("groups:request:decline")
INVITATION_CREATE = declare("groups:invitation:create")
INVITATION_ACCEPT = declare("groups:invitation:accept")
INVITATION_DECLINE = declare("groups:invitation:decline")
REACTION_CHANGE = declare("social:reaction:change", ReactionPayload)


# --- kinds of the governance records ------------------------------------------------------------
# Administrative acts of governance leads, and employees acknowledging the policy. The process
# a record concerns is in the payload, not in the event's ``process`` column: maintaining the
# marketing roadmap is not taking part in marketing, and must not count as activity there.


class GovernancePayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    process: str | None = None
    fields: list[str] | None = None


class GateEvidencePayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    gate: str
    process: str | None


class DocumentPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str  # policy | netiquette
    version: int | None


class TrainingPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    training: str


class TrainingImportSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    records_created: int
    records_updated: int


GOV_SCOPE_UPDATE = declare("governance:scope:update", GovernancePayload)
GOV_AMBITION_SET = declare("governance:ambition:set", GovernancePayload)
GOV_ROADMAP_CREATE = declare("governance:roadmap:create", GovernancePayload)
GOV_ROADMAP_UPDATE = declare("governance:roadmap:update", GovernancePayload)
GOV_ROADMAP_DELETE = declare("governance:roadmap:delete", GovernancePayload)
GOV_EVIDENCE_ATTEST = declare("governance:evidence:attest", GateEvidencePayload)
GOV_EVIDENCE_APPROVE = declare("governance:evidence:approve", GateEvidencePayload)
GOV_EVIDENCE_WITHDRAW = declare("governance:evidence:withdraw", GateEvidencePayload)
GOV_DOCUMENT_CREATE = declare("governance:document:create", DocumentPayload)
GOV_DOCUMENT_EDIT = declare("governance:document:edit", DocumentPayload)
GOV_DOCUMENT_DELETE = declare("governance:document:delete", DocumentPayload)
GOV_DOCUMENT_PUBLISH = declare("governance:document:publish", DocumentPayload)
GOV_DOCUMENT_ACKNOWLEDGE = declare(
    "governance:document:acknowledge",
    DocumentPayload,
    description="a person acknowledged a published policy or netiquette version",
)
GOV_TRAINING_RECORD = declare("governance:training:record", TrainingPayload)
GOV_TRAINING_DELETE = declare("governance:training:delete", TrainingPayload)
GOV_TRAINING_IMPORT = declare("governance:training:import", TrainingImportSummary)
GOV_REQUIREMENT_CREATE = declare("governance:requirement:create", GovernancePayload)
GOV_REQUIREMENT_DELETE = declare("governance:requirement:delete", GovernancePayload)
GOV_ESCALATION_DECLARE = declare("governance:escalation:declare")
GOV_PRIVACY_RECORD = declare("governance:privacy:record")


# --- kinds of moderation ------------------------------------------------------------------------
# Recorded by the moderation queue: a report raised on content and its resolution (escalation
# latency, R4). ``object_id`` is the report's id, ``process`` that of the reported content.


class ReportPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    target: str | None = None  # post | comment
    severity: str | None = None  # low | normal | high


class ResolvePayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    decision: str | None = None  # dismissed | removed | warned


REPORT_RAISE = declare(
    "moderation:report:raise", ReportPayload, description="content reported for moderation"
)
REPORT_RESOLVE = declare(
    "moderation:report:resolve", ResolvePayload, description="a report resolved"
)


# --- kinds of photos ----------------------------------------------------------------------------
# ``object_id`` is the photo's (or album's) id. An album photo also publishes a post of its own
# (social:post:publish), which carries its comments and reactions like any other thread.


class PhotoPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str | None = None  # jpeg | png | webp | gif
    placement: str | None = None  # pending | album | post | avatar | banner
    bytes: int | None = None  # stored, all sizes together


PHOTO_UPLOAD = declare("photos:photo:upload", PhotoPayload, description="a photo uploaded")
PHOTO_PLACE = declare(
    "photos:photo:place", PhotoPayload, description="an uploaded photo put in a post, avatar…"
)
PHOTO_DELETE = declare("photos:photo:delete", PhotoPayload)
ALBUM_CREATE = declare("photos:album:create")
ALBUM_EDIT = declare("photos:album:edit")
ALBUM_DELETE = declare("photos:album:delete")
