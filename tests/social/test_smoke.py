"""A walk through the social core as two colleagues would use it."""

from __future__ import annotations

from tests.conftest import ApiClient, make_user


def test_post_comment_react_follow_feed(app):
    anna = make_user("anna@example.org", display_name="Anna de Vries")
    bob = make_user("bob@example.org", display_name="Bob Jansen")
    a, b = ApiClient(app), ApiClient(app)
    a.sign_in(anna.email)
    b.sign_in(bob.email)

    created = a.post(
        "/api/v1/posts", json={"body": "Hello @bob, see #Launch and **this**", "is_question": True}
    )
    assert created.status_code == 201, created.get_json()
    post = created.get_json()
    assert post["hashtags"] == ["Launch"]
    assert 'class="mention"' in post["body_html"] and "<strong>this</strong>" in post["body_html"]

    assert b.put(f"/api/v1/people/{anna.id}/follow").status_code == 204
    feed = b.get("/api/v1/feed").get_json()
    assert [p["id"] for p in feed["items"]] == [post["id"]]

    comment = b.post(f"/api/v1/posts/{post['id']}/comments", json={"body": "Answer!"})
    assert comment.status_code == 201, comment.get_json()
    reply = a.post(
        f"/api/v1/posts/{post['id']}/comments",
        json={"body": "Thanks", "parent_id": comment.get_json()["id"]},
    )
    assert reply.status_code == 201
    assert (
        b.put(f"/api/v1/posts/{post['id']}/reaction", json={"kind": "celebrate"}).status_code == 204
    )
    accepted = a.put(
        f"/api/v1/posts/{post['id']}/answer", json={"comment_id": comment.get_json()["id"]}
    )
    assert (
        accepted.status_code == 200
        and accepted.get_json()["accepted_comment_id"] == comment.get_json()["id"]
    )

    again = b.get(f"/api/v1/posts/{post['id']}").get_json()
    assert (
        again["comment_count"] == 2
        and again["reaction_count"] == 1
        and again["my_reaction"] == "celebrate"
    )
    comments = b.get(f"/api/v1/posts/{post['id']}/comments").get_json()["items"]
    assert [c["parent_id"] for c in comments] == [None, comment.get_json()["id"]]
    assert b.get("/api/v1/hashtags/launch/feed").get_json()["items"][0]["id"] == post["id"]
    assert b.get("/api/v1/hashtags/trending").get_json()["items"][0]["name"] == "launch"


def test_secret_group_is_invisible_to_outsiders(app):
    owner = make_user("owner@example.org")
    outsider = make_user("out@example.org")
    o, x = ApiClient(app), ApiClient(app)
    o.sign_in(owner.email)
    x.sign_in(outsider.email)
    group = o.post(
        "/api/v1/groups", json={"name": "M&A", "visibility": "secret", "join_policy": "invite"}
    ).get_json()
    post = o.post(
        "/api/v1/posts", json={"body": "Target: #acme", "group_id": group["id"]}
    ).get_json()
    assert x.get(f"/api/v1/groups/{group['id']}").status_code == 404
    assert x.get(f"/api/v1/posts/{post['id']}").status_code == 404
    assert x.get(f"/api/v1/groups/{group['id']}/feed").status_code == 404
    assert group["id"] not in [g["id"] for g in x.get("/api/v1/groups").get_json()["items"]]
    assert x.get("/api/v1/hashtags/trending").get_json()["items"] == []
    # An invitation lets the invitee see the group (not its content) and join.
    assert (
        o.post(
            f"/api/v1/groups/{group['id']}/invitations", json={"user_id": outsider.id}
        ).status_code
        == 201
    )
    seen = x.get(f"/api/v1/groups/{group['id']}").get_json()
    assert seen["invited"] is True and seen["member_count"] is None
    assert x.get(f"/api/v1/posts/{post['id']}").status_code == 404
    assert x.post(f"/api/v1/groups/{group['id']}/invitation/accept").status_code == 200
    assert x.get(f"/api/v1/posts/{post['id']}").status_code == 200
    # Removal takes effect on the very next request.
    assert o.delete(f"/api/v1/groups/{group['id']}/members/{outsider.id}").status_code == 204
    assert x.get(f"/api/v1/posts/{post['id']}").status_code == 404


def test_profile_group_list_hides_secret_groups(app):
    member = make_user("m@example.org")
    viewer = make_user("v@example.org")
    m, v = ApiClient(app), ApiClient(app)
    m.sign_in(member.email)
    v.sign_in(viewer.email)
    public = m.post("/api/v1/groups", json={"name": "Open", "visibility": "public"}).get_json()
    secret = m.post(
        "/api/v1/groups", json={"name": "Hidden", "visibility": "secret", "join_policy": "invite"}
    ).get_json()
    seen_by_viewer = [
        g["id"] for g in v.get(f"/api/v1/people/{member.id}/groups").get_json()["items"]
    ]
    assert seen_by_viewer == [public["id"]]
    seen_by_member = {
        g["id"] for g in m.get(f"/api/v1/people/{member.id}/groups").get_json()["items"]
    }
    assert seen_by_member == {public["id"], secret["id"]}
