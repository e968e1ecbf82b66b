"""Reading albums and photos, always through the access policy."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from esn import access
from esn.accounts.models import User
from esn.api.pagination import decode_cursor, encode_cursor
from esn.api.problems import Problem, not_found
from esn.extensions import db
from esn.photos.models import Album, Licence, Photo, PhotoFile, PhotoUse
from esn.photos.schemas import AlbumOut, PhotoOut, PhotoSize
from esn.social.models import Post
from esn.social.queries import people_refs

VARIANT_ORDER = ("original", "large", "medium", "thumb")


def access_photo(user: User, photo_id: int) -> Photo:
    """The photo if ``user`` may see it; 404 otherwise (never 403: existence is private)."""
    photo = db.session.get(Photo, photo_id)
    if photo is None or not access.can(user, "photo:read", photo):
        raise not_found("photo")
    return photo


def access_album(user: User, album_id: int) -> Album:
    album = db.session.get(Album, album_id)
    if album is None or not access.can(user, "album:read", album):
        raise not_found("album")
    return album


def credit(photo: Photo, uploader_name: str) -> str:
    who = photo.attribution or uploader_name
    match photo.licence:
        case Licence.company:
            return "Company-owned" + (f" · {photo.attribution}" if photo.attribution else "")
        case Licence.licensed:
            return f"Licensed from {photo.attribution}"
    return f"Photo: {who}"


def photo_url(photo_id: int, variant: str) -> str:
    return f"/api/v1/photos/{photo_id}/{variant}"


def photos_out(photos: list[Photo]) -> list[PhotoOut]:
    """The API shape of photos the reader may see (the caller has filtered them)."""
    if not photos:
        return []
    ids = [p.id for p in photos]
    files: dict[int, dict[str, PhotoSize]] = {}
    for f in db.session.scalars(select(PhotoFile).where(PhotoFile.photo_id.in_(ids))):
        files.setdefault(f.photo_id, {})[f.variant] = PhotoSize(
            url=photo_url(f.photo_id, f.variant), width=f.width, height=f.height, bytes=f.bytes
        )
    post_ids = [p.post_id for p in photos if p.post_id is not None]
    counts: dict[int, tuple[int, int]] = {}
    if post_ids:
        counts = {
            pid: (c, r)
            for pid, c, r in db.session.execute(
                select(Post.id, Post.comment_count, Post.reaction_count).where(
                    Post.id.in_(post_ids)
                )
            ).tuples()
        }
    people = people_refs({p.uploader_id for p in photos})
    out = []
    for p in photos:
        # An album photo's thread is its own post; a photo in a post of several shares it.
        thread = p.post_id if p.album_id is not None else None
        comments, reactions = counts.get(thread, (0, 0)) if thread is not None else (0, 0)
        sizes = files.get(p.id, {})
        out.append(
            PhotoOut(
                id=p.id,
                uploader=people[p.uploader_id],
                use=p.use,
                album_id=p.album_id,
                post_id=p.post_id,
                group_id=p.group_id,
                caption=p.caption,
                licence=p.licence,
                attribution=p.attribution,
                licence_url=p.licence_url,
                credit=credit(p, people[p.uploader_id].display_name),
                media_type=p.media_type,
                width=p.width,
                height=p.height,
                frames=p.frames,
                created_at=p.created_at,
                sizes={v: sizes[v] for v in VARIANT_ORDER if v in sizes},
                comment_count=comments,
                reaction_count=reactions,
            )
        )
    return out


def post_photos(post_ids: Iterable[int]) -> dict[int, list[PhotoOut]]:
    """The photos of posts the reader may read (the caller checked the posts), in order."""
    ids = list(post_ids)
    if not ids:
        return {}
    photos = list(
        db.session.scalars(
            select(Photo)
            .where(Photo.post_id.in_(ids), Photo.deleted_at.is_(None), Photo.use == PhotoUse.post)
            .order_by(Photo.post_id, Photo.position, Photo.id)
        )
    )
    grouped: dict[int, list[PhotoOut]] = {}
    for photo, shaped in zip(photos, photos_out(photos), strict=True):
        assert photo.post_id is not None
        grouped.setdefault(photo.post_id, []).append(shaped)
    return grouped


def _page_key(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    stamp, ident = decode_cursor(cursor, (str, int))
    try:
        return datetime.fromisoformat(stamp), ident
    except ValueError:
        raise Problem(
            400, "Bad Request", "The cursor is not valid.", kind="invalid-cursor"
        ) from None


def album_photos(
    user: User, album: Album, cursor: str | None, limit: int
) -> tuple[list[Photo], str | None]:
    """An album's photos the reader may see, newest first."""
    stmt = select(Photo).where(Photo.album_id == album.id, access.visible_photos(user))
    key = _page_key(cursor)
    if key is not None:
        stmt = stmt.where(
            (Photo.created_at < key[0]) | ((Photo.created_at == key[0]) & (Photo.id < key[1]))
        )
    rows = list(
        db.session.scalars(stmt.order_by(Photo.created_at.desc(), Photo.id.desc()).limit(limit + 1))
    )
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id)


def albums_out(user: User, albums: list[Album]) -> list[AlbumOut]:
    if not albums:
        return []
    ids = [a.id for a in albums]
    counts = dict(
        db.session.execute(
            select(Photo.album_id, func.count())
            .where(Photo.album_id.in_(ids), access.visible_photos(user))
            .group_by(Photo.album_id)
        )
        .tuples()
        .all()
    )
    cover_ids = [a.cover_photo_id for a in albums if a.cover_photo_id is not None]
    covers = {
        p.id: p
        for p in db.session.scalars(
            select(Photo).where(Photo.id.in_(cover_ids), access.visible_photos(user))
        )
    }
    shaped = dict(zip(covers, photos_out(list(covers.values())), strict=True))
    people = people_refs({a.owner_id for a in albums})
    return [
        AlbumOut(
            id=a.id,
            title=a.title,
            description=a.description,
            owner=people[a.owner_id],
            group_id=a.group_id,
            cover=shaped.get(a.cover_photo_id) if a.cover_photo_id else None,
            photo_count=counts.get(a.id, 0),
            created_at=a.created_at,
            updated_at=a.updated_at,
        )
        for a in albums
    ]


def list_albums(
    user: User, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[Album], str | None]:
    stmt = select(Album).where(access.visible_albums(user))
    if filters.get("group_id") is not None:
        stmt = stmt.where(Album.group_id == filters["group_id"])
    if filters.get("owner_id") is not None:
        stmt = stmt.where(Album.owner_id == filters["owner_id"], Album.group_id.is_(None))
    key = _page_key(cursor)
    if key is not None:
        stmt = stmt.where(
            (Album.updated_at < key[0]) | ((Album.updated_at == key[0]) & (Album.id < key[1]))
        )
    rows = list(
        db.session.scalars(stmt.order_by(Album.updated_at.desc(), Album.id.desc()).limit(limit + 1))
    )
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].updated_at.isoformat(), rows[-1].id)


def current_picture(
    use: PhotoUse, *, user_id: int | None = None, group_id: int | None = None
) -> Photo | None:
    """A person's avatar (``user_id``) or a group's banner (``group_id``), if any."""
    stmt = select(Photo).where(Photo.use == use, Photo.deleted_at.is_(None))
    if user_id is not None:
        stmt = stmt.where(Photo.uploader_id == user_id)
    else:
        stmt = stmt.where(Photo.group_id == group_id)
    newest = stmt.order_by(Photo.created_at.desc(), Photo.id.desc()).limit(1)
    return db.session.scalars(newest).first()


def avatar_url(user_id: int) -> str | None:
    """Where a person's avatar is served (after the access check), if they have one."""
    found = db.session.scalar(
        select(Photo.id)
        .where(Photo.use == PhotoUse.avatar, Photo.uploader_id == user_id)
        .where(Photo.deleted_at.is_(None))
        .limit(1)
    )
    return f"/api/v1/people/{user_id}/avatar/thumb" if found is not None else None


def file_of(photo: Photo, variant: str) -> PhotoFile | None:
    return db.session.get(PhotoFile, (photo.id, variant))


def stored_bytes(user_id: int) -> int:
    """What the person's photos take in the store, every size counted."""
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(PhotoFile.bytes), 0))
            .join(Photo, Photo.id == PhotoFile.photo_id)
            .where(Photo.uploader_id == user_id)
        )
        or 0
    )


def storage_use(user: User) -> tuple[int, int]:
    photos = db.session.scalar(
        select(func.count()).where(Photo.uploader_id == user.id, Photo.deleted_at.is_(None))
    )
    return stored_bytes(user.id), int(photos or 0)
