"""Opaque cursors for keyset pagination.

A cursor is the sort key of the last item of a page, base64url-encoded JSON. It is not a
secret and carries nothing the client could not see; a cursor that does not decode to the
expected shape is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from esn.api.problems import Problem
from esn.api.types import MAX_ID

MAX_CURSOR_LENGTH = 512


def encode_cursor(*key: Any) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> tuple[Any, ...]:
    """Decode ``cursor`` into values of ``types``; raises a 400 Problem on anything else."""
    bad = Problem(400, "Bad Request", "The cursor is not valid.", kind="invalid-cursor")
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(values, list) or len(values) != len(types):
        raise bad
    out: list[Any] = []
    for value, kind in zip(values, types, strict=True):
        # bool is an int in Python; a cursor never legitimately holds one.
        if isinstance(value, bool) or not isinstance(value, kind):
            raise bad
        # Values the database would refuse (an INTEGER out of range, NUL in text) are a 400
        # here, not a 500 there. Ints in cursors are ids.
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            raise bad
        if isinstance(value, str) and "\x00" in value:
            raise bad
        out.append(value)
    return tuple(out)
