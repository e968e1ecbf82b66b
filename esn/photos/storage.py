"""Where photo files live, behind one small protocol.

The default keeps them in a local directory (``<instance>/photos``); ``PHOTO_STORE=s3`` keeps
them in an S3-compatible object store, which every application server shares when the service
is scaled out. Keys are random and chosen by the service, never by the uploader; nothing in a
store is reachable without going through the photo routes' authorization check.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, current_app

_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def new_key() -> str:
    """A fresh random key (144 bits)."""
    return secrets.token_urlsafe(18)


def _checked(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a photo key: {key!r}")
    return key


class PhotoStore(Protocol):
    def put(self, key: str, data: bytes, media_type: str) -> None:
        """Store durably: once ``put`` returns, the file survives a crash."""

    def get(self, key: str) -> bytes:
        """The file's bytes; ``KeyError`` when there is none."""

    def delete(self, key: str) -> None:
        """Remove the file; removing a missing key is not an error."""

    def listing(self) -> Iterator[tuple[str, datetime]]:
        """Every stored key with the time it was written (for the orphan sweep)."""


class LocalPhotoStore:
    """Files under ``root``, fanned out by the key's first characters. A file is written to
    ``root/.incoming`` first, flushed to disk, and renamed into place, so a reader never sees a
    partial file and a failed write leaves nothing behind."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / ".incoming"
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.incoming.mkdir(exist_ok=True, mode=0o700)

    def _path(self, key: str) -> Path:
        key = _checked(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, key: str, data: bytes, media_type: str) -> None:
        target = self._path(key)
        # One by one: ``parents=True`` would give the first level the default mode.
        target.parent.parent.mkdir(exist_ok=True, mode=0o700)
        target.parent.mkdir(exist_ok=True, mode=0o700)
        partial = self.incoming / f"{key}.{secrets.token_hex(4)}"
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        _fsync_dir(target.parent)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def listing(self) -> Iterator[tuple[str, datetime]]:
        for path in self.root.glob("??/??/*"):
            name = path.name
            # Only files where ``_path`` puts them: anything else is not a stored photo.
            if _KEY.fullmatch(name) and path.parent == self.root / name[:2] / name[2:4]:
                yield name, datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3PhotoStore:
    """Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph, Garage…), through boto3.

    Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    a profile, or an instance role). The bucket must not be public: the service serves every
    photo itself, after its authorization check."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "",
        client: Any = None,
    ) -> None:
        if client is None:
            try:
                import boto3
            except ImportError:  # pragma: no cover - depends on the installation
                raise RuntimeError(
                    "PHOTO_STORE=s3 needs boto3: install the service with the 's3' extra"
                ) from None
            client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def put(self, key: str, data: bytes, media_type: str) -> None:
        # S3 acknowledges a PUT only once the object is durably stored.
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + _checked(key), Body=data, ContentType=media_type
        )

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + _checked(key))
        except self.client.exceptions.NoSuchKey:
            raise KeyError(key) from None
        body: bytes = response["Body"].read()
        return body

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + _checked(key))

    def listing(self) -> Iterator[tuple[str, datetime]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if _KEY.fullmatch(key):
                    yield key, item["LastModified"]


def make_store(config: dict[str, Any], instance_path: str) -> PhotoStore:
    if config["PHOTO_STORE"] == "s3":
        return S3PhotoStore(
            config["S3_BUCKET"],
            endpoint_url=config["S3_ENDPOINT_URL"],
            region=config["S3_REGION"] or None,
            prefix=config["S3_PREFIX"],
        )
    root = Path(config["PHOTO_DIR"] or Path(instance_path) / "photos")
    return LocalPhotoStore(root)


def install(app: Flask) -> None:
    app.extensions["esn.photo_store"] = make_store(app.config, app.instance_path)


def store() -> PhotoStore:
    found: PhotoStore = current_app.extensions["esn.photo_store"]
    return found
