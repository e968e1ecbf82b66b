"""Handles: the unique ``@name`` by which people are mentioned.

A handle is derived from the e-mail address's local part (ASCII letters, digits, ``.``, ``_``,
``-``; it starts and ends with a letter or digit); a taken handle gets ``-2``, ``-3`` … appended.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from sqlalchemy import select

from esn.extensions import db

MAX_LENGTH = 64
_NOT_ALLOWED = re.compile(r"[^a-z0-9._-]+")


def handle_base(email: str) -> str:
    local = email.split("@", 1)[0]
    ascii_only = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
    base = _NOT_ALLOWED.sub("", ascii_only.lower()).strip("._-")[: MAX_LENGTH - 8]
    return base.strip("._-") or "user"


def unique_handles(emails: Iterable[str], taken: set[str]) -> list[str]:
    """One new handle per address, distinct from ``taken`` and from each other (``taken`` is
    updated)."""
    out = []
    for email in emails:
        base = handle_base(email)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate)
        out.append(candidate)
    return out


def new_handle(email: str) -> str:
    """A free handle for ``email`` (reads the handles that share its base)."""
    from esn.accounts.models import User

    base = handle_base(email)
    taken = set(
        db.session.scalars(
            select(User.handle).where((User.handle == base) | User.handle.like(f"{base}-%"))
        )
    )
    return unique_handles([email], taken)[0]
