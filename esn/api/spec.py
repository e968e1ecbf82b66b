"""Declared API operations: one decorator parses and validates requests with pydantic and
records the operation, and the OpenAPI 3.1 document is built from the same records, so the
document cannot drift from what the server accepts.

Routes stay thin: they receive validated ``body`` and ``query`` models, call ``access_*`` and
``do_*``, and return a pydantic model (serialised as JSON), ``None`` (204) or a Response.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Literal

from flask import Blueprint, Flask, Response, json, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from esn.api.problems import FieldError, Problem, not_found, validation_problem
from esn.api.types import MAX_ID

Auth = Literal["public", "user"]
_CONVERTER = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>\w+)>")


# The longest text path parameter (a name, a handle); the document says so too.
MAX_PATH_TEXT = 200


def _plausible(value: Any, converter: str) -> bool:
    """Whether a path parameter could name anything. An id above MAX_ID or text with NUL
    cannot, and the database would fail on it (an INTEGER column cannot be compared with such
    an id; PostgreSQL refuses NUL in text) rather than find nothing: so it is a 404 here."""
    if converter == "int":
        return bool(value <= MAX_ID)
    return not isinstance(value, str) or (len(value) <= MAX_PATH_TEXT and "\x00" not in value)


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    tags: list[str]
    auth: Auth
    status: int
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    raw_body: str | None = None
    # A multipart/form-data body: these fields plus one ``file``.
    form: type[BaseModel] | None = None
    max_body: str | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    description: str = ""
    responses: dict[int, str] = field(default_factory=dict)


REGISTRY: list[Operation] = []
# Endpoints that accept bodies above MAX_REQUEST_BYTES, and the setting that limits each. The
# limit is set, and the body read, before any other hook runs (the CSRF check reads form
# bodies; the authentication hooks open a transaction).
LARGE_BODIES: dict[str, str] = {}


def install_body_limits(app: Flask) -> None:
    @app.before_request
    def _body_limit() -> None:
        setting = LARGE_BODIES.get(request.endpoint or "")
        if setting is not None:
            request.max_content_length = app.config[setting]
            # Read the body now, before any hook opens a transaction: on SQLite a write
            # request's transaction holds the write lock, and a slow client sending a large
            # file would hold every other writer up for as long as the transfer takes.
            if request.mimetype == "multipart/form-data":
                request.files  # noqa: B018  (parses the form and its files)
            else:
                request.get_data(cache=True)


def _errors_from(exc: ValidationError, location: str) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"]]
        out.append(
            FieldError(
                pointer="/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in loc),
                location=location,
                message=err["msg"],
            )
        )
    return out


def _is_list_field(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, set, tuple):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_list_field(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _is_list_field(typing.get_args(annotation)[0])
    return False


def parse_query(model: type[BaseModel]) -> BaseModel:
    data: dict[str, Any] = {}
    errors: list[FieldError] = []
    for key in request.args:
        values = request.args.getlist(key)
        info = model.model_fields.get(key)
        if info is not None and _is_list_field(info.annotation):
            data[key] = values
        elif len(values) > 1:
            errors.append(
                FieldError(pointer=f"/{key}", location="query", message="given more than once")
            )
        else:
            data[key] = values[0]
    if errors:
        raise validation_problem(errors)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(_errors_from(exc, "query")) from None


def parse_body(model: type[BaseModel]) -> BaseModel:
    if request.mimetype != "application/json":
        raise Problem(
            415,
            "Unsupported Media Type",
            "Send the body as application/json.",
            kind="unsupported-media-type",
        )
    raw = request.get_data(cache=True)
    try:
        # Strict: a JSON body has real types, so 0 is not false and "3" is not 3; what the
        # document declares is exactly what is accepted. (Query strings are text; lax there.)
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise Problem(
                400, "Bad Request", "The body is not valid JSON.", kind="malformed-json"
            ) from None
        raise validation_problem(_errors_from(exc, "body")) from None


def _render(result: Any, status: int) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status=204)
    payload = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def operation(
    bp: Blueprint,
    rule: str,
    method: str,
    *,
    summary: str,
    tags: list[str] | None = None,
    auth: Auth = "user",
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    raw_body: str | None = None,
    form: type[BaseModel] | None = None,
    max_body: str | None = None,
    responses: dict[int, str] | None = None,
    decorators: list[Callable[[Callable[..., Any]], Callable[..., Any]]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a JSON API operation on ``bp``.

    The view receives path parameters plus ``body`` and/or ``query`` when models are given.
    ``auth="user"`` answers 401 unless an active person is signed in (cookie or bearer).
    ``responses`` documents further statuses the operation itself may answer with.
    ``decorators`` wrap the view before it is registered (outermost first), e.g. rate limits.
    ``form`` documents a multipart body (its fields plus a ``file``), which the view reads
    itself; ``max_body`` names the setting that limits this endpoint's body instead of
    MAX_REQUEST_BYTES.
    """
    from esn.accounts.auth import require_user  # late: accounts imports the api package

    prefix = bp.url_prefix or ""
    path_params = {m["name"]: m["conv"] or "string" for m in _CONVERTER.finditer(rule)}
    path = prefix + _CONVERTER.sub(lambda m: "{" + m["name"] + "}", rule)

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        op = Operation(
            method=method.lower(),
            path=path,
            summary=summary,
            tags=tags or [bp.name],
            auth=auth,
            status=status,
            body=body,
            query=query,
            response=response,
            raw_body=raw_body,
            form=form,
            max_body=max_body,
            path_params=path_params,
            description=(fn.__doc__ or "").strip(),
            responses=responses or {},
        )
        REGISTRY.append(op)
        if max_body is not None:
            LARGE_BODIES[f"{bp.name}.{fn.__name__}"] = max_body

        @wraps(fn)
        def view(**kwargs: Any) -> Response:
            if auth == "user":
                require_user()
            if not all(_plausible(kwargs[name], conv) for name, conv in path_params.items()):
                raise not_found()
            if query is not None:
                kwargs["query"] = parse_query(query)
            if body is not None:
                kwargs["body"] = parse_body(body)
            return _render(fn(**kwargs), status)

        wrapped: Callable[..., Any] = view
        for extra in reversed(decorators or []):
            wrapped = extra(wrapped)
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=wrapped, methods=[method.upper()])
        return wrapped

    return decorator


# --- the OpenAPI document -------------------------------------------------------------------

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "maxLength": 200},
        "title": {"type": "string", "maxLength": 200},
        "status": {"type": "integer"},
        "detail": {"type": "string", "maxLength": 2000},
        "request_id": {"type": "string", "maxLength": 64},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string", "maxLength": 500},
                    "location": {"type": "string", "enum": ["body", "query", "path"]},
                    "message": {"type": "string", "maxLength": 2000},
                },
            },
        },
    },
}

_STANDARD_ERRORS = {
    400: "Malformed request (bad JSON, bad cursor).",
    401: "Not signed in.",
    403: "Signed in, but not allowed (or the CSRF token is missing).",
    404: "No such resource, or not visible to you.",
    413: "The body is larger than the limit.",
    415: "The body is not of the accepted media type.",
    422: "A field is invalid; `errors` lists them.",
    429: "Too many requests.",
}


def _problem_ref() -> dict[str, Any]:
    return {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def build_openapi(app: Flask, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered operation whose view is on ``app``."""
    live = {rule.rule for rule in app.url_map.iter_rules()}
    ops = [
        op
        for op in REGISTRY
        if _CONVERTER.sub("", op.path) in {_CONVERTER.sub("", r) for r in live}
        or any(_same_path(op.path, r) for r in live)
    ]
    wanted: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = []
    for op in ops:
        parts = (
            (op.body, "validation"),
            (op.query, "validation"),
            (op.form, "validation"),
            (op.response, "serialization"),
        )
        for model, mode in parts:
            if model is not None and (model, mode) not in wanted:
                wanted.append((model, mode))  # type: ignore[arg-type]
    refs, top = models_json_schema(wanted, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    schemas["Problem"] = _PROBLEM_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for op in sorted(ops, key=lambda o: (o.path, o.method)):
        item: dict[str, Any] = {
            "operationId": _operation_id(op),
            "summary": op.summary,
            "tags": op.tags,
        }
        if op.description:
            item["description"] = op.description
        params: list[dict[str, Any]] = []
        for name, conv in op.path_params.items():
            schema: dict[str, Any] = (
                {"type": "integer", "minimum": 0, "maximum": MAX_ID}
                if conv == "int"
                else {"type": "string", "maxLength": MAX_PATH_TEXT}
            )
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
        if op.query is not None:
            ref = refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[-1]
            qschema = schemas[ref]
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                param: dict[str, Any] = {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": prop,
                }
                if prop.get("type") == "array":
                    param["style"] = "form"
                    param["explode"] = True
                params.append(param)
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        elif op.form is not None:
            ref = refs[(op.form, "validation")]["$ref"].rsplit("/", 1)[-1]
            fields = schemas[ref]
            item["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file", *fields.get("required", [])],
                            "properties": {
                                "file": {
                                    "type": "string",
                                    "format": "binary",
                                    "maxLength": app.config[op.max_body or "MAX_REQUEST_BYTES"],
                                },
                                **fields.get("properties", {}),
                            },
                            "additionalProperties": False,
                        }
                    }
                },
            }
        elif op.raw_body is not None:
            item["requestBody"] = {
                "required": True,
                "content": {
                    op.raw_body: {
                        "schema": {
                            "type": "string",
                            "maxLength": app.config[op.max_body or "MAX_REQUEST_BYTES"],
                        }
                    }
                },
            }
        responses: dict[str, Any] = {}
        if op.status == 204:
            responses["204"] = {"description": "Done; no content."}
        else:
            ok: dict[str, Any] = {"description": "Success."}
            if op.response is not None:
                ok["content"] = {
                    "application/json": {"schema": refs[(op.response, "serialization")]}
                }
            responses[str(op.status)] = ok
        errs = {422: _STANDARD_ERRORS[422], 400: _STANDARD_ERRORS[400]}
        if op.auth == "user":
            errs[401] = _STANDARD_ERRORS[401]
            errs[403] = _STANDARD_ERRORS[403]
        # An id in the path, or one in the body or query (an ``Id`` field), may name nothing
        # the caller can see.
        named = [
            schemas[refs[(m, "validation")]["$ref"].rsplit("/", 1)[-1]]
            for m in (op.body, op.query, op.form)
            if m is not None
        ]
        if op.path_params or any(_names_records(schema, schemas) for schema in named):
            errs[404] = _STANDARD_ERRORS[404]
        if op.body is not None or op.raw_body is not None or op.form is not None:
            errs[413] = _STANDARD_ERRORS[413]
            errs[415] = _STANDARD_ERRORS[415]
        errs.update(op.responses)
        for code, text in sorted(errs.items()):
            responses[str(code)] = {"description": text, "content": _problem_ref()}
        item["responses"] = responses
        item["security"] = [{"bearerAuth": []}, {"cookieAuth": []}] if op.auth == "user" else []
        paths.setdefault(op.path, {})[op.method] = item

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API token.",
                },
                "cookieAuth": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "session",
                    "description": "The session cookie; unsafe methods also need X-CSRFToken.",
                },
            },
        },
    }


def _names_records(schema: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether an object schema has a property that is an id (an integer up to MAX_ID)."""
    for prop in schema.get("properties", {}).values():
        for alt in [prop, *prop.get("anyOf", [])]:
            if "$ref" in alt:
                continue  # a nested object; ids in request objects are top-level
            if alt.get("type") == "integer" and alt.get("maximum") == MAX_ID:
                return True
    return False


def _operation_id(op: Operation) -> str:
    name = op.path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    return f"{op.method}_{name.replace('-', '_')}"


def _same_path(openapi_path: str, flask_rule: str) -> bool:
    return _CONVERTER.sub("{}", flask_rule) == re.sub(r"\{\w+\}", "{}", openapi_path)
