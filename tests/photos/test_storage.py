"""The photo stores: one contract run against the local directory and against a real
S3-compatible server on loopback (moto's, or the one named by ``ESN_TEST_S3_URL``), the local
store's file layout, modes and atomic writes, ``make_store``, and the orphan sweep through the
app (files no row refers to go once they are old enough; referenced and fresh files stay)."""

from __future__ import annotations

import io
import os
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from esn import config
from esn.clock import frozen_at, now
from esn.extensions import db
from esn.photos.actions import sweep_orphan_files
from esn.photos.models import PhotoFile
from esn.photos.storage import (
    LocalPhotoStore,
    PhotoStore,
    S3PhotoStore,
    make_store,
    new_key,
    store,
)
from tests.conftest import ApiClient, fresh, make_user
from tests.photos import images

S3_URL_ENV = "ESN_TEST_S3_URL"
S3_BUCKET_ENV = "ESN_TEST_S3_BUCKET"
MOTO_REGION = "us-east-1"

INVALID_KEYS = [
    "../x",
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "short",
    "",
    "a" * 15,
    "a" * 65,
    "abcdefgh/ijklmnopqrst",
    "abcdefghijklmnop/..",
    "/abcdefghijklmnopqrst",
    "abcdefghijklmnop\\qrst",
    "abcdefghijklmnop.jpg",
    "abcdefghijklmnop qrst",
    "abcdefghijklmnop\x00qrst",
    "\nabcdefghijklmnopqrst",
    pytest.param("abcdefghijklmnopqrst\n", id="trailing-newline"),
]


def fanned_out(root: Path, key: str) -> Path:
    return root / key[:2] / key[2:4] / key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the S3-compatible server -------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    region: str | None


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    """``ESN_TEST_S3_URL`` and ``ESN_TEST_S3_BUCKET`` when set (credentials from the usual AWS
    variables); otherwise moto's server on a free loopback port, with dummy credentials."""
    url = os.environ.get(S3_URL_ENV)
    if url:
        bucket = os.environ.get(S3_BUCKET_ENV)
        if not bucket:
            pytest.fail(f"{S3_URL_ENV} is set but {S3_BUCKET_ENV} is not: name a bucket to use")
        yield S3Server(url, bucket, None)
        return
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(
            f"S3 photo store tests skipped: moto's server is not importable ({exc}); install "
            f"the 'test' extra, or set {S3_URL_ENV} and {S3_BUCKET_ENV} to use another server"
        )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", MOTO_REGION)
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
            env.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            bucket = f"esn-photos-{uuid.uuid4().hex[:12]}"
            client = boto3.client("s3", endpoint_url=endpoint, region_name=MOTO_REGION)
            client.create_bucket(Bucket=bucket)
            yield S3Server(endpoint, bucket, MOTO_REGION)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def s3_client(s3_server: S3Server) -> Any:
    """A raw boto3 client, to look at the bucket behind the store's back."""
    import boto3

    return boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name=s3_server.region)


def object_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture
def s3_scratch(s3_server: S3Server, s3_client: Any) -> Iterator[str]:
    """A prefix of this test's own in the bucket, emptied afterwards (the bucket may be shared)."""
    base = f"esn-test-{uuid.uuid4().hex[:12]}"
    yield base
    for key in object_keys(s3_client, s3_server.bucket, base + "/"):
        s3_client.delete_object(Bucket=s3_server.bucket, Key=key)


def s3_store(server: S3Server, prefix: str) -> S3PhotoStore:
    return S3PhotoStore(
        server.bucket, endpoint_url=server.endpoint_url, region=server.region, prefix=prefix
    )


# --- the contract, for both stores --------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def photo_store(request: pytest.FixtureRequest, tmp_path: Path) -> PhotoStore:
    if request.param == "local":
        return LocalPhotoStore(tmp_path / "photos")
    server: S3Server = request.getfixturevalue("s3_server")
    scratch: str = request.getfixturevalue("s3_scratch")
    return s3_store(server, f"{scratch}/photos")


class TestContract:
    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"\x00",
            bytes(range(256)) * 4 + b"\r\n\r\n\x1a",
            os.urandom(3 * 1024 * 1024 + 17),
        ],
        ids=["empty", "one-byte", "every-byte", "3-MiB"],
    )
    def test_put_then_get_returns_the_same_bytes(
        self, photo_store: PhotoStore, data: bytes
    ) -> None:
        key = new_key()
        photo_store.put(key, data, "image/jpeg")
        assert photo_store.get(key) == data

    def test_keys_are_independent(self, photo_store: PhotoStore) -> None:
        first, second = new_key(), new_key()
        photo_store.put(first, b"first", "image/jpeg")
        photo_store.put(second, b"second", "image/webp")
        assert (photo_store.get(first), photo_store.get(second)) == (b"first", b"second")

    def test_get_of_a_missing_key_raises_key_error(self, photo_store: PhotoStore) -> None:
        key = new_key()
        with pytest.raises(KeyError) as caught:
            photo_store.get(key)
        assert caught.value.args == (key,)

    def test_delete_removes_and_is_idempotent(self, photo_store: PhotoStore) -> None:
        kept, gone = new_key(), new_key()
        photo_store.put(kept, b"kept", "image/png")
        photo_store.put(gone, b"gone", "image/png")
        photo_store.delete(gone)
        with pytest.raises(KeyError):
            photo_store.get(gone)
        photo_store.delete(gone)  # again: not an error
        photo_store.delete(new_key())  # never stored: not an error either
        assert photo_store.get(kept) == b"kept"
        assert [key for key, _ in photo_store.listing()] == [kept]

    def test_listing_yields_exactly_the_stored_keys_with_aware_times(
        self, photo_store: PhotoStore
    ) -> None:
        assert list(photo_store.listing()) == []
        before = now()
        keys = [new_key() for _ in range(5)]
        for key in keys:
            photo_store.put(key, key.encode(), "image/jpeg")
        photo_store.delete(keys[0])
        after = now()

        listed = list(photo_store.listing())
        assert sorted(key for key, _ in listed) == sorted(keys[1:])
        slack = timedelta(minutes=2)  # S3 keeps whole seconds; another server's clock may drift
        for _, written in listed:
            assert written.tzinfo is not None
            assert written.utcoffset() is not None
            assert before - slack <= written <= after + slack

    @pytest.mark.parametrize("key", INVALID_KEYS)
    def test_keys_that_are_not_keys_are_refused(self, photo_store: PhotoStore, key: str) -> None:
        with pytest.raises(ValueError, match="not a photo key"):
            photo_store.put(key, b"data", "image/jpeg")
        with pytest.raises(ValueError, match="not a photo key"):
            photo_store.get(key)
        with pytest.raises(ValueError, match="not a photo key"):
            photo_store.delete(key)
        assert list(photo_store.listing()) == []

    def test_new_keys_are_accepted_and_distinct(self, photo_store: PhotoStore) -> None:
        keys = {new_key() for _ in range(50)}
        assert len(keys) == 50
        for key in list(keys)[:3]:
            photo_store.put(key, b"x", "image/gif")
        assert len(list(photo_store.listing())) == 3


# --- S3 specifics -------------------------------------------------------------------------------


def test_s3_objects_live_under_the_prefix(
    s3_server: S3Server, s3_client: Any, s3_scratch: str
) -> None:
    photo_store = s3_store(s3_server, f"/{s3_scratch}/photos/")
    assert photo_store.prefix == f"{s3_scratch}/photos/"
    key = new_key()
    photo_store.put(key, b"\xff\xd8 a jpeg", "image/jpeg")

    raw = s3_client.get_object(Bucket=s3_server.bucket, Key=f"{s3_scratch}/photos/{key}")
    assert raw["Body"].read() == b"\xff\xd8 a jpeg"
    assert raw["ContentType"] == "image/jpeg"
    assert object_keys(s3_client, s3_server.bucket, s3_scratch + "/") == [
        f"{s3_scratch}/photos/{key}"
    ]

    photo_store.delete(key)
    assert object_keys(s3_client, s3_server.bucket, s3_scratch + "/") == []


def test_s3_listing_ignores_objects_outside_the_prefix_or_not_shaped_like_keys(
    s3_server: S3Server, s3_client: Any, s3_scratch: str
) -> None:
    photo_store = s3_store(s3_server, f"{s3_scratch}/photos")
    mine = new_key()
    photo_store.put(mine, b"mine", "image/jpeg")
    outside = new_key()
    strays = [
        f"{s3_scratch}/{outside}",  # beside the prefix
        f"{s3_scratch}/photos-old/{new_key()}",  # a sibling whose name starts the same
        f"{s3_scratch}/photosX{new_key()}",
        f"{s3_scratch}/photos/nested/{new_key()}",  # deeper than a key
        f"{s3_scratch}/photos/{new_key()}.tmp",  # not shaped like a key
        f"{s3_scratch}/photos/short",
        f"{s3_scratch}/photos/",  # a "folder" marker
    ]
    for stray in strays:
        s3_client.put_object(Bucket=s3_server.bucket, Key=stray, Body=b"stray")

    assert [key for key, _ in photo_store.listing()] == [mine]
    with pytest.raises(KeyError):
        photo_store.get(outside)
    photo_store.delete(outside)  # the key's object under the prefix, which does not exist
    assert set(strays) <= set(object_keys(s3_client, s3_server.bucket, s3_scratch + "/"))


def test_s3_prefixes_are_normalised(s3_server: S3Server) -> None:
    for given, kept in [("", ""), ("/", ""), ("a", "a/"), ("/a/b/", "a/b/"), ("a/b", "a/b/")]:
        assert s3_store(s3_server, given).prefix == kept


def test_s3_without_a_prefix_keys_are_at_the_bucket_root(
    s3_server: S3Server, s3_client: Any
) -> None:
    photo_store = s3_store(s3_server, "")
    key = new_key()
    photo_store.put(key, b"root", "image/png")
    try:
        raw = s3_client.get_object(Bucket=s3_server.bucket, Key=key)
        assert raw["Body"].read() == b"root"
        assert key in {listed for listed, _ in photo_store.listing()}
    finally:
        photo_store.delete(key)
    with pytest.raises(s3_client.exceptions.NoSuchKey):
        s3_client.get_object(Bucket=s3_server.bucket, Key=key)


# --- the local store's specifics ----------------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    """A usual umask, so that the modes asserted are the store's choice, not the umask's."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("umask_022")
class TestLocal:
    def test_file_lands_fanned_out_with_private_modes(self, tmp_path: Path) -> None:
        root = tmp_path / "photos"
        photo_store = LocalPhotoStore(root)
        key = new_key()
        photo_store.put(key, b"private", "image/jpeg")

        target = fanned_out(root, key)
        assert target.is_file()
        assert target.read_bytes() == b"private"
        assert mode(target) == 0o600
        assert mode(target.parent) == 0o700  # root/k[:2]/k[2:4]
        assert mode(root / ".incoming") == 0o700
        assert list((root / ".incoming").iterdir()) == []
        files = {p.relative_to(root) for p in root.rglob("*") if p.is_file()}
        assert files == {Path(key[:2], key[2:4], key)}

    def test_first_fan_out_directory_is_private(self, tmp_path: Path) -> None:
        root = tmp_path / "photos"
        photo_store = LocalPhotoStore(root)
        key = new_key()
        photo_store.put(key, b"private", "image/jpeg")
        assert mode(root / key[:2]) == 0o700

    def test_a_write_that_raises_leaves_nothing(self, tmp_path: Path) -> None:
        root = tmp_path / "photos"
        photo_store = LocalPhotoStore(root)
        key = new_key()
        with pytest.raises(TypeError):
            photo_store.put(key, "not bytes", "image/jpeg")  # type: ignore[arg-type]
        assert list((root / ".incoming").iterdir()) == []
        assert not fanned_out(root, key).exists()
        assert list(photo_store.listing()) == []
        with pytest.raises(KeyError):
            photo_store.get(key)

    def test_a_failed_write_keeps_the_previous_file_whole(self, tmp_path: Path) -> None:
        root = tmp_path / "photos"
        photo_store = LocalPhotoStore(root)
        key = new_key()
        photo_store.put(key, b"version one", "image/jpeg")
        with pytest.raises(TypeError):
            photo_store.put(key, ["version two"], "image/jpeg")  # type: ignore[arg-type]
        assert photo_store.get(key) == b"version one"
        assert list((root / ".incoming").iterdir()) == []

    def test_a_rename_that_fails_after_the_write_leaves_nothing(self, tmp_path: Path) -> None:
        # The data is written and flushed, then the rename into place fails (the target is a
        # directory): the partial file must not stay in .incoming.
        root = tmp_path / "photos"
        photo_store = LocalPhotoStore(root)
        key = new_key()
        fanned_out(root, key).mkdir(parents=True)
        with pytest.raises(IsADirectoryError):
            photo_store.put(key, os.urandom(100_000), "image/jpeg")
        assert list((root / ".incoming").iterdir()) == []
        assert fanned_out(root, key).is_dir()
        assert list(fanned_out(root, key).iterdir()) == []

    @pytest.mark.skipif(
        hasattr(os, "geteuid") and os.geteuid() == 0,
        reason="root writes into unwritable directories anyway",
    )
    def test_an_unwritable_target_directory_leaves_nothing(self, tmp_path: Path) -> None:
        root = tmp_path / "photos"
        photo_store = LocalPhotoStore(root)
        key = new_key()
        target_dir = fanned_out(root, key).parent
        target_dir.mkdir(parents=True)
        target_dir.chmod(0o500)
        try:
            with pytest.raises(PermissionError):
                photo_store.put(key, b"data", "image/jpeg")
        finally:
            target_dir.chmod(0o700)
        assert list((root / ".incoming").iterdir()) == []
        assert not fanned_out(root, key).exists()

    def test_refused_keys_touch_nothing_on_disk(self, tmp_path: Path) -> None:
        root = tmp_path / "photos"
        photo_store = LocalPhotoStore(root)
        for key in ["../escaped-aaaaaaaaaaaa", "../../escaped", "aa/bb/../../../escaped"]:
            with pytest.raises(ValueError):
                photo_store.put(key, b"data", "image/jpeg")
        assert set(tmp_path.rglob("*")) == {root, root / ".incoming"}

    def test_listing_ignores_partial_and_foreign_files(self, tmp_path: Path) -> None:
        root = tmp_path / "photos"
        photo_store = LocalPhotoStore(root)
        key = new_key()
        photo_store.put(key, b"data", "image/jpeg")
        (root / ".incoming" / f"{new_key()}.0a1b2c3d").write_bytes(b"partial")
        (fanned_out(root, key).parent / "notes.txt").write_text("not a photo")
        (root / "README").write_text("not a photo")
        # Key-shaped, but not where the store puts that key: not a stored photo either.
        stray = new_key()
        misplaced = root / "zz" / "zz" / stray
        misplaced.parent.mkdir(parents=True)
        misplaced.write_bytes(b"stray")
        assert not stray.startswith("zzzz")
        assert [listed for listed, _ in photo_store.listing()] == [key]


# --- make_store ---------------------------------------------------------------------------------


def test_make_store_local_defaults_to_the_instance_directory(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    settings = config.load({"INSTANCE_PATH": str(instance)}, environ={})
    assert settings["PHOTO_STORE"] == "local"
    assert settings["PHOTO_DIR"] == ""
    photo_store = make_store(settings, str(instance))
    assert isinstance(photo_store, LocalPhotoStore)
    assert photo_store.root == instance / "photos"
    key = new_key()
    photo_store.put(key, b"here", "image/jpeg")
    assert fanned_out(instance / "photos", key).read_bytes() == b"here"


def test_make_store_local_uses_photo_dir(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    settings = config.load(
        {"INSTANCE_PATH": str(tmp_path / "instance"), "PHOTO_DIR": str(elsewhere)}, environ={}
    )
    photo_store = make_store(settings, settings["INSTANCE_PATH"])
    assert isinstance(photo_store, LocalPhotoStore)
    assert photo_store.root == elsewhere


def test_make_store_s3_talks_to_the_configured_bucket(
    tmp_path: Path, s3_server: S3Server, s3_client: Any, s3_scratch: str
) -> None:
    settings = config.load(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "PHOTO_STORE": "s3",
            "S3_BUCKET": s3_server.bucket,
            "S3_ENDPOINT_URL": s3_server.endpoint_url,
            "S3_REGION": s3_server.region or "",
            "S3_PREFIX": f"{s3_scratch}/configured",
        },
        environ={},
    )
    photo_store = make_store(settings, settings["INSTANCE_PATH"])
    assert isinstance(photo_store, S3PhotoStore)
    assert photo_store.bucket == s3_server.bucket
    assert photo_store.prefix == f"{s3_scratch}/configured/"
    key = new_key()
    photo_store.put(key, b"through make_store", "image/webp")
    assert photo_store.get(key) == b"through make_store"
    raw = s3_client.get_object(Bucket=s3_server.bucket, Key=f"{s3_scratch}/configured/{key}")
    assert raw["Body"].read() == b"through make_store"
    assert not (tmp_path / "instance" / "photos").exists()


# --- the orphan sweep, through the app ----------------------------------------------------------


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The local store by default; ``parametrize("app_config", ["s3"], indirect=True)`` puts
    the app's photos in the S3 server, under a prefix of the test's own."""
    if getattr(request, "param", "local") == "local":
        return {}
    server: S3Server = request.getfixturevalue("s3_server")
    scratch: str = request.getfixturevalue("s3_scratch")
    return {
        "PHOTO_STORE": "s3",
        "S3_BUCKET": server.bucket,
        "S3_ENDPOINT_URL": server.endpoint_url,
        "S3_REGION": server.region or "",
        "S3_PREFIX": f"{scratch}/photos",
    }


def upload_photo(app: Flask) -> tuple[ApiClient, int, set[str]]:
    """Upload a small JPEG through the API; the keys of the files its rows refer to."""
    make_user("ada@example.org")
    client = ApiClient(app)
    assert client.sign_in("ada@example.org").status_code == 200
    response = client.post(
        "/api/v1/photos",
        data={"file": (io.BytesIO(images.plain_jpeg((320, 240))), "a.jpg", "image/jpeg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    photo_id = int(response.get_json()["id"])
    fresh()
    keys = set(db.session.scalars(select(PhotoFile.key).where(PhotoFile.photo_id == photo_id)))
    assert keys
    return client, photo_id, keys


def test_sweep_removes_old_orphans_and_keeps_referenced_and_fresh_files(app: Flask) -> None:
    photo_store = store()
    assert isinstance(photo_store, LocalPhotoStore)
    old_orphan = new_key()
    photo_store.put(old_orphan, b"left by a process that died", "image/jpeg")
    client, photo_id, referenced = upload_photo(app)
    fresh_orphan = new_key()
    photo_store.put(fresh_orphan, b"an upload in flight", "image/jpeg")
    # The orphan is old, and so are the referenced files: only the rows keep those.
    two_hours_ago = time.time() - 2 * 3600
    for key in [old_orphan, *referenced]:
        os.utime(fanned_out(photo_store.root, key), (two_hours_ago, two_hours_ago))

    fresh()
    assert sweep_orphan_files() == 1

    assert not fanned_out(photo_store.root, old_orphan).exists()
    with pytest.raises(KeyError):
        photo_store.get(old_orphan)
    assert {key for key, _ in photo_store.listing()} == {fresh_orphan, *referenced}
    assert photo_store.get(fresh_orphan) == b"an upload in flight"
    served = client.get(f"/api/v1/photos/{photo_id}/original")
    assert served.status_code == 200
    assert served.data in {photo_store.get(key) for key in referenced}
    assert sweep_orphan_files() == 0  # nothing more to remove


@pytest.mark.parametrize("app_config", ["s3"], indirect=True)
def test_sweep_through_the_s3_store(app: Flask, s3_client: Any) -> None:
    photo_store = store()
    assert isinstance(photo_store, S3PhotoStore)
    orphan = new_key()
    photo_store.put(orphan, b"left by a process that died", "image/jpeg")
    _, _, referenced = upload_photo(app)

    # Everything was written just now: younger than the cutoff, so nothing goes.
    assert sweep_orphan_files() == 0
    assert {key for key, _ in photo_store.listing()} == {orphan, *referenced}

    # Two hours later the orphan goes; the files the photo's rows refer to stay.
    with frozen_at(now() + timedelta(hours=2)):
        assert sweep_orphan_files() == 1
    assert {key for key, _ in photo_store.listing()} == referenced
    assert object_keys(s3_client, photo_store.bucket, photo_store.prefix) == sorted(
        photo_store.prefix + key for key in referenced
    )
