from __future__ import annotations

from sqlalchemy import func, select

from esn.accounts.models import User
from esn.extensions import db
from esn.usage.models import UsageEvent
from tests.conftest import PASSWORD, ApiClient, fresh, make_user


def test_sign_in_sets_session_and_rotates_it(app, employee):
    client = ApiClient(app)
    before = client.refresh_csrf()
    cookie_before = client.client.get_cookie("session", domain="localhost").value
    response = client.sign_in(employee.email)
    assert response.status_code == 200
    body = response.get_json()
    assert body["user"]["email"] == employee.email
    assert body["csrf_token"] != before
    assert client.client.get_cookie("session", domain="localhost").value != cookie_before
    assert client.get("/api/v1/me").get_json()["id"] == employee.id
    assert "password" not in response.get_data(as_text=True)


def test_session_cookie_flags(app, employee):
    client = ApiClient(app)
    client.refresh_csrf()
    response = client.request(
        "POST", "/api/v1/auth/sign-in", json={"email": employee.email, "password": PASSWORD}
    )
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "Secure" in set_cookie and "SameSite=Lax" in set_cookie


def test_wrong_password_is_401_without_saying_which(api, employee):
    api.refresh_csrf()
    wrong = api.post(
        "/api/v1/auth/sign-in", json={"email": employee.email, "password": "nope nope nope"}
    )
    unknown = api.post(
        "/api/v1/auth/sign-in", json={"email": "ghost@example.org", "password": "nope nope nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.mimetype == "application/problem+json"
    assert wrong.get_json()["detail"] == unknown.get_json()["detail"]


def test_sign_in_needs_csrf(api, employee):
    response = api.post(
        "/api/v1/auth/sign-in", csrf=False, json={"email": employee.email, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert response.get_json()["type"].endswith("/csrf")


def test_sign_in_is_rate_limited_per_account(app, employee):
    client = ApiClient(app)
    client.refresh_csrf()
    statuses = [
        client.post(
            "/api/v1/auth/sign-in", json={"email": employee.email, "password": "wrong wrong wrong"}
        ).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    # Even the right password is refused while the account is limited.
    blocked = client.post(
        "/api/v1/auth/sign-in", json={"email": employee.email, "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert blocked.mimetype == "application/problem+json"
    assert "Retry-After" in blocked.headers


def test_anonymous_gets_401_on_protected_endpoints(api):
    for method, path in [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/people"),
        ("POST", "/api/v1/me/tokens"),
        ("POST", "/api/v1/admin/users"),
        ("PATCH", "/api/v1/people/1"),
    ]:
        response = api.request(method, path, json={})
        assert response.status_code == 401, (method, path)
        assert response.mimetype == "application/problem+json"
        assert "WWW-Authenticate" in response.headers


def test_cookie_session_without_csrf_is_403_and_writes_nothing(employee_api, employee):
    fresh()
    events = db.session.scalar(select(func.count()).select_from(UsageEvent))
    response = employee_api.patch(
        f"/api/v1/people/{employee.id}", csrf=False, json={"title": "Hacked"}
    )
    assert response.status_code == 403
    assert response.get_json()["type"].endswith("/csrf")
    fresh()
    assert db.session.get(User, employee.id).title == ""
    assert db.session.scalar(select(func.count()).select_from(UsageEvent)) == events


def test_bearer_token_works_without_csrf_and_revocation_stops_it(app, employee_api, employee):
    created = employee_api.post("/api/v1/me/tokens", json={"name": "laptop"})
    assert created.status_code == 201
    token = created.get_json()["token"]
    assert token.startswith("esn_")
    listed = employee_api.get("/api/v1/me/tokens").get_json()["items"]
    assert "token" not in listed[0] and listed[0]["prefix"] == token[:10]

    bearer = ApiClient(app, token=token)
    response = bearer.patch(f"/api/v1/people/{employee.id}", json={"title": "Engineer"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["title"] == "Engineer"

    assert employee_api.delete(f"/api/v1/me/tokens/{created.get_json()['id']}").status_code == 204
    refused = bearer.get("/api/v1/me")
    assert refused.status_code == 401
    assert "revoked" in refused.get_json()["detail"]


def test_bearer_header_overrides_cookie(app, employee_api):
    # A request with a bogus bearer is not rescued by a valid session cookie.
    response = employee_api.get("/api/v1/me", headers={"Authorization": "Bearer esn_bogus"})
    assert response.status_code == 401


def test_token_secret_is_stored_hashed(app, employee_api):
    from esn.accounts.models import ApiToken

    token = employee_api.post("/api/v1/me/tokens", json={"name": "ci"}).get_json()["token"]
    stored = db.session.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_deactivated_user_can_do_nothing(app, admin_api, employee):
    employee_client = ApiClient(app)
    employee_client.sign_in(employee.email)
    token = employee_client.post("/api/v1/me/tokens", json={"name": "t"}).get_json()["token"]
    bearer = ApiClient(app, token=token)

    assert admin_api.post(f"/api/v1/admin/users/{employee.id}/deactivate").status_code == 200

    assert employee_client.get("/api/v1/me").status_code == 401
    assert employee_client.get("/api/v1/people").status_code == 401
    assert bearer.get("/api/v1/me").status_code == 401
    again = ApiClient(app)
    assert again.sign_in(employee.email).status_code == 401
    # Reactivation does not revive the old token.
    assert admin_api.post(f"/api/v1/admin/users/{employee.id}/reactivate").status_code == 200
    assert bearer.get("/api/v1/me").status_code == 401


def test_password_change_signs_out_other_sessions(app, employee):
    first, second = ApiClient(app), ApiClient(app)
    first.sign_in(employee.email)
    second.sign_in(employee.email)
    new = "a much better passphrase"
    response = first.put(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": new}
    )
    assert response.status_code == 204
    assert first.get("/api/v1/me").status_code == 200
    assert second.get("/api/v1/me").status_code == 401
    assert ApiClient(app).sign_in(employee.email, new).status_code == 200


def test_weak_password_is_refused(employee_api):
    response = employee_api.put(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/new_password"


def test_sign_out(employee_api):
    assert employee_api.post("/api/v1/auth/sign-out").status_code == 204
    assert employee_api.get("/api/v1/me").status_code == 401


def test_passwords_and_tokens_never_reach_the_log(app, employee, caplog):
    caplog.set_level("DEBUG")
    client = ApiClient(app)
    client.sign_in(employee.email)
    client.sign_in(employee.email, "wrong but secret-ish 123")
    token = client.post("/api/v1/me/tokens", json={"name": "x"}).get_json()["token"]
    ApiClient(app, token=token).get("/api/v1/me")
    text = caplog.text
    assert PASSWORD not in text and "secret-ish" not in text and token not in text
    assert "request" in text  # the access log did run


def test_external_users_cannot_browse_the_directory(app):
    make_user("partner@example.com", roles=[], is_external=True)
    client = ApiClient(app)
    client.sign_in("partner@example.com")
    assert client.get("/api/v1/people").status_code == 403
    assert client.get("/api/v1/me").status_code == 200
