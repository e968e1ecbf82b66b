"""Errors as RFC 9457 ``application/problem+json``.

Every error the API returns goes through ``problem_response``: known HTTP errors keep their
status, validation failures list their fields, and an unexpected exception becomes a 500 whose
body says nothing about the internals (the log has the traceback and the request id).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from flask import Flask, Response, g, json, request
from flask_wtf.csrf import CSRFError
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException

from esn.extensions import db

log = logging.getLogger("esn.api")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/api/v1/problems/"


class FieldError(BaseModel):
    # A JSON pointer (RFC 6901) into the request part named by ``in``.
    pointer: str
    location: str
    message: str


class Problem(Exception):
    """Raise to answer with a problem document. ``kind`` becomes the ``type`` URI."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        kind: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


def not_found(what: str = "resource") -> Problem:
    return Problem(404, "Not Found", f"No such {what}.", kind="not-found")


def forbidden(detail: str = "You may not do this.") -> Problem:
    return Problem(403, "Forbidden", detail, kind="forbidden")


def conflict(detail: str, **extra: Any) -> Problem:
    return Problem(409, "Conflict", detail, kind="conflict", **extra)


def validation_problem(errors: list[FieldError], detail: str | None = None) -> Problem:
    return Problem(
        422,
        "Unprocessable Content",
        detail or "The request has invalid fields.",
        kind="validation-error",
        errors=errors,
    )


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + problem.kind if problem.kind else "about:blank",
        "title": problem.title,
        "status": problem.status,
    }
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors is not None:
        body["errors"] = [e.model_dump() for e in problem.errors]
    request_id = getattr(g, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    body.update(problem.extra)
    response = Response(json.dumps(body), status=problem.status, mimetype=PROBLEM_JSON)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


_HTTP_KINDS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
}


def _from_http(exc: HTTPException) -> Problem:
    status = exc.code or 500
    headers: dict[str, str] = {}
    if exc.response is not None:
        # Keep headers such as Allow (405) and Retry-After (429).
        for name in ("Allow", "Retry-After"):
            if name in exc.response.headers:
                headers[name] = exc.response.headers[name]
    elif status == 405:
        valid = getattr(exc, "valid_methods", None)
        if valid:
            headers["Allow"] = ", ".join(valid)
    detail = exc.description if status != 500 else None
    return Problem(status, exc.name, detail, kind=_HTTP_KINDS.get(status), headers=headers)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Response:
        return problem_response(
            Problem(
                403,
                "CSRF token missing or invalid",
                "Send the token from GET /api/v1/auth/session in the X-CSRFToken header.",
                kind="csrf",
            )
        )

    @app.errorhandler(429)
    def _rate_limited(exc: HTTPException) -> Response:
        problem = _from_http(exc)
        problem.detail = "Too many attempts; wait before trying again."
        return problem_response(problem)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return problem_response(_from_http(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        # Nothing of a failed request is kept, and the session is usable again for what still
        # runs in this request (after_request hooks read the signed-in person). The database
        # may be what failed, so a failing rollback must not hide the 500.
        with contextlib.suppress(Exception):
            db.session.rollback()
        return problem_response(
            Problem(500, "Internal Server Error", "Something went wrong on our side.")
        )


def reject_nulls(changes: dict[str, Any], nullable: frozenset[str] = frozenset()) -> None:
    """A PATCH may leave a field out, but may set to null only the fields in ``nullable``."""
    bad = [k for k, v in changes.items() if v is None and k not in nullable]
    if bad:
        raise validation_problem(
            [FieldError(pointer=f"/{k}", location="body", message="may not be null") for k in bad]
        )
