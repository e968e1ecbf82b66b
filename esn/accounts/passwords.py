"""Argon2id password hashing and the password rules."""

from __future__ import annotations

import contextlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

MIN_LENGTH = 12
MAX_LENGTH = 256


def make_hasher(cost: str) -> PasswordHasher:
    """``standard`` uses argon2-cffi's defaults (RFC 9106 low-memory profile); ``low`` is for
    tests, where thousands of hashes would otherwise dominate the run time."""
    if cost == "low":
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()


def _hasher() -> PasswordHasher:
    hasher: PasswordHasher = current_app.extensions["esn.password_hasher"]
    return hasher


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches. With no stored hash a dummy verification still runs, so
    that the response time does not tell whether an account exists."""
    hasher = _hasher()
    if stored_hash is None:
        dummy = current_app.extensions["esn.password_dummy_hash"]
        with contextlib.suppress(VerificationError, InvalidHashError):
            hasher.verify(dummy, password + "\x00never")
        return False
    try:
        return hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher().check_needs_rehash(stored_hash)


def password_problems(password: str, *, email: str = "", display_name: str = "") -> list[str]:
    """Why ``password`` is not acceptable (ASVS 5.0 V6.2: length over composition rules)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters long")
    lowered = password.lower()
    if email and lowered == email.lower():
        problems.append("must not be your e-mail address")
    if display_name and lowered == display_name.lower():
        problems.append("must not be your name")
    return problems
