"""The upload pipeline: bytes in, clean images out. Pure (no Flask, no database).

Every step refuses what it does not understand, in this order:

1. the content is identified from its bytes (never the file name or the declared type) and
   must be one of JPEG, PNG, WebP or GIF;
2. the container is walked structurally: a truncated file, or data after the image's end (a
   polyglot: HTML or a script appended to a valid image), is refused;
3. the file name's extension and the declared type, when given, must agree with the content;
4. the dimensions are read from the header and checked against the pixel limit *before* any
   pixel is decoded (a decompression bomb declares a huge image in a tiny file);
5. the image is decoded, its orientation applied, and it is re-encoded from the pixels alone:
   no EXIF (so no GPS), no XMP, no comments, no text chunks; only the colour profile stays;
6. the derivatives are made from the clean pixels.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from PIL import Image, ImageOps

# Pillow's own bomb check is replaced by ours (``process``: the pixel limit is checked right
# after the header is read and before anything is decoded), which can say what the file declared.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class ImageFormat:
    name: str  # Pillow's format name
    media_type: str
    extensions: frozenset[str]
    suffix: str


JPEG = ImageFormat("JPEG", "image/jpeg", frozenset({".jpg", ".jpeg", ".jpe", ".jfif"}), ".jpg")
PNG = ImageFormat("PNG", "image/png", frozenset({".png"}), ".png")
WEBP = ImageFormat("WEBP", "image/webp", frozenset({".webp"}), ".webp")
GIF = ImageFormat("GIF", "image/gif", frozenset({".gif"}), ".gif")
FORMATS = (JPEG, PNG, WEBP, GIF)
MEDIA_TYPES = {f.media_type: f for f in FORMATS}
# Declared types that say nothing about the content and so cannot contradict it.
NEUTRAL_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})

# The derivatives: the longest side in pixels. The original keeps its size.
SIZES: dict[str, int] = {"large": 2560, "medium": 1280, "thumb": 400}
VARIANTS = ("original", *SIZES)


class Refused(ValueError):
    """The upload is refused; ``status`` and ``kind`` become the API's problem document."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail


def _corrupt(detail: str = "The image data is damaged or incomplete.") -> Refused:
    return Refused(422, "image-corrupt", detail)


def _truncated() -> Refused:
    return _corrupt("The image file is truncated: it ends before the image does.")


@dataclass
class Variant:
    data: bytes
    width: int
    height: int


@dataclass
class Processed:
    format: ImageFormat
    width: int
    height: int
    frames: int
    variants: dict[str, Variant] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(len(v.data) for v in self.variants.values())


# --- 1. identification by content ---------------------------------------------------------------


def sniff(data: bytes) -> ImageFormat | None:
    """The format named by the file's signature, or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    return None


# --- 2. structure: where the image ends, and how many frames it has ------------------------------


def _jpeg_end(data: bytes, start: int = 0) -> int:
    """The offset just after the EOI marker of the JPEG stream that begins at ``start``.

    Marker segments are skipped by their lengths (so a thumbnail inside EXIF does not end the
    walk); entropy-coded data runs to the first marker that is neither a stuffed 0xFF00 nor a
    restart marker."""
    n = len(data)
    if data[start : start + 2] != b"\xff\xd8":
        raise _corrupt()
    i = start + 2
    while True:
        if i >= n:
            raise _truncated()
        if data[i] != 0xFF:
            raise _corrupt()
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            raise _truncated()
        marker = data[i]
        i += 1
        if marker == 0xD9:
            return i
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if i + 2 > n:
            raise _truncated()
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2:
            raise _corrupt()
        i += length
        if marker != 0xDA:
            continue
        while True:  # entropy-coded scan data
            j = data.find(b"\xff", i)
            if j < 0 or j + 1 >= n:
                raise _truncated()
            following = data[j + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                i = j + 2
                continue
            if following == 0xFF:
                i = j + 1
                continue
            i = j
            break


def _jpeg_structure(data: bytes) -> int:
    end = _jpeg_end(data)
    # Cameras store further pictures after the first (CIPA multi-picture format: depth maps,
    # previews). Each must itself be a complete JPEG; anything else after the end is refused.
    while True:
        rest = data[end:].lstrip(b"\x00")
        if not rest:
            return 1
        if not rest.startswith(b"\xff\xd8\xff"):
            raise _trailing()
        end = _jpeg_end(data, len(data) - len(rest))


def _trailing() -> Refused:
    return Refused(
        422,
        "image-trailing-data",
        "The file holds data after the end of the image (another file appended to it). Only "
        "plain images are accepted.",
    )


def _png_structure(data: bytes) -> int:
    i, n, frames = 8, len(data), 1
    while True:
        if i + 12 > n:
            raise _truncated()
        length = int.from_bytes(data[i : i + 4], "big")
        kind, body = data[i + 4 : i + 8], i + 8
        i = body + length + 4  # the chunk's data, then its CRC
        if i > n:
            raise _truncated()
        if kind == b"acTL":  # an animated PNG: the number of frames comes first
            frames = max(1, int.from_bytes(data[body : body + 4], "big"))
        if kind == b"IEND":
            break
    if data[i:].strip(b"\x00"):
        raise _trailing()
    return frames


def _webp_structure(data: bytes) -> int:
    if len(data) < 12:
        raise _truncated()
    size = int.from_bytes(data[4:8], "little")
    if 8 + size > len(data):
        raise _truncated()
    if data[8 + size :].strip(b"\x00"):  # (a RIFF pad byte is a zero)
        raise _trailing()
    frames, i = 0, 12
    while i + 8 <= 8 + size:
        kind = data[i : i + 4]
        length = int.from_bytes(data[i + 4 : i + 8], "little")
        if kind == b"ANMF":
            frames += 1
        i += 8 + length + (length & 1)
    return max(frames, 1)


def _gif_sub_blocks(data: bytes, i: int) -> int:
    n = len(data)
    while True:
        if i >= n:
            raise _truncated()
        size = data[i]
        i += 1 + size
        if size == 0:
            return i


def _gif_structure(data: bytes) -> int:
    n = len(data)
    if n < 13:
        raise _truncated()
    flags = data[10]
    i = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while True:
        if i >= n:
            raise _truncated()
        block = data[i]
        if block == 0x3B:  # trailer
            i += 1
            break
        if block == 0x21:  # extension: label, then sub-blocks
            i = _gif_sub_blocks(data, i + 2)
        elif block == 0x2C:  # image descriptor
            if i + 10 > n:
                raise _truncated()
            local = data[i + 9]
            i += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0)
            i = _gif_sub_blocks(data, i + 1)  # after the LZW minimum code size
            frames += 1
        else:
            raise _corrupt()
    if data[i:].strip(b"\x00"):
        raise _trailing()
    if frames == 0:
        raise _corrupt("The GIF holds no image.")
    return frames


_STRUCTURE = {"JPEG": _jpeg_structure, "PNG": _png_structure, "WEBP": _webp_structure}


def frame_count(fmt: ImageFormat, data: bytes) -> int:
    """Walk the container; refuse truncation and trailing data; return the number of frames."""
    if fmt is GIF:
        return _gif_structure(data)
    return _STRUCTURE[fmt.name](data)


# --- 3. the name and the declared type must not contradict the content ---------------------------


def check_claims(fmt: ImageFormat, filename: str | None, declared_type: str | None) -> None:
    suffix = PurePosixPath((filename or "").replace("\\", "/")).suffix.lower()
    if suffix and suffix not in fmt.extensions:
        raise Refused(
            422,
            "image-type-mismatch",
            f"The file is named {suffix!r} but its content is a {fmt.name} image; rename it "
            f"to {fmt.suffix} and upload it again.",
        )
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared not in NEUTRAL_TYPES and declared != fmt.media_type:
        raise Refused(
            422,
            "image-type-mismatch",
            f"The upload was declared as {declared!r} but its content is {fmt.media_type}.",
        )


# --- 4 to 6. check, decode, clean, derive --------------------------------------------------------


def _open(fmt: ImageFormat, data: bytes) -> Image.Image:
    """Read the header only (Pillow decodes on ``load``), with the one decoder for ``fmt``."""
    try:
        return Image.open(io.BytesIO(data), formats=[fmt.name])
    except Exception as exc:  # whatever a decoder raises on a hostile file is the file's fault
        raise _corrupt() from exc


def _too_many_pixels(width: int, height: int, limit: int) -> Refused:
    return Refused(
        422,
        "image-too-large",
        f"The image declares {width} x {height} pixels ({width * height / 1_000_000:.0f} "
        f"megapixels); the limit is {limit / 1_000_000:g} megapixels.",
    )


def _frames(image: Image.Image, count: int) -> Iterator[tuple[Image.Image, int]]:
    for index in range(count):
        image.seek(index)
        yield image.copy(), int(image.info.get("duration", 100))


def _clean(image: Image.Image, fmt: ImageFormat) -> Image.Image:
    """The decoded pixels, upright, in a mode the output format can hold, without metadata.
    The image is turned in place: a 12-megapixel photo is 36 MB of pixels, and a second full
    copy would be the largest allocation of the whole upload."""
    ImageOps.exif_transpose(image, in_place=True)
    icc = image.info.get("icc_profile")
    if fmt is JPEG:
        if image.mode not in ("RGB", "L"):
            # A CMYK profile does not describe the RGB pixels any more.
            icc = icc if image.mode not in ("CMYK", "YCbCr") else None
            image = image.convert("RGB")
    elif fmt is WEBP:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert(
                "RGBA" if "A" in image.mode or "transparency" in image.info else "RGB"
            )
    elif fmt is PNG:
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I"):
            image = image.convert("RGBA")
    elif image.mode not in ("P", "L"):  # GIF
        image = image.convert("P")
    transparency = image.info.get("transparency") if image.mode in ("P", "L", "RGB") else None
    image.info.clear()  # EXIF, XMP, comments, text chunks: gone
    if icc:
        image.info["icc_profile"] = icc
    if transparency is not None and fmt in (PNG, GIF):
        image.info["transparency"] = transparency
    return image


def _encode(image: Image.Image, fmt: ImageFormat, *, original: bool, **extra: Any) -> bytes:
    out = io.BytesIO()
    options: dict[str, Any] = {"icc_profile": image.info.get("icc_profile")}
    if "transparency" in image.info:
        options["transparency"] = image.info["transparency"]
    if fmt is JPEG:
        # Baseline: progressive encoding costs six times as much (85 against 14 ms for the
        # large size of a 12-megapixel photo) for a few per cent fewer bytes.
        options.update(quality=90 if original else 82)
    elif fmt is WEBP:
        options.update(quality=90 if original else 82, method=4)
    elif fmt is PNG:
        options.update(compress_level=6)
    options = {k: v for k, v in options.items() if v is not None}
    options.update(extra)
    # Saved with exactly these options: the encoder writes no EXIF, XMP or comment of its own.
    image.save(out, format=fmt.name, **options)
    return out.getvalue()


def _scaled(image: Image.Image, longest: int) -> Image.Image:
    """``image`` fitted into ``longest`` x ``longest`` (itself when it fits already).

    From a full-size photo, bicubic (130 ms for 12 megapixels to 2560 px, against 178 for
    Lanczos); halving exactly, a 2 x 2 box average (5 ms, against 62); otherwise Lanczos."""
    width, height = image.size
    scale = longest / max(width, height)
    if scale >= 1:
        return image
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if (width, height) == (target[0] * 2, target[1] * 2):
        return image.reduce(2)
    big = width * height > 4_000_000
    resample = Image.Resampling.BICUBIC if big else Image.Resampling.LANCZOS
    return image.resize(target, resample, reducing_gap=2.0)


def process(
    data: bytes,
    *,
    filename: str | None = None,
    declared_type: str | None = None,
    max_pixels: int = 50_000_000,
    max_frames: int = 300,
) -> Processed:
    """Check, decode and re-encode an upload; raise ``Refused`` for anything unacceptable."""
    if not data:
        raise Refused(422, "image-empty", "The file is empty.")
    fmt = sniff(data)
    if fmt is None:
        raise Refused(
            415,
            "unsupported-image-type",
            "Only JPEG, PNG, WebP and GIF images are accepted, and this file's content is none "
            "of them (SVG and other documents are refused whatever their name).",
        )
    frames = frame_count(fmt, data)
    check_claims(fmt, filename, declared_type)
    image = _open(fmt, data)
    width, height = image.size
    if width < 1 or height < 1:
        raise _corrupt()
    if width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)
    if frames > 1 and (frames > max_frames or frames * width * height > max_pixels):
        raise Refused(
            422,
            "image-too-large",
            f"The animation has {frames} frames of {width} x {height}; at most {max_frames} "
            f"frames and {max_pixels / 1_000_000:g} megapixels in all are accepted.",
        )
    try:
        if frames > 1:
            stills = list(_frames(image, frames))
            first = _clean(stills[0][0], fmt)
            rest = [_clean(frame, fmt) for frame, _ in stills[1:]]
            original = _encode(
                first,
                fmt,
                original=True,
                save_all=True,
                append_images=rest,
                duration=[duration for _, duration in stills],
                loop=int(image.info.get("loop", 0)),
            )
            del rest, stills
        else:
            image.load()
            first = _clean(image, fmt)
            original = _encode(first, fmt, original=True)
        result = Processed(fmt, first.width, first.height, frames)
        result.variants["original"] = Variant(original, first.width, first.height)
        source = first
        for name, longest in SIZES.items():  # largest first: each made from the one before
            source = _scaled(source, longest)
            result.variants[name] = Variant(_encode(source, fmt, original=False), *source.size)
    except MemoryError:
        raise
    except Exception as exc:  # (struct.error, IndexError… from damaged metadata, as well)
        raise _corrupt() from exc
    finally:
        image.close()
    return result
