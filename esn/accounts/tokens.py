"""Personal API token secrets: generated once, shown once, stored as a SHA-256 digest.

A token has 256 bits of randomness, so a fast digest is enough (no password KDF needed): the
digest cannot be reversed and equal tokens cannot be guessed.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "esn_"  # noqa: S105 (a prefix, not a secret)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(token: str) -> str:
    return token[: len(TOKEN_PREFIX) + 6]
