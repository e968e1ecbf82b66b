"""Every write of albums and photos. Files are written to the store before the transaction
commits (and removed again if it does not); removing files happens after commit, through the
outbox, so that a rolled-back deletion never loses a photo."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select

from esn.accounts.models import User
from esn.api.problems import FieldError, Problem, validation_problem
from esn.clock import now
from esn.extensions import db
from esn.groups.models import Group
from esn.outbox import enqueue, register_handler
from esn.photos.models import Album, Licence, Photo, PhotoFile, PhotoUse
from esn.photos.pipeline import Processed, Refused
from esn.photos.queries import stored_bytes
from esn.photos.storage import new_key, store
from esn.processes import Process
from esn.social import actions as social
from esn.social.models import Post
from esn.usage import kinds
from esn.usage.recorder import record_usage

log = logging.getLogger("esn.photos")

PURGE = "photos.purge"
MAX_PHOTOS_PER_POST = 10
# Uploaded photos that were never placed (in a post, as an avatar…) are removed after this.
PENDING_LIFETIME = timedelta(hours=24)


def _purge(payload: dict[str, Any]) -> None:
    """Remove stored files (idempotent: a missing file is not an error)."""
    target = store()
    for key in payload["keys"]:
        target.delete(key)


register_handler(PURGE, _purge)


def refusal(exc: Refused) -> Problem:
    titles = {413: "Content Too Large", 415: "Unsupported Media Type"}
    return Problem(
        exc.status, titles.get(exc.status, "Unprocessable Content"), exc.detail, kind=exc.kind
    )


def _field_error(field: str, message: str) -> Problem:
    return validation_problem([FieldError(pointer=f"/{field}", location="body", message=message)])


# --- storing files ------------------------------------------------------------------------------


def store_files(processed: Processed) -> dict[str, str]:
    """Write every size under a fresh random key; on any failure nothing stays stored."""
    keys: dict[str, str] = {}
    target = store()
    try:
        for name, variant in processed.variants.items():
            key = new_key()
            target.put(key, variant.data, processed.format.media_type)
            keys[name] = key
    except BaseException:
        discard(keys.values())
        raise
    return keys


def discard(keys: Iterable[str]) -> None:
    """Remove files that no committed row refers to (a failed upload)."""
    target = store()
    for key in keys:
        try:
            target.delete(key)
        except Exception:  # the orphan sweep removes what this could not
            log.exception("could not remove an orphan photo file", extra={"key": key})


def check_quota(uploader: User, adding: int) -> None:
    """Refuse an upload that would take the person over their storage quota. The person's row
    is locked first (PostgreSQL), so two uploads at once cannot both slip under the limit."""
    db.session.execute(select(User.id).where(User.id == uploader.id).with_for_update())
    limit = int(current_app.config["PHOTO_QUOTA_BYTES"])
    used = stored_bytes(uploader.id)
    if used + adding > limit:
        raise Problem(
            409,
            "Conflict",
            f"This photo needs {adding / 1_048_576:.1f} MiB but only "
            f"{max(limit - used, 0) / 1_048_576:.1f} MiB of your {limit / 1_048_576:.0f} MiB "
            "photo storage is left. Delete photos you no longer need, or ask an administrator "
            "for a larger quota.",
            kind="photo-quota-exceeded",
            used_bytes=used,
            quota_bytes=limit,
        )


# --- photos -------------------------------------------------------------------------------------


def _event(kind: kinds.UsageKind, actor: User, photo: Photo, placement: str, **extra: Any) -> None:
    post = db.session.get(Post, photo.post_id) if photo.post_id else None
    record_usage(
        kind,
        actor,
        object_type="photo",
        object_id=photo.id,
        owner_id=photo.uploader_id,
        group_id=photo.group_id,
        process=(post.process if post else Process.general).value,
        thread_root_id=photo.post_id,
        payload={"format": photo.media_type.split("/")[1], "placement": placement, **extra},
    )


def check_photo_fields(fields: dict[str, Any]) -> None:
    if fields.get("licence") == Licence.licensed and not (fields.get("attribution") or "").strip():
        raise _field_error("attribution", "a licensed photo names whom it is licensed from")


def do_add_photo(
    uploader: User,
    processed: Processed,
    keys: dict[str, str],
    fields: dict[str, Any],
    album: Album | None,
) -> Photo:
    """Record an uploaded photo whose files are stored under ``keys``. In an album, the photo
    gets a post of its own (its caption is the post's text): that is where people comment and
    react, and what the album's followers see in their feeds."""
    check_quota(uploader, processed.total_bytes)
    photo = Photo(
        uploader_id=uploader.id,
        use=PhotoUse.pending,
        caption=fields.get("caption") or "",
        licence=fields.get("licence") or Licence.own_work,
        attribution=(fields.get("attribution") or "").strip(),
        licence_url=fields.get("licence_url") or "",
        media_type=processed.format.media_type,
        width=processed.width,
        height=processed.height,
        frames=processed.frames,
        created_at=now(),
    )
    db.session.add(photo)
    db.session.flush()
    db.session.add_all(
        PhotoFile(
            photo_id=photo.id,
            variant=name,
            key=keys[name],
            width=variant.width,
            height=variant.height,
            bytes=len(variant.data),
        )
        for name, variant in processed.variants.items()
    )
    placement = "pending"
    if album is not None:
        group = db.session.get(Group, album.group_id) if album.group_id else None
        post = social.do_create_post(uploader, {"kind": "post", "body": photo.caption}, group)
        photo.use, photo.post_id, photo.group_id = PhotoUse.post, post.id, post.group_id
        photo.album_id = album.id
        album.updated_at = now()
        if album.cover_photo_id is None:
            album.cover_photo_id = photo.id
        placement = "album"
    _event(kinds.PHOTO_UPLOAD, uploader, photo, placement, bytes=processed.total_bytes)
    return photo


def check_attach_photos(author: User, photo_ids: list[int]) -> list[Photo]:
    """The photos a new post may carry: the author's own, uploaded and not yet placed."""
    if len(photo_ids) > MAX_PHOTOS_PER_POST:
        raise _field_error("photo_ids", f"a post carries at most {MAX_PHOTOS_PER_POST} photos")
    if len(set(photo_ids)) != len(photo_ids):
        raise _field_error("photo_ids", "a photo is listed twice")
    if not photo_ids:
        return []
    photos = {
        p.id: p
        for p in db.session.scalars(
            select(Photo).where(
                Photo.id.in_(photo_ids),
                Photo.uploader_id == author.id,
                Photo.use == PhotoUse.pending,
                Photo.deleted_at.is_(None),
            )
        )
    }
    missing = [pid for pid in photo_ids if pid not in photos]
    if missing:
        raise _field_error(
            "photo_ids",
            f"no photo {missing[0]} of yours is waiting to be placed (upload it first; a photo "
            "goes in one post only)",
        )
    return [photos[pid] for pid in photo_ids]


def do_attach_photos(author: User, post: Post, photos: list[Photo]) -> None:
    for position, photo in enumerate(photos):
        photo.use, photo.post_id, photo.group_id = PhotoUse.post, post.id, post.group_id
        photo.position = position
        _event(kinds.PHOTO_PLACE, author, photo, "post")


def do_edit_photo(editor: User, photo: Photo, changes: dict[str, Any]) -> Photo:
    merged = {
        "licence": changes.get("licence", photo.licence),
        "attribution": changes.get("attribution", photo.attribution),
    }
    check_photo_fields(merged)
    for name, value in changes.items():
        setattr(photo, name, value.strip() if name == "attribution" else value)
    if "caption" in changes and photo.album_id is not None and photo.post_id is not None:
        # An album photo's caption is the text of its post.
        post = db.session.get(Post, photo.post_id)
        if post is not None and post.deleted_at is None:
            social.do_edit_post(editor, post, {"body": photo.caption})
    if "caption" in changes:
        # A caption edit records no usage event of its own: the search index is told here.
        from esn.search.indexing import queue as queue_search_index

        queue_search_index({"photo": photo.id})
    return photo


def forget_photo(actor: User, photo: Photo) -> None:
    """Mark the photo deleted and remove its files after commit."""
    if photo.deleted_at is not None:
        return
    photo.deleted_at = now()
    keys = list(db.session.scalars(select(PhotoFile.key).where(PhotoFile.photo_id == photo.id)))
    db.session.execute(delete(PhotoFile).where(PhotoFile.photo_id == photo.id))
    if photo.album_id is not None:
        album = db.session.get(Album, photo.album_id)
        if album is not None and album.cover_photo_id == photo.id:
            album.cover_photo_id = db.session.scalar(
                select(Photo.id)
                .where(Photo.album_id == album.id, Photo.deleted_at.is_(None), Photo.id != photo.id)
                .order_by(Photo.created_at.desc(), Photo.id.desc())
                .limit(1)
            )
    _event(kinds.PHOTO_DELETE, actor, photo, photo.use.value)
    if keys:
        enqueue(PURGE, {"keys": keys})


def do_delete_photo(actor: User, photo: Photo) -> None:
    """An album photo goes with its post (and the post's comments); a photo in a post of
    several is taken out of it; an avatar or banner is simply removed."""
    if photo.album_id is not None and photo.post_id is not None:
        post = db.session.get(Post, photo.post_id)
        if post is not None:
            social.do_delete_post(actor, post)  # which forgets the photo
    forget_photo(actor, photo)


def forget_post_photos(actor: User, post: Post) -> None:
    """Called when a post is deleted (by its author, a manager or a moderator)."""
    for photo in db.session.scalars(
        select(Photo).where(Photo.post_id == post.id, Photo.deleted_at.is_(None))
    ):
        forget_photo(actor, photo)


def do_set_picture(actor: User, photo: Photo, use: PhotoUse, group: Group | None) -> None:
    """Make an uploaded photo the person's avatar (or the group's banner), replacing the one
    before."""
    previous = select(Photo).where(Photo.use == use, Photo.deleted_at.is_(None))
    if use == PhotoUse.avatar:
        previous = previous.where(Photo.uploader_id == actor.id)
    else:
        assert group is not None
        previous = previous.where(Photo.group_id == group.id)
    for old in db.session.scalars(previous):
        forget_photo(actor, old)
    photo.use = use
    photo.group_id = group.id if group else None
    _event(kinds.PHOTO_PLACE, actor, photo, use.value)


def do_clear_picture(actor: User, use: PhotoUse, group: Group | None) -> None:
    current = select(Photo).where(Photo.use == use, Photo.deleted_at.is_(None))
    current = (
        current.where(Photo.group_id == group.id)
        if group
        else current.where(Photo.uploader_id == actor.id)
    )
    for old in db.session.scalars(current):
        forget_photo(actor, old)


def sweep_pending(actor_id: int | None = None) -> int:
    """Forget photos uploaded but never placed within PENDING_LIFETIME. Returns how many."""
    cutoff = now() - PENDING_LIFETIME
    stale = list(
        db.session.scalars(
            select(Photo).where(
                Photo.use == PhotoUse.pending,
                Photo.deleted_at.is_(None),
                Photo.created_at < cutoff,
            )
        )
    )
    for photo in stale:
        uploader = db.session.get(User, photo.uploader_id)
        if uploader is not None:
            forget_photo(uploader, photo)
    return len(stale)


def sweep_orphan_files(older_than: timedelta = timedelta(hours=1)) -> int:
    """Remove stored files no row refers to (left by a process that died between writing the
    files and committing). Only files older than ``older_than`` are touched, so that an upload
    in flight keeps its files."""
    cutoff = now() - older_than
    removed = 0
    target = store()
    batch: list[str] = []

    def flush() -> int:
        known = set(db.session.scalars(select(PhotoFile.key).where(PhotoFile.key.in_(batch))))
        orphans = [key for key in batch if key not in known]
        for key in orphans:
            target.delete(key)
        batch.clear()
        return len(orphans)

    for key, written in target.listing():
        if written < cutoff:
            batch.append(key)
            if len(batch) >= 500:
                removed += flush()
    if batch:
        removed += flush()
    return removed


# --- albums -------------------------------------------------------------------------------------


def do_create_album(owner: User, fields: dict[str, Any], group: Group | None) -> Album:
    title = fields["title"].strip()
    if not title:
        raise _field_error("title", "must not be blank")
    moment = now()
    album = Album(
        title=title,
        description=fields.get("description") or "",
        owner_id=owner.id,
        group_id=group.id if group else None,
        created_at=moment,
        updated_at=moment,
    )
    db.session.add(album)
    db.session.flush()
    record_usage(
        kinds.ALBUM_CREATE,
        owner,
        object_type="album",
        object_id=album.id,
        group_id=album.group_id,
        process=(group.process if group else Process.general).value,
    )
    return album


def do_edit_album(editor: User, album: Album, changes: dict[str, Any]) -> Album:
    if "title" in changes:
        changes["title"] = changes["title"].strip()
        if not changes["title"]:
            raise _field_error("title", "must not be blank")
    if "cover_photo_id" in changes and changes["cover_photo_id"] is not None:
        cover = db.session.get(Photo, changes["cover_photo_id"])
        if cover is None or cover.album_id != album.id or cover.deleted_at is not None:
            raise _field_error("cover_photo_id", "the cover must be a photo of this album")
    for name, value in changes.items():
        setattr(album, name, value)
    album.updated_at = now()
    record_usage(
        kinds.ALBUM_EDIT, editor, object_type="album", object_id=album.id, group_id=album.group_id
    )
    return album


def do_delete_album(actor: User, album: Album) -> None:
    """The album and its photos (with their posts) go together."""
    if album.deleted_at is not None:
        return
    album.deleted_at = now()
    for photo in db.session.scalars(
        select(Photo).where(Photo.album_id == album.id, Photo.deleted_at.is_(None))
    ):
        do_delete_photo(actor, photo)
    record_usage(
        kinds.ALBUM_DELETE,
        actor,
        object_type="album",
        object_id=album.id,
        group_id=album.group_id,
    )
