"""Generated requests against every operation of the OpenAPI document, in-process.

Schemathesis reads ``/api/v1/openapi.json`` and, for each operation, sends schema-conforming
requests and schema-violating ones (missing and unknown fields, wrong types, strings over
their maxLength, numbers out of range, bad content types, unexpected methods), both in its
deterministic coverage phase and in random fuzzing. Every request is authenticated as an
administrator with a bearer token, so validation, access checks and actions run past the 401.

For every response:

* never a 5xx;
* every 4xx is ``application/problem+json`` with ``type``, ``title`` and ``status`` (and a 405
  names the allowed methods);
* the status code, the content type and the body are the ones the document declares;
* a request the server rejected (status >= 400) wrote nothing: every table holds exactly the
  rows it held before.

Both databases run this (PostgreSQL refuses values SQLite stores, such as NUL in text); each
operation is one test so that a failure names the operation, and all share one database per
backend (state carries over, as in a real service). The run is bounded: MAX_EXAMPLES random
cases per operation plus the coverage phase's deterministic ones, about half a second per
operation and database.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select, text

from esn import create_app
from esn.accounts.actions import do_create_token
from esn.accounts.models import User
from esn.clock import reset_clock
from esn.directory.actions import do_create_department
from esn.extensions import Base, db
from tests.api.helpers import WriteWatch, check_problem, document_app
from tests.conftest import BACKENDS, fresh, make_user
from tests.conftest import _base_config as base_config

# Random examples per operation (positive and negative together); the coverage phase adds its
# own deterministic cases. Raise it for a deeper run: ESN_TEST_FUZZ_EXAMPLES=200.
MAX_EXAMPLES = int(os.environ.get("ESN_TEST_FUZZ_EXAMPLES", "10"))


def _load_schema() -> Any:
    """The document depends on the code only, so it is read once from a throwaway app; the
    requests go to each test's own app (``case.call(app=...)``)."""
    with tempfile.TemporaryDirectory() as instance:
        doc_app = document_app(instance)
        config = schemathesis.Config.from_dict(
            {
                # The token is sent by the test itself; generated Authorization headers would
                # only test the 401, which tests/accounts covers.
                "generation": {"with-security-parameters": False},
                # A body over a string's maxLength can also be over the request size limit once
                # JSON-escaped (a 100,000-character text of astral characters is 1.2 MB): then
                # 413 is the right refusal, as declared in the document.
                "checks": {
                    "negative_data_rejection": {
                        "expected-statuses": [
                            "400",
                            "401",
                            "403",
                            "404",
                            "405",
                            "406",
                            "409",
                            "413",
                            "415",
                            "422",
                            "428",
                            "429",
                            "5xx",
                        ]
                    }
                },
                "phases": {
                    "coverage": {
                        "generate-duplicate-query-parameters": True,
                        # Routing answers every unexpected method alike (405 with Allow); one
                        # per path shows it, eight per path only cost time.
                        "unexpected-methods": ["delete"],
                    }
                },
            }
        )
        return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", doc_app, config=config)


schema = _load_schema()


# Sign-in limits would turn most generated sign-ins into 429 before validation runs.
APP_CONFIG = {
    "SIGNIN_LIMIT_PER_IP": "100000 per minute",
    "SIGNIN_LIMIT_PER_ACCOUNT": "100000 per minute",
}


@pytest.fixture(scope="module", params=BACKENDS)
def shared_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """One app and database per backend for all operations of this module, not one per
    operation: setting up a database per operation would cost more than the requests. State
    carries over from operation to operation, as it does in a real service."""
    tmp = tmp_path_factory.mktemp("generated-input")
    if request.param == "sqlite":
        target = tmp / "esn.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite:///{target}"
    else:
        url = request.getfixturevalue("postgresql_url")
    app = create_app({**base_config(tmp, url), **APP_CONFIG})
    ctx = app.app_context()
    ctx.push()
    try:
        yield app
    finally:  # as the ``app`` fixture of tests/conftest.py does
        db.session.remove()
        app.extensions["esn.outbox"].stop()
        if db.engine.dialect.name == "postgresql":
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()
        ctx.pop()
        reset_clock()


@dataclass
class World:
    """What the generated requests run against: an administrator (whose token they carry),
    an employee in a department with skills, a sub-department, and whatever earlier
    operations created."""

    app: Flask
    admin_id: int
    watch: WriteWatch
    token_id: int = 0
    secret: str = ""
    # What the watch last saw, while known to be current.
    seen: object = None

    def renew_token(self) -> None:
        fresh()
        admin = db.session.get(User, self.admin_id)
        assert admin is not None and admin.is_active
        token, self.secret = do_create_token(admin, "generated input", None)
        db.session.commit()
        self.token_id = token.id
        self.seen = None


@pytest.fixture(scope="module")
def world(shared_app: Flask) -> Iterator[World]:
    admin = make_user("admin@example.org", roles=["admin", "employee"], display_name="Ada Admin")
    parent = do_create_department(None, "ENG", "Engineering", None)
    child = do_create_department(None, "ENG.WEB", "Web", parent.id)
    db.session.commit()
    make_user("erin@example.org", department_id=child.id, skills=["Python", "SQL"], title="Eng")
    world = World(app=shared_app, admin_id=admin.id, watch=WriteWatch())
    world.renew_token()
    # One authenticated request first: the day's first request records a visit, a legitimate
    # write that would otherwise be blamed on the first rejected generated request.
    headers = {"Authorization": f"Bearer {world.secret}"}
    assert _send(shared_app.test_client().get, "/api/v1/me", headers=headers).status_code == 200
    yield world
    world.watch.close()


def _existing_ids(parameter: str, world: World) -> list[int]:
    """A few ids of existing rows for a path parameter named like ``group_id`` (table
    ``groups`` or ``*_groups``); the token is always the one the requests carry."""
    if parameter == "token_id":
        return [world.token_id]
    plural = parameter.removesuffix("_id") + "s"
    for name, table in Base.metadata.tables.items():
        if name == plural or name.endswith("_" + plural):
            fresh()
            return list(db.session.scalars(select(table.c.id).order_by(table.c.id).limit(3)))
    return []


def _aim_at_existing(case: Any, world: World) -> None:
    """Random ids almost never exist, so schema-conforming requests would mostly stop at the
    404. Point most of them at existing records; the rest keep their id (the 404 path)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return  # a negative case's path parameters may be the invalid part; leave them be
    for name, value in (case.path_parameters or {}).items():
        # The coverage phase gives path parameters as text ("0"), fuzzing as numbers.
        if isinstance(value, bool) or not str(value).isdigit():
            continue
        choices = _existing_ids(name, world)
        pick = int(value) % (len(choices) + 1)
        if pick < len(choices):
            case.path_parameters[name] = choices[pick]


def _send(call: Any, *args: Any, **kwargs: Any) -> Any:
    # As a server would: the request gets its own contexts, not the test's app context.
    return contextvars.Context().run(call, *args, **kwargs)


def _checks(case: Any) -> list[Any]:
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    # For a raw text body (the CSV import) any "wrong type" schemathesis generates is still a
    # string once sent; the import judges the content and reports bad rows itself.
    if "application/json" in (case.media_type or "application/json"):
        checks.append(negative_data_rejection)
    return checks


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_generated_requests(case: Any, world: World) -> None:
    _aim_at_existing(case, world)
    headers = {"Authorization": f"Bearer {world.secret}"}
    before = world.seen if world.seen is not None else world.watch.look()

    response = _send(case.call, app=world.app, headers=headers)

    status = response.status_code
    reproduce = case.as_curl_command(headers=headers)
    assert status < 500, f"{status} for {reproduce}\n{response.text[:2000]}"
    if case.operation.path != "/api/v1/auth/sign-in":  # there 401 means wrong password
        assert status != 401, f"the token no longer works; not testing past auth: {reproduce}"
    if status >= 400:
        body = response.json() if response.content else None
        check_problem(status, response.headers.get("content-type", [None])[0], body)
        if status == 405:
            assert response.headers.get("allow"), reproduce
        after = world.watch.look()
        assert after == before, f"rejected with {status} but wrote: {reproduce}"
        world.seen = after
    elif case.method == "DELETE" and case.path_parameters.get("token_id") == world.token_id:
        world.renew_token()  # it revoked the token the requests carry
    else:
        world.seen = None  # it may have written
    case.validate_response(response, checks=_checks(case), headers=headers)
