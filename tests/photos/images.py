"""Test images built in memory: clean ones with metadata to strip, and hostile ones."""

from __future__ import annotations

import functools
import io
import struct
import zlib

from PIL import Image, ImageCms

GPS_LATITUDE = (48.0, 51.0, 24.0)
COMMENT = b"secret-comment-7f3a"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>xmp-creator-91c2</dc:creator>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)
# What must never appear in a stored file (WebP keeps EXIF in a chunk named "EXIF", without the
# JPEG's "Exif" header).
LEAKS = (b"Exif\x00\x00", b"EXIF", COMMENT, b"xmp-creator-91c2", b"http://ns.adobe.com/xap/1.0/")
# Markers of metadata in the test uploads themselves.
CARRIED = (b"Exif", b"EXIF", b"eXIf", COMMENT, b"xmp-creator-91c2")


def _photo(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Something like a photograph: gradients, so that derivatives differ from a flat fill."""
    image = Image.linear_gradient("L").resize(size)
    other = image.transpose(Image.Transpose.ROTATE_90).resize(size)
    merged = Image.merge("RGB", (image, other, Image.new("L", size, 90)))
    return merged.convert(mode) if mode != "RGB" else merged


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: GPS_LATITUDE, 3: "E", 4: (2.0, 21.0, 3.0)}
    return exif


@functools.cache
def srgb_profile() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return bytes(profile.tobytes())


def jpeg(size: tuple[int, int] = (1600, 1200), *, orientation: int = 1, icc: bool = False) -> bytes:
    """A JPEG with EXIF (GPS position, orientation), XMP and a comment."""
    out = io.BytesIO()
    extra = {"icc_profile": srgb_profile()} if icc else {}
    _photo(size).save(
        out,
        "JPEG",
        exif=exif_with_gps(orientation).tobytes(),
        comment=COMMENT,
        xmp=XMP,
        quality=90,
        **extra,
    )
    return out.getvalue()


def png(size: tuple[int, int] = (800, 600)) -> bytes:
    """A PNG with an eXIf chunk (GPS) and text chunks."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", COMMENT.decode())
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    out = io.BytesIO()
    _photo(size, "RGBA").save(out, "PNG", pnginfo=info, exif=exif_with_gps().tobytes())
    return out.getvalue()


def webp(size: tuple[int, int] = (800, 600)) -> bytes:
    out = io.BytesIO()
    _photo(size).save(out, "WEBP", exif=exif_with_gps().tobytes(), xmp=XMP, quality=80)
    return out.getvalue()


def gif(size: tuple[int, int] = (300, 200), frames: int = 1) -> bytes:
    out = io.BytesIO()
    images = [_photo(size).rotate(i * 30).convert("P") for i in range(frames)]
    images[0].save(
        out,
        "GIF",
        save_all=frames > 1,
        append_images=images[1:],
        duration=80,
        loop=0,
        comment=COMMENT,
    )
    return out.getvalue()


# --- hostile files ------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = 20_000) -> bytes:
    """A complete, valid 1-bit PNG of side x side pixels (400 megapixels by default) that
    compresses to a few tens of kilobytes: decoding it would take ~50 MB and much time."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small, structurally complete JPEG whose frame header declares width x height."""
    data = bytearray(plain_jpeg((64, 48)))
    i = 2
    while True:
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 7] = height.to_bytes(2, "big")
            data[i + 7 : i + 9] = width.to_bytes(2, "big")
            return bytes(data)
        i += 2 + length


def gif_declaring(width: int, height: int) -> bytes:
    """A tiny GIF whose screen and only frame declare width x height."""
    data = bytearray(gif((4, 4)))
    data[6:10] = struct.pack("<HH", width, height)
    index = data.index(b"\x2c", 13)
    data[index + 5 : index + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def noisy_jpeg(size: tuple[int, int], seed: int = 1) -> bytes:
    """Noise compresses badly: a JPEG of a known, large number of bytes per pixel."""
    import random

    pixels = random.Random(seed).randbytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def plain_jpeg(size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    _photo(size).save(out, "JPEG", quality=85)
    return out.getvalue()


HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>"
)
