"""Photos through the API: what is stored (no EXIF, GPS, XMP or comments in any size, the
orientation applied), what is refused (bombs, truncated files, polyglots, SVG, HTML, wrong
names) with nothing stored and no temporary file left, who sees what (private and secret group
photos are 404 to non-members through every URL and size, album listings and feeds), the
serving headers, quotas and rate limits, licences, avatars and banners, and the usage events of
comments and reactions on photos."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import func, select

from esn.accounts.models import User
from esn.extensions import db
from esn.groups.actions import do_join
from esn.groups.models import Group
from esn.photos.models import Photo, PhotoFile
from esn.photos.storage import store
from esn.usage import kinds
from esn.usage.models import UsageEvent
from tests.api.helpers import assert_problem
from tests.conftest import ApiClient, fresh, make_user
from tests.photos import images

VARIANTS = ("original", "large", "medium", "thumb")


@dataclass
class Person:
    user: User
    api: ApiClient


def person(app: Flask, email: str, **fields: Any) -> Person:
    user = make_user(email, **fields)
    client = ApiClient(app)
    assert client.sign_in(email).status_code == 200
    return Person(user, client)


@pytest.fixture
def ada(app: Flask) -> Person:
    return person(app, "ada@example.org", display_name="Ada Lovelace")


@pytest.fixture
def bob(app: Flask) -> Person:
    return person(app, "bob@example.org", display_name="Bob Builder")


def upload(
    who: Person, data: bytes, name: str = "photo.jpg", kind: str = "image/jpeg", **fields: Any
) -> Any:
    form = {"file": (io.BytesIO(data), name, kind), **{k: str(v) for k, v in fields.items()}}
    return who.api.post("/api/v1/photos", data=form, content_type="multipart/form-data")


def uploaded(who: Person, data: bytes | None = None, **fields: Any) -> dict[str, Any]:
    response = upload(who, data or images.plain_jpeg(), **fields)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def group(owner: Person, name: str, visibility: str, members: list[Person] = ()) -> int:  # type: ignore[assignment]
    response = owner.api.post(
        "/api/v1/groups", json={"name": name, "visibility": visibility, "process": "marketing"}
    )
    assert response.status_code == 201, response.get_json()
    gid = int(response.get_json()["id"])
    fresh()
    found = db.session.get(Group, gid)
    assert found is not None
    for member in members:
        do_join(db.session.get(User, member.user.id), found)  # type: ignore[arg-type]
    db.session.commit()
    return gid


def album(who: Person, title: str = "Summer party", **fields: Any) -> int:
    response = who.api.post("/api/v1/albums", json={"title": title, **fields})
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def stored_files() -> list[str]:
    """Every file in the photo store (none may be half-written or left from a refusal)."""
    root = Path(store().root)  # type: ignore[attr-defined]
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def assert_clean(data: bytes) -> Image.Image:
    """No EXIF, GPS, XMP or comment in a stored file, read back with Pillow and byte by byte."""
    for leak in images.LEAKS:
        assert leak not in data, leak
    image = Image.open(io.BytesIO(data))
    assert dict(image.getexif()) == {}
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment", "Comment"} & set(image.info)
    image.load()
    return image


# --- what is stored -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maker", "name", "kind"),
    [
        (images.jpeg, "camera.jpg", "image/jpeg"),
        (images.png, "scan.png", "image/png"),
        (images.webp, "phone.webp", "image/webp"),
        (images.gif, "anim.gif", "image/gif"),
    ],
)
def test_metadata_is_removed_from_the_original_and_every_size(
    ada: Person, maker: Any, name: str, kind: str
) -> None:
    data = maker()
    assert any(marker in data for marker in images.CARRIED)  # the upload does carry metadata
    photo = uploaded(ada, data, name=name, kind=kind)
    assert set(photo["sizes"]) == set(VARIANTS)
    assert photo["media_type"] == kind
    for variant in VARIANTS:
        response = ada.api.get(f"/api/v1/photos/{photo['id']}/{variant}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == kind
        image = assert_clean(response.data)
        size = photo["sizes"][variant]
        assert image.size == (size["width"], size["height"])
        assert len(response.data) == size["bytes"]
    # And the files as stored, read from the store itself.
    fresh()
    keys = db.session.scalars(select(PhotoFile.key).where(PhotoFile.photo_id == photo["id"]))
    for key in keys:
        assert_clean(store().get(key))


def test_a_jpeg_with_gps_keeps_its_colour_profile_and_is_turned_upright(ada: Person) -> None:
    # Orientation 6: the camera was turned; the pixels are stored landscape, shown portrait.
    photo = uploaded(ada, images.jpeg((1600, 1200), orientation=6, icc=True))
    assert (photo["width"], photo["height"]) == (1200, 1600)
    original = ada.api.get(photo["sizes"]["original"]["url"]).data
    image = assert_clean(original)
    assert image.size == (1200, 1600)
    assert image.info.get("icc_profile") == images.srgb_profile()
    thumb = assert_clean(ada.api.get(photo["sizes"]["thumb"]["url"]).data)
    assert thumb.size == (300, 400)


def test_derivatives_are_smaller_sizes_of_the_same_picture(ada: Person) -> None:
    photo = uploaded(ada, images.jpeg((3200, 2400)))
    sizes = photo["sizes"]
    assert (sizes["original"]["width"], sizes["original"]["height"]) == (3200, 2400)
    assert (sizes["large"]["width"], sizes["large"]["height"]) == (2560, 1920)
    assert (sizes["medium"]["width"], sizes["medium"]["height"]) == (1280, 960)
    assert (sizes["thumb"]["width"], sizes["thumb"]["height"]) == (400, 300)
    assert sizes["thumb"]["bytes"] < sizes["medium"]["bytes"] < sizes["large"]["bytes"]


def test_an_animated_gif_stays_animated(ada: Person) -> None:
    photo = uploaded(ada, images.gif(frames=4), name="wave.gif", kind="image/gif")
    assert photo["frames"] == 4
    image = Image.open(io.BytesIO(ada.api.get(photo["sizes"]["original"]["url"]).data))
    assert image.n_frames == 4
    assert "comment" not in image.info


def test_files_are_stored_under_random_keys_not_the_name_given(ada: Person) -> None:
    uploaded(ada, images.plain_jpeg(), name="../../etc/passwd.jpg")
    files = stored_files()
    assert len(files) == 4
    assert not any("passwd" in f or f.endswith(".jpg") for f in files)


# --- what is refused ----------------------------------------------------------------------------


@pytest.fixture
def temp_dir(tmp_path: Path) -> Iterator[Path]:
    """The process's temporary directory, pointed at an empty one for the test."""
    where = tmp_path / "system-tmp"
    where.mkdir()
    before = tempfile.tempdir
    tempfile.tempdir = str(where)
    try:
        yield where
    finally:
        tempfile.tempdir = before


HOSTILE = {
    # name: (bytes, file name, declared type, status, problem type)
    "png bomb (400 megapixels in 49 kB)": (
        images.png_bomb,
        "bomb.png",
        "image/png",
        422,
        "image-too-large",
    ),
    "jpeg declaring 60000 x 60000": (
        lambda: images.jpeg_declaring(60000, 60000),
        "big.jpg",
        "image/jpeg",
        422,
        "image-too-large",
    ),
    "gif declaring 60000 x 60000": (
        lambda: images.gif_declaring(60000, 60000),
        "big.gif",
        "image/gif",
        422,
        "image-too-large",
    ),
    "truncated jpeg": (
        lambda: images.plain_jpeg()[:-2000],
        "cut.jpg",
        "image/jpeg",
        422,
        "image-corrupt",
    ),
    "truncated png": (lambda: images.png()[:-100], "cut.png", "image/png", 422, "image-corrupt"),
    "truncated gif": (lambda: images.gif()[:-50], "cut.gif", "image/gif", 422, "image-corrupt"),
    "truncated webp": (lambda: images.webp()[:-50], "cut.webp", "image/webp", 422, "image-corrupt"),
    "jpeg with html appended": (
        lambda: images.plain_jpeg() + images.HTML,
        "x.jpg",
        "image/jpeg",
        422,
        "image-trailing-data",
    ),
    "png with html appended": (
        lambda: images.png() + images.HTML,
        "x.png",
        "image/png",
        422,
        "image-trailing-data",
    ),
    "gif with html appended": (
        lambda: images.gif() + images.HTML,
        "x.gif",
        "image/gif",
        422,
        "image-trailing-data",
    ),
    "webp with html appended": (
        lambda: images.webp() + images.HTML,
        "x.webp",
        "image/webp",
        422,
        "image-trailing-data",
    ),
    "svg": (lambda: images.SVG, "logo.svg", "image/svg+xml", 415, "unsupported-image-type"),
    "svg named .jpg": (lambda: images.SVG, "logo.jpg", "image/jpeg", 415, "unsupported-image-type"),
    "html named .jpg": (
        lambda: images.HTML,
        "cat.jpg",
        "image/jpeg",
        415,
        "unsupported-image-type",
    ),
    "png named .jpg": (lambda: images.png(), "photo.jpg", "image/jpeg", 422, "image-type-mismatch"),
    "jpeg named .exe": (
        lambda: images.plain_jpeg(),
        "setup.exe",
        "application/octet-stream",
        422,
        "image-type-mismatch",
    ),
    "jpeg declared as text/html": (
        lambda: images.plain_jpeg(),
        "photo.jpg",
        "text/html",
        422,
        "image-type-mismatch",
    ),
    "empty file": (lambda: b"", "empty.jpg", "image/jpeg", 422, "image-empty"),
    "random bytes": (
        lambda: bytes(range(256)) * 40,
        "noise.jpg",
        "image/jpeg",
        415,
        "unsupported-image-type",
    ),
    "jpeg signature, then garbage": (
        lambda: b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x13" * 4000,
        "x.jpg",
        "image/jpeg",
        422,
        "image-corrupt",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_uploads_are_refused_and_leave_nothing(
    ada: Person, temp_dir: Path, case: str
) -> None:
    maker, name, declared, status, kind = HOSTILE[case]
    data = maker()
    for album_id in (None, album(ada)):
        fields = {"album_id": album_id} if album_id else {}
        body = assert_problem(upload(ada, data, name=name, kind=declared, **fields), status)
        assert body["type"].endswith("/" + kind), body
        assert body["detail"]
    fresh()
    assert db.session.scalar(select(func.count()).select_from(Photo)) == 0
    assert db.session.scalar(select(func.count()).select_from(PhotoFile)) == 0
    assert stored_files() == []
    assert list(temp_dir.iterdir()) == []
    # The album got no post either.
    assert ada.api.get("/api/v1/feed").get_json()["items"] == []


class TestBodyLimit:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"MAX_PHOTO_BYTES": 2_000_000}

    def test_over_the_photo_limit_is_413_and_the_general_limit_does_not_apply(
        self, ada: Person, temp_dir: Path
    ) -> None:
        big = images.noisy_jpeg((1300, 1000))
        assert 1_048_576 < len(big) < 2_000_000  # above MAX_REQUEST_BYTES, within the photo one
        assert upload(ada, big).status_code == 201
        assert_problem(upload(ada, images.noisy_jpeg((1800, 1300))), 413)
        fresh()
        assert db.session.scalar(select(func.count()).select_from(Photo)) == 1
        assert list(temp_dir.iterdir()) == []


def test_the_form_is_checked(ada: Person) -> None:
    # Not multipart.
    assert_problem(
        ada.api.post("/api/v1/photos", data=images.plain_jpeg(), content_type="image/jpeg"), 415
    )
    # No file, two files, an unknown field, a licensed photo without attribution, a bad URL.
    assert_problem(
        ada.api.post("/api/v1/photos", data={"caption": "x"}, content_type="multipart/form-data"),
        422,
    )
    two = {
        "file": [
            (io.BytesIO(images.plain_jpeg()), "a.jpg"),
            (io.BytesIO(images.plain_jpeg()), "b.jpg"),
        ]
    }
    assert_problem(
        ada.api.post("/api/v1/photos", data=two, content_type="multipart/form-data"), 422
    )
    assert_problem(upload(ada, images.plain_jpeg(), colour="red"), 422)
    body = assert_problem(upload(ada, images.plain_jpeg(), licence="licensed"), 422)
    assert body["errors"][0]["pointer"] == "/attribution"
    assert_problem(upload(ada, images.plain_jpeg(), licence_url="javascript:alert(1)"), 422)
    assert_problem(upload(ada, images.plain_jpeg(), album_id="abc"), 422)
    assert_problem(upload(ada, images.plain_jpeg(), album_id=999), 404)
    fresh()
    assert db.session.scalar(select(func.count()).select_from(Photo)) == 0


# --- who sees what ------------------------------------------------------------------------------


def _urls(photo: dict[str, Any]) -> list[str]:
    return [f"/api/v1/photos/{photo['id']}", *(s["url"] for s in photo["sizes"].values())]


@pytest.mark.parametrize("visibility", ["private", "secret"])
def test_closed_group_photos_are_404_to_non_members_everywhere(
    app: Flask, ada: Person, bob: Person, visibility: str
) -> None:
    member = person(app, "carol@example.org")
    external = person(app, "ext@partner.example", is_external=True)
    gid = group(ada, f"{visibility} team", visibility, [member])
    album_id = album(ada, "Offsite", group_id=gid)
    photo = uploaded(ada, images.jpeg(), album_id=album_id, caption="Whiteboard #roadmap")
    post_id = photo["post_id"]
    attached = uploaded(ada)
    response = ada.api.post(
        "/api/v1/posts", json={"body": "", "group_id": gid, "photo_ids": [attached["id"]]}
    )
    assert response.status_code == 201, response.get_json()
    attached = ada.api.get(f"/api/v1/photos/{attached['id']}").get_json()

    for insider in (ada, member):
        for url in _urls(photo) + _urls(attached):
            assert insider.api.get(url).status_code == 200, url
        assert insider.api.get(f"/api/v1/albums/{album_id}").get_json()["photo_count"] == 1
        feed = insider.api.get(f"/api/v1/groups/{gid}/feed").get_json()["items"]
        assert {p["id"] for p in feed} == {post_id, response.get_json()["id"]}
        assert all(p["photos"] for p in feed)
        restricted = insider.api.get(photo["sizes"]["thumb"]["url"])
        assert restricted.headers["Cache-Control"] == "private, no-cache"

    for outsider in (bob, external):
        for url in _urls(photo) + _urls(attached):
            assert_problem(outsider.api.get(url), 404)
        assert_problem(outsider.api.get(f"/api/v1/albums/{album_id}"), 404)
        assert_problem(outsider.api.get(f"/api/v1/albums/{album_id}/photos"), 404)
        assert_problem(outsider.api.get(f"/api/v1/posts/{post_id}"), 404)
        assert album_id not in [
            a["id"] for a in outsider.api.get("/api/v1/albums").get_json()["items"]
        ]
        assert outsider.api.get("/api/v1/feed").get_json()["items"] == []
        assert outsider.api.get(f"/api/v1/groups/{gid}/feed").status_code in (403, 404)
        listed = outsider.api.get(f"/api/v1/albums?group_id={gid}")
        assert listed.status_code == 404 or listed.get_json()["items"] == []
        for verb in ("PATCH", "DELETE"):
            assert_problem(
                outsider.api.request(verb, f"/api/v1/photos/{photo['id']}", json={}), 404
            )
        # Nor by uploading into its album.
        assert_problem(upload(outsider, images.plain_jpeg(), album_id=album_id), 404)

    # Leaving the group takes effect at the next request, in every size.
    assert member.api.post(f"/api/v1/groups/{gid}/leave").status_code == 204
    for url in _urls(photo):
        assert_problem(member.api.get(url), 404)


def test_personal_and_public_photos_are_for_employees_and_cached_privately(
    app: Flask, ada: Person, bob: Person
) -> None:
    external = person(app, "ext@partner.example", is_external=True)
    photo = uploaded(ada, album_id=album(ada))
    response = bob.api.get(photo["sizes"]["medium"]["url"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, max-age=3600"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Disposition"].startswith('inline; filename="photo-')
    # The reader's copy is still good: 304 without the body.
    again = bob.api.get(
        photo["sizes"]["medium"]["url"], headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304 and again.data == b""
    assert_problem(external.api.get(photo["sizes"]["medium"]["url"]), 404)
    assert_problem(ApiClient(app).get(photo["sizes"]["medium"]["url"]), 401)
    assert_problem(bob.api.get(f"/api/v1/photos/{photo['id']}/huge"), 404)


def test_an_unplaced_photo_is_its_uploaders_alone_and_goes_in_one_post_only(
    ada: Person, bob: Person
) -> None:
    photo = uploaded(ada, caption="draft")
    assert photo["use"] == "pending"
    for url in _urls(photo):
        assert_problem(bob.api.get(url), 404)
    assert (
        ada.api.get(photo["sizes"]["thumb"]["url"]).headers["Cache-Control"] == "private, no-cache"
    )
    # Bob cannot put Ada's photo in his post.
    assert_problem(
        bob.api.post("/api/v1/posts", json={"body": "mine", "photo_ids": [photo["id"]]}), 422
    )
    response = ada.api.post("/api/v1/posts", json={"body": "Look", "photo_ids": [photo["id"]]})
    assert response.status_code == 201
    assert [p["id"] for p in response.get_json()["photos"]] == [photo["id"]]
    assert bob.api.get(photo["sizes"]["thumb"]["url"]).status_code == 200
    # Not twice.
    assert_problem(
        ada.api.post("/api/v1/posts", json={"body": "Again", "photo_ids": [photo["id"]]}), 422
    )
    # A post of photos alone may have no text; a post of nothing may not.
    assert_problem(ada.api.post("/api/v1/posts", json={"body": " "}), 422)


def test_deleting_a_post_removes_its_photos_files(ada: Person, bob: Person) -> None:
    first, second = uploaded(ada), uploaded(ada)
    response = ada.api.post(
        "/api/v1/posts", json={"body": "Two", "photo_ids": [second["id"], first["id"]]}
    )
    assert [p["id"] for p in response.get_json()["photos"]] == [second["id"], first["id"]]
    assert len(stored_files()) == 8
    assert ada.api.delete(f"/api/v1/posts/{response.get_json()['id']}").status_code == 204
    assert stored_files() == []
    for url in _urls(first):
        assert_problem(ada.api.get(url), 404)
    assert ada.api.get("/api/v1/me/photo-storage").get_json()["used_bytes"] == 0


def test_album_photos_are_threads_with_comments_reactions_and_usage_events(
    ada: Person, bob: Person
) -> None:
    album_id = album(ada)
    photo = uploaded(ada, album_id=album_id, caption="Our #launch with @bob")
    post_id = photo["post_id"]
    assert (
        bob.api.post(f"/api/v1/posts/{post_id}/comments", json={"body": "Great shot"}).status_code
        == 201
    )
    assert bob.api.put(f"/api/v1/posts/{post_id}/reaction", json={"kind": "love"}).status_code in (
        200,
        204,
    )
    shown = bob.api.get(f"/api/v1/photos/{photo['id']}").get_json()
    assert (shown["comment_count"], shown["reaction_count"]) == (1, 1)
    post = bob.api.get(f"/api/v1/posts/{post_id}").get_json()
    assert post["hashtags"] == ["launch"] and post["photos"][0]["id"] == photo["id"]
    fresh()
    events = {
        (e.kind, e.object_type, e.thread_root_id)
        for e in db.session.scalars(select(UsageEvent).where(UsageEvent.thread_root_id == post_id))
    }
    assert (kinds.PHOTO_UPLOAD.name, "photo", post_id) in events
    assert (kinds.POST_PUBLISH.name, "post", post_id) in events
    assert (kinds.COMMENT_CREATE.name, "comment", post_id) in events
    assert (kinds.REACTION_ADD.name, "post", post_id) in events
    assert (kinds.MENTION.name, "post", post_id) in events
    # Editing the caption edits the post; deleting the photo deletes the thread.
    assert (
        ada.api.patch(f"/api/v1/photos/{photo['id']}", json={"caption": "Our launch"}).status_code
        == 200
    )
    assert ada.api.get(f"/api/v1/posts/{post_id}").get_json()["body"] == "Our launch"
    assert_problem(bob.api.patch(f"/api/v1/photos/{photo['id']}", json={"caption": "mine"}), 403)
    assert_problem(bob.api.delete(f"/api/v1/photos/{photo['id']}"), 403)
    assert ada.api.delete(f"/api/v1/photos/{photo['id']}").status_code == 204
    assert_problem(bob.api.get(f"/api/v1/posts/{post_id}"), 404)
    assert bob.api.get(f"/api/v1/albums/{album_id}").get_json()["photo_count"] == 0
    assert stored_files() == []


def test_albums_list_edit_and_delete(app: Flask, ada: Person, bob: Person) -> None:
    gid = group(ada, "Design", "public", [bob])
    mine = album(ada, "Mine")
    theirs = album(ada, "Team", group_id=gid)
    first = uploaded(bob, album_id=theirs)  # members add to a group's album
    second = uploaded(ada, album_id=theirs)
    assert_problem(upload(bob, images.plain_jpeg(), album_id=mine), 403)  # not his own album
    listed = bob.api.get(f"/api/v1/albums?group_id={gid}").get_json()["items"]
    assert [(a["id"], a["photo_count"], a["cover"]["id"]) for a in listed] == [
        (theirs, 2, first["id"])
    ]
    assert {a["id"] for a in bob.api.get("/api/v1/albums").get_json()["items"]} == {mine, theirs}
    assert [
        a["id"] for a in bob.api.get(f"/api/v1/albums?owner_id={ada.user.id}").get_json()["items"]
    ] == [mine]
    page = bob.api.get(f"/api/v1/albums/{theirs}/photos?limit=1").get_json()
    assert [p["id"] for p in page["items"]] == [second["id"]]
    rest = bob.api.get(
        f"/api/v1/albums/{theirs}/photos?limit=1&cursor={page['next_cursor']}"
    ).get_json()
    assert [p["id"] for p in rest["items"]] == [first["id"]] and rest["next_cursor"] is None
    edited = ada.api.patch(
        f"/api/v1/albums/{theirs}", json={"title": "Team days", "cover_photo_id": second["id"]}
    )
    assert edited.get_json()["cover"]["id"] == second["id"]
    assert_problem(
        ada.api.patch(f"/api/v1/albums/{mine}", json={"cover_photo_id": second["id"]}), 422
    )
    assert_problem(bob.api.patch(f"/api/v1/albums/{theirs}", json={"title": "Bob's"}), 403)
    assert ada.api.delete(f"/api/v1/albums/{theirs}").status_code == 204
    assert_problem(bob.api.get(f"/api/v1/albums/{theirs}"), 404)
    assert_problem(bob.api.get(first["sizes"]["thumb"]["url"]), 404)
    assert stored_files() == []
    assert bob.api.get(f"/api/v1/groups/{gid}/feed").get_json()["items"] == []


# --- licences, avatars, banners, quotas ---------------------------------------------------------


def test_licence_and_attribution_are_shown_with_the_photo(ada: Person, bob: Person) -> None:
    own = uploaded(ada)
    assert (own["licence"], own["credit"]) == ("own_work", "Photo: Ada Lovelace")
    licensed = uploaded(
        ada,
        licence="licensed",
        attribution="Stock Images Ltd, #4471",
        licence_url="https://stock.example/4471",
    )
    assert licensed["credit"] == "Licensed from Stock Images Ltd, #4471"
    assert licensed["licence_url"] == "https://stock.example/4471"
    company = uploaded(ada, licence="company")
    assert company["credit"] == "Company-owned"
    edited = ada.api.patch(
        f"/api/v1/photos/{own['id']}", json={"attribution": "Grace Hopper"}
    ).get_json()
    assert edited["credit"] == "Photo: Grace Hopper"
    assert_problem(
        ada.api.patch(
            f"/api/v1/photos/{own['id']}", json={"licence": "licensed", "attribution": ""}
        ),
        422,
    )


def test_avatar_is_seen_by_colleagues_and_replaced_cleanly(
    app: Flask, ada: Person, bob: Person
) -> None:
    first = uploaded(ada, images.jpeg((800, 800)))
    assert_problem(bob.api.put("/api/v1/me/avatar", json={"photo_id": first["id"]}), 404)  # not his
    assert (
        ada.api.put("/api/v1/me/avatar", json={"photo_id": first["id"]}).get_json()["use"]
        == "avatar"
    )
    url = f"/api/v1/people/{ada.user.id}/avatar/thumb"
    assert bob.api.get(f"/api/v1/people/{ada.user.id}").get_json()["avatar_url"] == url
    assert ada.api.get("/api/v1/me").get_json()["avatar_url"] == url
    assert ada.api.get(f"/api/v1/people/{bob.user.id}").get_json()["avatar_url"] is None
    response = bob.api.get(url)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
    assert_clean(response.data)
    second = uploaded(ada, images.png((500, 500)), name="me.png", kind="image/png")
    ada.api.put("/api/v1/me/avatar", json={"photo_id": second["id"]})
    assert bob.api.get(url).headers["Content-Type"] == "image/png"
    assert len(stored_files()) == 4  # the first avatar's files are gone
    assert_problem(ada.api.put("/api/v1/me/avatar", json={"photo_id": second["id"]}), 422)  # placed
    assert ada.api.delete("/api/v1/me/avatar").status_code == 204
    assert_problem(bob.api.get(url), 404)
    assert_problem(bob.api.get(f"/api/v1/people/{bob.user.id}/avatar/thumb"), 404)


def test_a_secret_groups_banner_is_hidden_with_the_group(
    app: Flask, ada: Person, bob: Person
) -> None:
    member = person(app, "carol@example.org")
    gid = group(ada, "Project X", "secret", [member])
    photo = uploaded(ada)
    assert_problem(
        member.api.put(f"/api/v1/groups/{gid}/banner", json={"photo_id": photo["id"]}), 403
    )
    assert (
        ada.api.put(f"/api/v1/groups/{gid}/banner", json={"photo_id": photo["id"]}).status_code
        == 200
    )
    assert member.api.get(f"/api/v1/groups/{gid}/banner/large").status_code == 200
    assert_problem(bob.api.get(f"/api/v1/groups/{gid}/banner/large"), 404)
    for url in _urls(photo):
        assert_problem(bob.api.get(url), 404)
    assert ada.api.delete(f"/api/v1/groups/{gid}/banner").status_code == 204
    assert_problem(member.api.get(f"/api/v1/groups/{gid}/banner/large"), 404)


class TestLimits:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"PHOTO_QUOTA_BYTES": 300_000, "PHOTO_UPLOAD_LIMIT": "3 per hour"}

    def test_the_storage_quota_refuses_clearly_and_stores_nothing(
        self, ada: Person, temp_dir: Path
    ) -> None:
        first = uploaded(ada, images.jpeg((1600, 1200)))
        used = ada.api.get("/api/v1/me/photo-storage").get_json()
        assert used["used_bytes"] == sum(s["bytes"] for s in first["sizes"].values())
        assert used["quota_bytes"] == 300_000 and used["photos"] == 1
        big = images.jpeg((4000, 3000))
        body = assert_problem(upload(ada, big), 409)
        assert body["type"].endswith("/photo-quota-exceeded")
        assert "MiB" in body["detail"] and body["quota_bytes"] == 300_000
        assert len(stored_files()) == 4
        assert list(temp_dir.iterdir()) == []

    def test_the_upload_rate_is_limited_per_person(
        self, app: Flask, ada: Person, bob: Person
    ) -> None:
        for _ in range(3):
            uploaded(ada, images.plain_jpeg((64, 48)))
        refused = assert_problem(upload(ada, images.plain_jpeg((64, 48))), 429)
        assert refused["detail"]
        # Refused uploads do not count, and the limit is per person.
        assert_problem(upload(bob, images.HTML), 415)
        uploaded(bob, images.plain_jpeg((64, 48)))


def test_when_storage_fails_the_upload_is_503_and_nothing_is_kept(ada: Person) -> None:
    incoming = Path(store().root) / ".incoming"  # type: ignore[attr-defined]
    incoming.rmdir()
    incoming.write_bytes(b"")  # a file where the directory was: every write now fails
    body = assert_problem(upload(ada, images.plain_jpeg()), 503)
    assert body["type"].endswith("/photo-storage-unavailable")
    fresh()
    assert db.session.scalar(select(func.count()).select_from(Photo)) == 0
    incoming.unlink()
    assert stored_files() == []
