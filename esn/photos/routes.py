"""HTTP boundary of albums and photos: uploads, the authorized file route, avatars, banners."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask_limiter.util import get_remote_address
from pydantic import ValidationError

from esn import access
from esn.accounts.auth import require_user, signed_in_user
from esn.api.problems import FieldError, Problem, not_found, validation_problem
from esn.api.spec import _errors_from, operation
from esn.extensions import db, limiter
from esn.groups.queries import access_group
from esn.photos import actions, pipeline, queries
from esn.photos.models import Photo, PhotoUse
from esn.photos.schemas import (
    AlbumCreate,
    AlbumList,
    AlbumOut,
    AlbumQuery,
    AlbumUpdate,
    PageQuery,
    PhotoFields,
    PhotoOut,
    PhotoPage,
    PhotoUpdate,
    PictureSet,
    StorageUse,
)

log = logging.getLogger("esn.photos")
bp = Blueprint("photos", __name__, url_prefix="/api/v1")
PHOTOS, ALBUMS = ["photos"], ["albums"]
# What a served file may do if a browser opens it directly: nothing.
FILE_CSP = "default-src 'none'; img-src 'self'; sandbox"


def _uploader_key() -> str:
    user = signed_in_user()
    return f"user:{user.id}" if user is not None else get_remote_address()


def _form_fields() -> dict[str, Any]:
    data: dict[str, Any] = {}
    errors = []
    for key in request.form:
        values = request.form.getlist(key)
        if len(values) > 1:
            errors.append(FieldError(pointer=f"/{key}", location="body", message="given twice"))
        data[key] = values[0]
    if errors:
        raise validation_problem(errors)
    return data


def _the_file() -> tuple[bytes, str | None, str | None]:
    if request.mimetype != "multipart/form-data":
        raise Problem(
            415,
            "Unsupported Media Type",
            "Send the photo as multipart/form-data with the image in a part named 'file'.",
            kind="unsupported-media-type",
        )
    parts = request.files.getlist("file")
    if len(parts) != 1 or set(request.files) != {"file"}:
        raise validation_problem(
            [FieldError(pointer="/file", location="body", message="send exactly one file")]
        )
    upload = parts[0]
    try:
        return upload.stream.read(), upload.filename, upload.mimetype
    finally:
        upload.close()


@operation(
    bp,
    "/photos",
    "POST",
    summary="Upload a photo",
    tags=PHOTOS,
    form=PhotoFields,
    max_body="MAX_PHOTO_BYTES",
    response=PhotoOut,
    status=201,
    responses={
        409: "Your photo storage quota would be exceeded.",
        415: "The content is not a JPEG, PNG, WebP or GIF image.",
        422: "A field is invalid, or the image is damaged, has data appended, is too large in "
        "pixels, or its name or declared type contradicts its content.",
        429: "Too many uploads; wait as Retry-After says.",
    },
    decorators=[
        limiter.limit(
            lambda: current_app.config["PHOTO_UPLOAD_LIMIT"],
            key_func=_uploader_key,
            deduct_when=lambda response: response.status_code == 201,
        )
    ],
)
def upload_photo() -> PhotoOut:
    """JPEG, PNG, WebP or GIF, identified by its content. The stored files are re-encoded:
    EXIF (with any GPS position), XMP and comments are removed, the orientation is applied,
    and a large, medium and thumbnail size are made. With ``album_id`` the photo goes into the
    album and gets a post of its own (comments, reactions, feeds); without it, it waits to be
    placed in a post (``photo_ids``), as your avatar or as a group banner, for 24 hours."""
    user = require_user()
    try:
        fields = PhotoFields.model_validate(_form_fields())
    except ValidationError as exc:
        raise validation_problem(_errors_from(exc, "body")) from None
    actions.check_photo_fields(fields.model_dump())
    if fields.album_id is not None:
        access.require(user, "album:upload", queries.access_album(user, fields.album_id))
    actions.check_quota(user, 1)  # a full quota is refused before the work, not after
    data, filename, declared = _the_file()
    # Decoding takes a while: no transaction (and so no write lock) is held meanwhile.
    db.session.commit()
    try:
        processed = pipeline.process(
            data,
            filename=filename,
            declared_type=declared,
            max_pixels=current_app.config["PHOTO_MAX_PIXELS"],
        )
    except pipeline.Refused as exc:
        raise actions.refusal(exc) from None
    del data
    try:
        keys = actions.store_files(processed)
    except Exception:  # a full disk, an unreachable bucket: nothing of it stays stored
        log.exception("could not store a photo")
        raise Problem(
            503,
            "Service Unavailable",
            "The photo could not be stored just now; nothing was kept. Try again in a minute.",
            kind="photo-storage-unavailable",
            headers={"Retry-After": "60"},
        ) from None
    try:
        album = None
        if fields.album_id is not None:  # asked again: membership may have changed meanwhile
            album = queries.access_album(user, fields.album_id)
            access.require(user, "album:upload", album)
        photo = actions.do_add_photo(user, processed, keys, fields.model_dump(), album)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        actions.discard(keys.values())
        raise
    return queries.photos_out([photo])[0]


@operation(bp, "/photos/<int:photo_id>", "GET", summary="A photo", tags=PHOTOS, response=PhotoOut)
def get_photo(photo_id: int) -> PhotoOut:
    """The photo's caption, licence and credit line, and the URL of each size."""
    return queries.photos_out([queries.access_photo(require_user(), photo_id)])[0]


@operation(
    bp,
    "/photos/<int:photo_id>",
    "PATCH",
    summary="Edit a photo's caption or licence",
    tags=PHOTOS,
    body=PhotoUpdate,
    response=PhotoOut,
)
def edit_photo(photo_id: int, body: PhotoUpdate) -> PhotoOut:
    """Only the uploader. An album photo's caption is also the text of its post."""
    user = require_user()
    photo = queries.access_photo(user, photo_id)
    access.require(user, "photo:edit", photo)
    actions.do_edit_photo(user, photo, body.model_dump(exclude_unset=True))
    db.session.commit()
    return queries.photos_out([photo])[0]


@operation(
    bp, "/photos/<int:photo_id>", "DELETE", summary="Delete a photo", tags=PHOTOS, status=204
)
def delete_photo(photo_id: int) -> None:
    """The uploader, or whoever manages where it is shown (a group's admins). An album photo
    goes with its post and comments. The files are removed from storage."""
    user = require_user()
    photo = queries.access_photo(user, photo_id)
    access.require(user, "photo:delete", photo)
    actions.do_delete_photo(user, photo)
    db.session.commit()


def serve(photo: Photo, variant: str) -> Response:
    """A stored file, after the caller's authorization check, with headers that let a browser
    do nothing but show it."""
    stored = queries.file_of(photo, variant)
    if stored is None:
        raise not_found("photo size")
    try:
        data = actions.store().get(stored.key)
    except KeyError:
        raise not_found("photo size") from None
    suffix = pipeline.MEDIA_TYPES[photo.media_type].suffix
    response = Response(data, status=200, mimetype=photo.media_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["Content-Disposition"] = (
        f'inline; filename="photo-{photo.id}-{variant}{suffix}"'
    )
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    # Restricted photos are asked for again every time (the reader may have left the group);
    # the others may be kept a while, by the reader's own browser only.
    restricted = access.photo_restricted(photo)
    response.headers["Cache-Control"] = (
        "private, no-cache" if restricted else "private, max-age=3600"
    )
    response.set_etag(stored.key)
    response.make_conditional(request)  # 304 when the reader's copy is this one
    return response


def _variant(variant: str) -> str:
    if variant not in pipeline.VARIANTS:
        raise not_found("photo size")
    return variant


@operation(
    bp,
    "/photos/<int:photo_id>/<variant>",
    "GET",
    summary="A photo's file (original, large, medium or thumb)",
    tags=PHOTOS,
)
def photo_file(photo_id: int, variant: str) -> Response:
    """The image itself, served only to those who may see the photo (404 to anyone else, for
    every size)."""
    user = require_user()
    return serve(queries.access_photo(user, photo_id), _variant(variant))


# --- albums -------------------------------------------------------------------------------------


@operation(
    bp, "/albums", "POST", summary="Create an album", tags=ALBUMS, body=AlbumCreate,
    response=AlbumOut, status=201,
)  # fmt: skip
def create_album(body: AlbumCreate) -> AlbumOut:
    """Your own album, or a group's (members may add photos to a group's albums)."""
    user = require_user()
    group = None
    if body.group_id is not None:
        group = access_group(user, body.group_id)
        access.require(user, "group:post", group)
    album = actions.do_create_album(user, body.model_dump(), group)
    db.session.commit()
    return queries.albums_out(user, [album])[0]


@operation(
    bp, "/albums", "GET", summary="Albums", tags=ALBUMS, query=AlbumQuery, response=AlbumList
)
def list_albums(query: AlbumQuery) -> AlbumList:
    """Albums you may see, most recently added to first; filter by group or by person."""
    user = require_user()
    if query.group_id is not None:
        access.require(user, "group:read", access_group(user, query.group_id), hide=True)
    albums, cursor = queries.list_albums(user, query.model_dump(), query.cursor, query.limit)
    return AlbumList(items=queries.albums_out(user, albums), next_cursor=cursor)


@operation(bp, "/albums/<int:album_id>", "GET", summary="An album", tags=ALBUMS, response=AlbumOut)
def get_album(album_id: int) -> AlbumOut:
    user = require_user()
    return queries.albums_out(user, [queries.access_album(user, album_id)])[0]


@operation(
    bp, "/albums/<int:album_id>", "PATCH", summary="Edit an album", tags=ALBUMS,
    body=AlbumUpdate, response=AlbumOut,
)  # fmt: skip
def edit_album(album_id: int, body: AlbumUpdate) -> AlbumOut:
    user = require_user()
    album = queries.access_album(user, album_id)
    access.require(user, "album:edit", album)
    actions.do_edit_album(user, album, body.model_dump(exclude_unset=True))
    db.session.commit()
    return queries.albums_out(user, [album])[0]


@operation(
    bp, "/albums/<int:album_id>", "DELETE", summary="Delete an album", tags=ALBUMS, status=204
)
def delete_album(album_id: int) -> None:
    """The album goes with all its photos and their posts."""
    user = require_user()
    album = queries.access_album(user, album_id)
    access.require(user, "album:delete", album)
    actions.do_delete_album(user, album)
    db.session.commit()


@operation(
    bp, "/albums/<int:album_id>/photos", "GET", summary="An album's photos", tags=ALBUMS,
    query=PageQuery, response=PhotoPage,
)  # fmt: skip
def album_photos(album_id: int, query: PageQuery) -> PhotoPage:
    user = require_user()
    album = queries.access_album(user, album_id)
    photos, cursor = queries.album_photos(user, album, query.cursor, query.limit)
    return PhotoPage(items=queries.photos_out(photos), next_cursor=cursor)


# --- avatars, banners, storage ------------------------------------------------------------------


def _pending_photo(user: Any, photo_id: int) -> Photo:
    photo = queries.access_photo(user, photo_id)
    if photo.use != PhotoUse.pending or photo.uploader_id != user.id:
        raise validation_problem(
            [
                FieldError(
                    pointer="/photo_id",
                    location="body",
                    message="use a photo you uploaded and have not placed elsewhere",
                )
            ]
        )
    return photo


@operation(
    bp, "/me/avatar", "PUT", summary="Set your avatar", tags=PHOTOS, body=PictureSet,
    response=PhotoOut,
)  # fmt: skip
def set_avatar(body: PictureSet) -> PhotoOut:
    """Upload the photo first (``POST /photos``), then make it your avatar. The previous one
    is deleted."""
    user = require_user()
    photo = _pending_photo(user, body.photo_id)
    actions.do_set_picture(user, photo, PhotoUse.avatar, None)
    db.session.commit()
    return queries.photos_out([photo])[0]


@operation(bp, "/me/avatar", "DELETE", summary="Remove your avatar", tags=PHOTOS, status=204)
def clear_avatar() -> None:
    user = require_user()
    actions.do_clear_picture(user, PhotoUse.avatar, None)
    db.session.commit()


@operation(
    bp,
    "/people/<int:user_id>/avatar/<variant>",
    "GET",
    summary="A person's avatar",
    tags=PHOTOS,
)
def avatar_file(user_id: int, variant: str) -> Response:
    """404 when the person has none (or you may not read their profile)."""
    user = require_user()
    photo = queries.current_picture(PhotoUse.avatar, user_id=user_id)
    if photo is None or not access.can(user, "photo:read", photo):
        raise not_found("avatar")
    return serve(photo, _variant(variant))


@operation(
    bp, "/groups/<int:group_id>/banner", "PUT", summary="Set a group's banner", tags=PHOTOS,
    body=PictureSet, response=PhotoOut,
)  # fmt: skip
def set_banner(group_id: int, body: PictureSet) -> PhotoOut:
    """For the group's owners and admins. Whoever may see the group sees its banner."""
    user = require_user()
    group = access_group(user, group_id)
    access.require(user, "group:manage", group)
    photo = _pending_photo(user, body.photo_id)
    actions.do_set_picture(user, photo, PhotoUse.banner, group)
    db.session.commit()
    return queries.photos_out([photo])[0]


@operation(
    bp,
    "/groups/<int:group_id>/banner",
    "DELETE",
    summary="Remove a group's banner",
    tags=PHOTOS,
    status=204,
)
def clear_banner(group_id: int) -> None:
    user = require_user()
    group = access_group(user, group_id)
    access.require(user, "group:manage", group)
    actions.do_clear_picture(user, PhotoUse.banner, group)
    db.session.commit()


@operation(
    bp,
    "/groups/<int:group_id>/banner/<variant>",
    "GET",
    summary="A group's banner",
    tags=PHOTOS,
)
def banner_file(group_id: int, variant: str) -> Response:
    user = require_user()
    group = access_group(user, group_id)
    photo = queries.current_picture(PhotoUse.banner, group_id=group.id)
    if photo is None or not access.can(user, "photo:read", photo):
        raise not_found("banner")
    return serve(photo, _variant(variant))


@operation(
    bp, "/me/photo-storage", "GET", summary="Your photo storage", tags=PHOTOS,
    response=StorageUse,
)  # fmt: skip
def my_storage() -> StorageUse:
    """How much of your quota your photos take (every size counts)."""
    user = require_user()
    used, photos = queries.storage_use(user)
    return StorageUse(
        used_bytes=used, quota_bytes=current_app.config["PHOTO_QUOTA_BYTES"], photos=photos
    )
