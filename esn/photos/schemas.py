"""Shapes of albums and photos."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from esn.accounts.schemas import PersonRef
from esn.api.types import Cursor, Id, Input, LongText, Name, Output
from esn.photos.models import Licence, PhotoUse

CAPTION_MAX = 2000
URL_PATTERN = r"^https?://[^\s]+$"


class PhotoFields(Input):
    """The form fields sent with the file (``multipart/form-data``)."""

    album_id: Id | None = Field(None, description="Put the photo in this album (and its feed).")
    caption: str = Field("", max_length=CAPTION_MAX)
    licence: Licence = Licence.own_work
    attribution: str = Field(
        "",
        max_length=300,
        description="Who took it, or whom it is licensed from (required for `licensed`).",
    )
    licence_url: str = Field("", max_length=500, pattern=r"^$|" + URL_PATTERN)


class PhotoUpdate(Input):
    caption: str | None = Field(None, max_length=CAPTION_MAX)
    licence: Licence | None = None
    attribution: str | None = Field(None, max_length=300)
    licence_url: str | None = Field(None, max_length=500, pattern=r"^$|" + URL_PATTERN)


class PhotoSize(Output):
    url: str
    width: int
    height: int
    bytes: int


class PhotoOut(Output):
    id: int
    uploader: PersonRef
    use: PhotoUse
    album_id: int | None
    post_id: int | None
    group_id: int | None
    caption: str = Field(max_length=CAPTION_MAX)
    licence: Licence
    attribution: str = Field(max_length=300)
    licence_url: str = Field(max_length=500)
    # The line shown with the photo: "Photo: Ada Lovelace", "Licensed from Getty Images"…
    credit: str
    media_type: str
    width: int
    height: int
    frames: int
    created_at: datetime
    # original, large, medium, thumb: each served only after the authorization check.
    sizes: dict[str, PhotoSize]
    comment_count: int = 0
    reaction_count: int = 0


class PhotoPage(Output):
    items: list[PhotoOut]
    next_cursor: str | None


class AlbumCreate(Input):
    title: Name
    description: LongText = ""
    group_id: Id | None = Field(None, description="A group's album; empty: your own.")


class AlbumUpdate(Input):
    title: Name | None = None
    description: LongText | None = None
    cover_photo_id: Id | None = None


class AlbumOut(Output):
    id: int
    title: str = Field(max_length=200)
    description: str
    owner: PersonRef
    group_id: int | None
    cover: PhotoOut | None
    photo_count: int
    created_at: datetime
    updated_at: datetime


class AlbumList(Output):
    items: list[AlbumOut]
    next_cursor: str | None


class AlbumQuery(Input):
    group_id: Id | None = None
    owner_id: Id | None = None
    limit: int = Field(20, ge=1, le=100)
    cursor: Cursor | None = None


class PageQuery(Input):
    limit: int = Field(50, ge=1, le=200)
    cursor: Cursor | None = None


class PictureSet(Input):
    photo_id: Id = Field(description="A photo you uploaded and have not placed yet.")


class StorageUse(Output):
    used_bytes: int
    quota_bytes: int
    photos: int
