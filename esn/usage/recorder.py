"""``record_usage``: the one way to write the usage event log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from esn.clock import now
from esn.extensions import db
from esn.usage.kinds import UsageKind, UsageKindError, get
from esn.usage.models import UsageEvent

if TYPE_CHECKING:
    from esn.accounts.models import User


def record_usage(
    kind: UsageKind | str,
    actor: User | None,
    *,
    object_type: str | None = None,
    object_id: int | None = None,
    owner_id: int | None = None,
    group_id: int | None = None,
    process: str | None = None,
    thread_root_id: int | None = None,
    payload: dict[str, Any] | None = None,
    at: datetime | None = None,
    session: Session | None = None,
) -> UsageEvent:
    """Add one usage event to the current transaction (it commits or rolls back with the action).

    The actor's department is taken as it is now, which is its department at the time of the
    event. Raises ``UsageKindError`` for an undeclared kind or a payload its kind does not
    declare.
    """
    declared = get(kind) if isinstance(kind, str) else get(kind.name)
    try:
        checked = declared.payload.model_validate(payload or {})
    except ValidationError as exc:
        raise UsageKindError(f"payload of {declared.name!r} is invalid: {exc}") from exc
    sess = session or db.session
    if actor is not None and actor.id is None:
        sess.flush()  # a person created in this same transaction needs their id first
    event = UsageEvent(
        occurred_at=at or now(),
        kind=declared.name,
        actor_id=actor.id if actor is not None else None,
        actor_department_id=actor.department_id if actor is not None else None,
        object_type=object_type,
        object_id=object_id,
        owner_id=owner_id,
        group_id=group_id,
        process=process,
        thread_root_id=thread_root_id,
        payload=checked.model_dump(mode="json"),
    )
    sess.add(event)
    for listener in _LISTENERS.get(declared.name, ()):
        listener(event, sess)
    return event


# What other features derive from events, in the same transaction (notifications, realtime).
Listener = Callable[[UsageEvent, Any], None]  # (the session, or the scoped one)
_LISTENERS: dict[str, list[Listener]] = {}


def listen(kind: UsageKind, listener: Listener) -> None:
    """Call ``listener(event, session)`` whenever an event of ``kind`` is recorded, inside the
    recording transaction: what it writes commits or rolls back with the action."""
    _LISTENERS.setdefault(kind.name, []).append(listener)
