"""The API's conventions, case by case: how bad requests are refused (and that refusing writes
nothing), the OpenAPI document, cursor paging, the health probes and request ids.

The request-body cases run against every operation of the OpenAPI document that takes a JSON
body, so a new endpoint is covered the day it is declared.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from esn.accounts.actions import do_create_token
from esn.accounts.auth import require_user
from esn.accounts.models import User
from esn.api.pagination import encode_cursor
from esn.api.types import MAX_ID
from esn.directory.models import Department
from esn.extensions import db
from tests.api.helpers import PROBLEM_JSON, assert_problem, document_app, snapshot
from tests.conftest import ApiClient, fresh, make_user

PEOPLE = "/api/v1/people"


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def bearer(app: Flask, admin: User) -> ApiClient:
    """An administrator's API client authenticated by a bearer token (no CSRF involved)."""
    _token, secret = do_create_token(admin, "conventions", None)
    db.session.commit()
    client = ApiClient(app, token=secret)
    # The day's first request records a visit; get it out of the way so that the "nothing was
    # written" checks below see only what the request under test did.
    assert client.get("/api/v1/me").status_code == 200
    return client


@pytest.fixture(scope="module")
def doc_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return document_app(str(tmp_path_factory.mktemp("openapi")))


@pytest.fixture(scope="module")
def openapi(doc_app: Flask) -> dict[str, Any]:
    """The document; it depends on the code only, so the tests of it run once, not per
    database."""
    response = doc_app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()  # type: ignore[no-any-return]


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node[part]
        schema = node
    return schema


def json_body_operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, body schema) of every operation that takes a JSON body."""
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = resolve(doc, content["application/json"]["schema"])
                out.append((method.upper(), path, schema))
    assert out, "no operation takes a JSON body?"
    return out


def fill_path(path: str) -> str:
    """``path`` with every parameter set to 1. Bodies are parsed before anything is looked up,
    so whether the record exists does not matter to the cases below."""
    return re.sub(r"\{\w+\}", "1", path)


def send_raw(
    client: ApiClient, method: str, path: str, data: bytes, content_type: str | None
) -> Any:
    headers = {"Content-Type": content_type} if content_type else {}
    return client.request(method, path, data=data, headers=headers)


def pointers(problem: dict[str, Any]) -> set[str]:
    return {e["pointer"] for e in problem.get("errors", [])}


# --- refused request bodies, on every JSON-body operation -------------------------------------


def test_bad_bodies_are_refused_as_problems_and_write_nothing(
    app: Flask, bearer: ApiClient, openapi: dict[str, Any]
) -> None:
    too_big = b'{"name": "' + b"x" * app.config["MAX_REQUEST_BYTES"] + b'"}'
    operations = json_body_operations(openapi)
    assert {("POST", "/api/v1/admin/users"), ("PATCH", "/api/v1/people/{user_id}")} <= {
        (m, p) for m, p, _schema in operations
    }
    over_long_checked = 0
    for method, template, schema in operations:
        path = fill_path(template)
        before = snapshot()

        def refused(
            data: bytes, content_type: str | None, status: int, *, m: str = method, p: str = path
        ) -> dict[str, Any]:
            response = send_raw(bearer, m, p, data, content_type)
            try:
                return assert_problem(response, status)
            except AssertionError as exc:
                where = f"{m} {p} with {data[:60]!r} ({content_type})"
                raise AssertionError(f"{where}: {exc}") from None

        # Not JSON at all: 400, whatever the schema.
        body = refused(b'{"name": ', "application/json", 400)
        assert body["type"].endswith("/malformed-json")
        refused(b"\xff\xfe{}", "application/json", 400)

        # Not declared as JSON: 415, even when the bytes are JSON.
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            body = refused(b"{}", content_type, 415)
            assert body["type"].endswith("/unsupported-media-type")

        # JSON, but not an object: 422.
        for data in (b"[]", b'[{"name": "x"}]', b'"text"', b"42", b"null"):
            refused(data, "application/json", 422)

        # An unknown field: 422 that points at it.
        body = refused(b'{"no_such_field": 1}', "application/json", 422)
        assert body["type"].endswith("/validation-error")
        assert "/no_such_field" in pointers(body), body
        assert all(e["location"] == "body" for e in body["errors"])

        # A string one character over its maxLength: 422 that points at it.
        limited = [
            (name, prop["maxLength"])
            for name, prop in ((n, resolve(openapi, p)) for n, p in schema["properties"].items())
            for prop in [prop, *prop.get("anyOf", [])]
            if prop.get("type") == "string" and "maxLength" in prop
        ]
        for name, limit in limited[:3]:
            data = json.dumps({name: "x" * (limit + 1)}).encode()
            assert f"/{name}" in pointers(refused(data, "application/json", 422))
        over_long_checked += bool(limited)

        # Larger than MAX_REQUEST_BYTES: 413 before anything is parsed.
        body = refused(too_big, "application/json", 413)
        assert body["type"].endswith("/payload-too-large")

        assert snapshot() == before, f"{method} {path}: a refused request wrote something"
    assert over_long_checked >= len(operations) // 2, "few bodies have a string to overfill"


def test_the_import_has_its_own_body_limit(app: Flask, bearer: ApiClient) -> None:
    """The CSV import takes more than MAX_REQUEST_BYTES, up to MAX_IMPORT_BYTES."""
    header = b"email,display_name\n"
    row = b"someone@example.org,Some One\n"
    general = app.config["MAX_REQUEST_BYTES"]
    over_general = header + row * (general // len(row) + 1)
    url = "/api/v1/admin/imports?dry_run=true"
    response = send_raw(bearer, "POST", url, over_general, "text/csv")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["rows"] > 1
    app.config["MAX_IMPORT_BYTES"] = len(over_general) - 1
    assert_problem(send_raw(bearer, "POST", url, over_general, "text/csv"), 413)


def test_a_bad_request_by_cookie_session_is_refused_the_same_way(
    admin_api: ApiClient, admin: User
) -> None:
    fresh()
    before = snapshot()
    response = admin_api.patch(f"{PEOPLE}/{admin.id}", json={"title": "x" * 201, "nope": 1})
    body = assert_problem(response, 422)
    assert {"/title", "/nope"} <= pointers(body)
    assert snapshot() == before


def test_maximum_length_counts_what_was_sent(bearer: ApiClient) -> None:
    """Surrounding whitespace is stripped, but it does not make an over-long value fit: the
    document says maxLength 100, so 101 characters are refused whatever they are."""
    body = assert_problem(bearer.post("/api/v1/me/tokens", json={"name": " " + "x" * 100}), 422)
    assert pointers(body) == {"/name"}
    created = bearer.post("/api/v1/me/tokens", json={"name": "  spaced  "})
    assert created.status_code == 201 and created.get_json()["name"] == "spaced"


def test_json_types_are_not_coerced(bearer: ApiClient, admin: User) -> None:
    """What the document declares is what is accepted: 0 is not false, "3" is not 3."""
    changes = ({"is_bot": 0}, {"is_bot": "true"}, {"department_id": "1"}, {"department_id": 1.5})
    for change in changes:
        body = assert_problem(bearer.patch(f"/api/v1/admin/users/{admin.id}", json=change), 422)
        assert pointers(body) == {f"/{next(iter(change))}"}


def test_ids_beyond_the_database_range_are_not_found_or_invalid(
    bearer: ApiClient, admin: User
) -> None:
    for path in (f"{PEOPLE}/{MAX_ID + 1}", f"{PEOPLE}/{10**30}", f"/api/v1/admin/users/{2**63}"):
        assert_problem(bearer.get(path), 404)
    assert_problem(bearer.patch(f"{PEOPLE}/{10**30}", json={"title": "x"}), 404)
    assert_problem(bearer.get(f"{PEOPLE}?department_id={10**30}"), 422)
    change = {"department_id": MAX_ID + 1}
    body = assert_problem(bearer.patch(f"/api/v1/admin/users/{admin.id}", json=change), 422)
    assert pointers(body) == {"/department_id"}
    department = {"code": "X", "name": "X", "parent_id": 2**40}
    body = assert_problem(bearer.post("/api/v1/admin/departments", json=department), 422)
    assert pointers(body) == {"/parent_id"}


def _string_properties(doc: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    return [
        name
        for name, prop in schema.get("properties", {}).items()
        if any(
            alt.get("type") == "string"
            for alt in [resolve(doc, prop), *resolve(doc, prop).get("anyOf", [])]
        )
    ]


def test_nul_is_refused_in_every_string_input(bearer: ApiClient, openapi: dict[str, Any]) -> None:
    """PostgreSQL cannot store NUL in text, so no string a client sends may hold one: a 422 that
    points at the field (a 404 in a path) on every database, never a 500 on one of them."""
    before = snapshot()
    tried = 0
    for method, template, schema in json_body_operations(openapi):
        for name in _string_properties(openapi, schema):
            response = bearer.request(method, fill_path(template), json={name: "a\x00b"})
            assert f"/{name}" in pointers(assert_problem(response, 422)), (method, template, name)
            tried += 1
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                if param["schema"].get("type") != "string":
                    continue
                tried += 1
                if param["in"] == "path":
                    url = path.replace("{" + param["name"] + "}", "a%00b")
                    assert_problem(bearer.request(method.upper(), fill_path(url)), 404)
                else:
                    url = f"{fill_path(path)}?{param['name']}=a%00b"
                    body = assert_problem(bearer.request(method.upper(), url), 422)
                    assert pointers(body) == {f"/{param['name']}"}, (method, url)
    assert tried > 20
    assert snapshot() == before


# --- refused requests without a body --------------------------------------------------------


def test_unknown_path_is_a_404_problem(bearer: ApiClient, api: ApiClient) -> None:
    for client in (bearer, api):
        body = assert_problem(client.get("/api/v1/no-such-thing"), 404)
        assert body["type"].endswith("/not-found")
    assert_problem(api.post("/api/v1/people/1/no-such-action", json={}), 404)


def test_wrong_method_is_a_405_problem_with_allow(bearer: ApiClient) -> None:
    response = bearer.delete(PEOPLE)
    body = assert_problem(response, 405)
    assert body["type"].endswith("/method-not-allowed")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "GET" in allowed and "DELETE" not in allowed

    response = bearer.put("/api/v1/me/tokens", json={})
    assert_problem(response, 405)
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "%%%",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        encode_cursor("only one value"),
        encode_cursor("a", 1, 2),
        encode_cursor(1, "a"),  # the values swapped
        encode_cursor("a", True),  # a bool is not an id
        encode_cursor("a", 1.5),
        encode_cursor(None, 1),
        encode_cursor("a", -1),
        encode_cursor("a", MAX_ID + 1),  # beyond what the database can compare with
        encode_cursor("a", 10**30),
        encode_cursor("a\x00b", 1),  # NUL, which PostgreSQL refuses
        base64.urlsafe_b64encode(json.dumps({"name": "a", "id": 1}).encode()).decode(),
    ],
)
def test_bad_cursor_is_a_400_problem(bearer: ApiClient, cursor: str) -> None:
    response = bearer.get(PEOPLE, query_string={"cursor": cursor})
    body = assert_problem(response, 400)
    assert body["type"].endswith("/invalid-cursor")


def test_over_long_cursor_is_a_422_problem(bearer: ApiClient) -> None:
    body = assert_problem(bearer.get(PEOPLE, query_string={"cursor": "A" * 513}), 422)
    assert pointers(body) == {"/cursor"}


def test_query_parameter_given_twice_is_a_422_problem(bearer: ApiClient) -> None:
    body = assert_problem(bearer.get(f"{PEOPLE}?limit=5&limit=6"), 422)
    assert body["errors"] == [
        {"pointer": "/limit", "location": "query", "message": "given more than once"}
    ]


def test_unknown_and_invalid_query_parameters_are_422_problems(bearer: ApiClient) -> None:
    body = assert_problem(bearer.get(f"{PEOPLE}?limit=0&colour=blue"), 422)
    assert pointers(body) == {"/limit", "/colour"}
    assert {e["location"] for e in body["errors"]} == {"query"}


# --- unexpected errors ----------------------------------------------------------------------


SECRET_DETAIL = "connection to db-internal.example:5432 failed for user esn_owner"


@pytest.fixture
def failing_routes(app: Flask) -> None:
    """Routes that fail the way real code can (registered before the app serves a request)."""

    def boom() -> Any:
        fresh()
        db.session.add(Department(code="HALF", name="Half-written"))
        db.session.flush()  # the row is in the transaction when the failure comes
        raise RuntimeError(SECRET_DETAIL)

    def failed_commit() -> Any:
        # The signed-in person is changed, then the commit fails (not a constraint: a value
        # the column type refuses). The response must still be a clean problem, and the
        # after-request hooks, which read the person, must still work.
        user = require_user()
        user.title = "Half-written"
        db.session.add(Department(code="NAIVE", name="x", created_at=datetime.now()))
        db.session.commit()
        return {}

    app.add_url_rule("/api/v1/test-boom", view_func=boom, methods=["POST"])
    app.add_url_rule("/api/v1/test-failed-commit", view_func=failed_commit, methods=["POST"])


def test_unexpected_error_is_a_500_problem_without_internals(
    failing_routes: None, bearer: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    before = snapshot()
    for path in ("/api/v1/test-boom", "/api/v1/test-failed-commit"):
        response = bearer.post(path, headers={"X-Request-ID": "trace-500"})
        body = assert_problem(response, 500)
        assert body == {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "Something went wrong on our side.",
            "request_id": "trace-500",
        }
        raw = response.get_data(as_text=True)
        for leak in (SECRET_DETAIL, "RuntimeError", "Traceback", "naive", "INSERT", "departments"):
            assert leak not in raw
        assert response.headers["X-Request-ID"] == "trace-500"
    assert snapshot() == before, "a failed request left rows behind"
    # The details are in the log, for whoever runs the service.
    logged = [r for r in caplog.records if r.name == "esn.api" and r.levelname == "ERROR"]
    assert len(logged) == 2
    assert logged[0].exc_info is not None and SECRET_DETAIL in str(logged[0].exc_info[1])


# --- the OpenAPI document -------------------------------------------------------------------


def _validate_openapi(doc: dict[str, Any]) -> None:
    try:
        from openapi_spec_validator import validate
    except ImportError:
        validate = None
    if validate is not None:
        validate(doc)
        return
    # Not a dependency of the project; use it from another Python on the machine if one has it.
    for python in ("python3", "python"):
        exe = shutil.which(python)
        if exe is None or exe == sys.executable:
            continue
        probe = subprocess.run([exe, "-c", "import openapi_spec_validator"], capture_output=True)
        if probe.returncode != 0:
            continue
        result = subprocess.run(
            [
                exe,
                "-c",
                "import json, sys; from openapi_spec_validator import validate; "
                "validate(json.load(sys.stdin))",
            ],
            input=json.dumps(doc),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return
    pytest.skip("openapi-spec-validator is not installed (pip install openapi-spec-validator)")


def test_openapi_document_is_valid_openapi_3_1(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"] == "3.1.0"
    _validate_openapi(openapi)


def test_every_operation_has_an_id_a_summary_and_responses(openapi: dict[str, Any]) -> None:
    seen: set[str] = set()
    for path, item in openapi["paths"].items():
        assert path.startswith("/api/v1/"), path
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op.get("operationId"), where
            assert op["operationId"] not in seen, f"{where}: operationId is not unique"
            seen.add(op["operationId"])
            assert op.get("summary"), where
            assert op.get("responses"), where
            assert any(code.startswith("2") for code in op["responses"]), where
            for code, response in op["responses"].items():
                assert response.get("description"), f"{where} {code}"
                if code[0] in "45":
                    assert list(response["content"]) == [PROBLEM_JSON], f"{where} {code}"
            if op.get("requestBody"):
                assert "413" in op["responses"] and "415" in op["responses"], where
            if op.get("security"):
                assert "401" in op["responses"], where


_BOUNDING_FORMATS = {"date", "date-time", "time", "uuid", "duration"}


def _unbounded_strings(
    doc: dict[str, Any], schema: Any, where: str, seen: set[str]
) -> Iterator[str]:
    """Every string schema reachable from ``schema`` without a maximum length."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return
        seen = seen | {schema["$ref"]}
        yield from _unbounded_strings(doc, resolve(doc, schema), f"{where}->{schema['$ref']}", seen)
        return
    kinds = schema.get("type")
    is_string = kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
    bounded = (
        "maxLength" in schema
        or "enum" in schema
        or "const" in schema
        or schema.get("format") in _BOUNDING_FORMATS
    )
    if is_string and not bounded:
        yield where
    for key in ("properties", "patternProperties", "$defs"):
        for name, sub in schema.get(key, {}).items():
            yield from _unbounded_strings(doc, sub, f"{where}/{name}", seen)
    for key in ("items", "additionalProperties", "not", "contains", "propertyNames"):
        if key in schema:
            yield from _unbounded_strings(doc, schema[key], f"{where}/{key}", seen)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key, [])):
            yield from _unbounded_strings(doc, sub, f"{where}/{key}/{i}", seen)


def test_every_string_a_client_sends_has_a_maximum_length(openapi: dict[str, Any]) -> None:
    unbounded: list[str] = []
    inputs = 0
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                inputs += 1
                unbounded += _unbounded_strings(
                    openapi, param["schema"], f"{where} {param['in']}:{param['name']}", set()
                )
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                inputs += 1
                unbounded += _unbounded_strings(
                    openapi, content["schema"], f"{where} {media}", set()
                )
    assert inputs > 10
    assert unbounded == []


def _unbounded_integers(doc: dict[str, Any], schema: Any, where: str) -> Iterator[str]:
    """Every integer schema reachable from ``schema`` without a maximum."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        yield from _unbounded_integers(doc, resolve(doc, schema), where)
        return
    kinds = schema.get("type")
    if (kinds == "integer" or (isinstance(kinds, list) and "integer" in kinds)) and not (
        "maximum" in schema or "exclusiveMaximum" in schema or "enum" in schema
    ):
        yield where
    for name, sub in schema.get("properties", {}).items():
        yield from _unbounded_integers(doc, sub, f"{where}/{name}")
    if "items" in schema:
        yield from _unbounded_integers(doc, schema["items"], f"{where}/items")
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            yield from _unbounded_integers(doc, sub, f"{where}/{key}/{i}")


def test_every_integer_a_client_sends_has_a_maximum(openapi: dict[str, Any]) -> None:
    """An id beyond what the database column holds must be refused up front (a 422, or a 404
    in a path), not fail in the database as a 500; MAX_ID is the bound of ids."""
    unbounded: list[str] = []
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                unbounded += _unbounded_integers(
                    openapi, param["schema"], f"{where} {param['in']}:{param['name']}"
                )
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                unbounded += _unbounded_integers(openapi, content["schema"], f"{where} {media}")
    assert unbounded == []


def test_request_bodies_refuse_unknown_fields_in_the_document_too(openapi: dict[str, Any]) -> None:
    for method, path, schema in json_body_operations(openapi):
        assert schema.get("additionalProperties") is False, f"{method} {path}"


def test_docs_page_lists_every_operation(doc_app: Flask, openapi: dict[str, Any]) -> None:
    response = doc_app.test_client().get("/api/v1/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    for path, item in openapi["paths"].items():
        assert f"<code>{path}</code>" in html, path
        for op in item.values():
            assert f'id="{op["operationId"]}"' in html, op["operationId"]
    for name in openapi["components"]["schemas"]:
        assert f'id="schema-{name}"' in html, name


# --- cursor paging --------------------------------------------------------------------------


def test_cursor_paging_returns_everyone_once_in_order(app: Flask, employee_api: ApiClient) -> None:
    # Names repeat, so the order (name, then id) needs its tie-breaker across page boundaries.
    for i in range(30):
        make_user(f"p{i:02d}@example.org", display_name=f"Person {i % 12:02d}", password=None)
    everyone = employee_api.get(PEOPLE, query_string={"limit": 100}).get_json()
    assert everyone["next_cursor"] is None
    full = [(p["display_name"], p["id"]) for p in everyone["items"]]
    assert len(full) == 31  # the 30 and the employee
    assert full == sorted(full)

    pages: list[list[tuple[str, int]]] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": 7}
        if cursor is not None:
            query["cursor"] = cursor
        response = employee_api.get(PEOPLE, query_string=query)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        pages.append([(p["display_name"], p["id"]) for p in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "paging does not end"
    assert [len(p) for p in pages] == [7, 7, 7, 7, 3]
    flat = [person for page in pages for person in page]
    assert flat == full
    assert len(set(flat)) == len(flat)


def test_cursor_paging_ends_exactly_on_a_full_page(employee_api: ApiClient, admin: User) -> None:
    for i in range(4):
        make_user(f"q{i}@example.org", password=None)
    first = employee_api.get(PEOPLE, query_string={"limit": 3}).get_json()
    second = employee_api.get(
        PEOPLE, query_string={"limit": 3, "cursor": first["next_cursor"]}
    ).get_json()
    assert len(first["items"]) == len(second["items"]) == 3
    assert second["next_cursor"] is None


# --- health probes --------------------------------------------------------------------------


def test_healthz_is_ok(api: ApiClient) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ok_on_a_migrated_database(api: ApiClient) -> None:
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "migrations": "current"}


def test_readyz_is_503_when_the_schema_is_not_at_the_code_head(api: ApiClient) -> None:
    with db.engine.begin() as conn:
        (real,) = conn.execute(text("SELECT version_num FROM alembic_version")).one()
        conn.execute(text("UPDATE alembic_version SET version_num = 'bogus0000'"))
    try:
        response = api.get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert body["migrations"] == "pending"
        assert body["current"] == ["bogus0000"] and body["expected"] == [real]
    finally:
        # The PostgreSQL schema is shared by the test session; leave it as found.
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": real})
    assert api.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Any) -> None:
    from esn import create_app

    broken = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path}/missing-dir/none.sqlite3",
            "INSTANCE_PATH": str(tmp_path / "broken-instance"),
            "SECRET_KEY": "x",
            "PASSWORD_HASH_COST": "low",
            "OUTBOX_DISPATCH": "off",
        }
    )
    response = ApiClient(broken).get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


# --- request ids ----------------------------------------------------------------------------


def test_safe_request_id_is_echoed_in_header_and_problem(bearer: ApiClient) -> None:
    rid = "client-4f2a.9_Z"
    ok = bearer.get("/api/v1/me", headers={"X-Request-ID": rid})
    assert ok.headers["X-Request-ID"] == rid
    problem = bearer.get(f"{PEOPLE}?limit=0", headers={"X-Request-ID": rid})
    assert problem.headers["X-Request-ID"] == rid
    assert assert_problem(problem, 422)["request_id"] == rid


@pytest.mark.parametrize(
    "unsafe",
    ["x" * 65, "has spaces in it", "semi;colon", "new\tline", "ünïcode", "<script>", ""],
)
def test_unsafe_request_id_is_replaced(api: ApiClient, unsafe: str) -> None:
    response = api.get("/api/v1/no-such-thing", headers={"X-Request-ID": unsafe})
    rid = response.headers["X-Request-ID"]
    assert rid != unsafe
    assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
    assert assert_problem(response, 404)["request_id"] == rid


def test_every_response_gets_a_fresh_request_id(api: ApiClient) -> None:
    ids = {api.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
