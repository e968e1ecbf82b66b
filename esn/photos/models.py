"""Albums, photos and the stored files of each photo (the cleaned original and derivatives)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from esn.clock import now
from esn.database import BigId, UTCDateTime, enum_column
from esn.extensions import Base


class PhotoUse(enum.StrEnum):
    """Where a photo is shown, which decides who may see it."""

    pending = "pending"  # uploaded, not yet placed: only its uploader sees it
    post = "post"  # in a post (an album photo has a post of its own): the post's readers
    avatar = "avatar"  # its uploader's picture: whoever may read the profile
    banner = "banner"  # a group's banner: whoever may see the group


class Licence(enum.StrEnum):
    own_work = "own_work"  # taken by the uploader (or the person named in attribution)
    company = "company"  # owned by the organisation
    licensed = "licensed"  # licensed from a third party, named in attribution


class Album(Base):
    """A person's album (``group_id`` null) or a group's album."""

    __tablename__ = "albums"
    __table_args__ = (
        Index("ix_albums_group", "group_id", "created_at"),
        Index("ix_albums_owner", "owner_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    cover_photo_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (
        Index("ix_photos_album", "album_id", "created_at", "id"),
        Index("ix_photos_uploader_use", "uploader_id", "use", "created_at"),
        Index("ix_photos_group_use", "group_id", "use", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    use: Mapped[PhotoUse] = mapped_column(enum_column(PhotoUse, "photo_use"))
    album_id: Mapped[int | None] = mapped_column(ForeignKey("albums.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), index=True
    )
    # The post's group (a copy, for listings), or the group of a banner.
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)  # order within a post
    caption: Mapped[str] = mapped_column(String(2000), default="")
    licence: Mapped[Licence] = mapped_column(
        enum_column(Licence, "licence"), default=Licence.own_work
    )
    # Who took it or whom it is licensed from ("Ada Lovelace", "Getty Images, #12345").
    attribution: Mapped[str] = mapped_column(String(300), default="")
    licence_url: Mapped[str] = mapped_column(String(500), default="")
    media_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PhotoFile(Base):
    """One stored file: the cleaned original or a derivative, under a random key."""

    __tablename__ = "photo_files"

    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    variant: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
