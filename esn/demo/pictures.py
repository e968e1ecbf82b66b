"""Pictures for the demo organisation's albums: abstract, deterministic from the generator,
JPEG with camera-like EXIF (including a GPS position, which the upload pipeline removes)."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageFilter

PALETTES = (
    ((32, 74, 135), (245, 194, 17), (230, 97, 0)),  # evening event
    ((38, 162, 105), (246, 245, 244), (53, 132, 228)),  # outdoors
    ((97, 53, 131), (224, 27, 36), (249, 240, 107)),  # party
    ((94, 92, 100), (192, 191, 188), (255, 163, 72)),  # plant floor
)


def picture(rng: random.Random, size: tuple[int, int] = (1600, 1067)) -> bytes:
    """A soft abstract scene: a sky gradient, hills and a few bright shapes."""
    width, height = size
    sky, ground, accent = rng.choice(PALETTES)
    image = Image.new("RGB", size, sky)
    draw = ImageDraw.Draw(image)
    for y in range(0, height, 8):  # a vertical gradient in bands
        shade = tuple(int(c * (0.55 + 0.45 * y / height)) for c in sky)
        draw.rectangle((0, y, width, y + 8), fill=shade)
    for _ in range(3):  # hills
        top = rng.randint(height // 2, height - height // 6)
        draw.ellipse(
            (rng.randint(-width // 2, width // 2), top, rng.randint(width // 2, width * 3 // 2),
             top + height),
            fill=tuple(max(0, c - rng.randint(0, 60)) for c in ground),
        )  # fmt: skip
    for _ in range(rng.randint(4, 9)):  # lights, balloons, people in the distance
        r = rng.randint(width // 60, width // 14)
        x, y = rng.randint(0, width), rng.randint(0, height)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=accent)
    image = image.filter(ImageFilter.GaussianBlur(2))
    exif = Image.Exif()
    exif[0x010F] = "DemoCam"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, float(rng.randint(0, 59))), 3: "E", 4: (2.0, 21.0, 3.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif.tobytes())
    return out.getvalue()
