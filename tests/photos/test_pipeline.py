"""The pipeline alone: whatever bytes arrive, ``process`` returns clean images or raises
``Refused`` (a 4xx) — never another exception (a 500). Damaged files are made by cutting,
flipping and appending bytes of valid ones."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esn.photos import pipeline
from esn.photos.pipeline import Refused
from tests.photos import images


@functools.cache
def samples() -> dict[str, bytes]:
    return {
        "jpeg": images.jpeg((320, 240)),
        "png": images.png((160, 120)),
        "webp": images.webp((160, 120)),
        "gif": images.gif((80, 60), frames=2),
    }


def outcome(data: bytes) -> str:
    try:
        result = pipeline.process(data, max_pixels=4_000_000)
    except Refused as exc:
        assert 400 <= exc.status < 500 and exc.detail
        return exc.kind
    for variant in result.variants.values():
        for leak in images.LEAKS:
            assert leak not in variant.data
    return "accepted"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["jpeg", "png", "webp", "gif"]),
    # Half the time whole files with bytes flipped inside: those reach the decoder.
    cut=st.one_of(st.just(1.0), st.floats(0, 1)),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6),
    tail=st.one_of(st.just(b""), st.binary(max_size=40)),
)
def test_damaged_images_are_refused_or_cleaned_never_an_error(
    kind: str, cut: float, flips: list[tuple[float, int]], tail: bytes
) -> None:
    data = bytearray(samples()[kind])
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    damaged = bytes(data[: max(1, int(cut * len(data)))]) + tail
    outcome(damaged)


@pytest.mark.parametrize("kind", ["jpeg", "png", "webp", "gif"])
def test_every_cut_short_of_the_end_is_refused(kind: str) -> None:
    data = samples()[kind]
    step = max(1, len(data) // 97)
    for end in range(1, len(data) - 1, step):
        assert outcome(data[:end]) != "accepted", end


def test_a_camera_file_with_further_pictures_after_the_first_is_accepted() -> None:
    # The CIPA multi-picture format stores e.g. a depth map as a second JPEG after the first.
    camera = images.jpeg((320, 240)) + images.plain_jpeg((64, 48))
    assert outcome(camera) == "accepted"
    assert outcome(camera + images.HTML) == "image-trailing-data"
    assert outcome(images.jpeg((320, 240)) + b"\x00" * 64) == "accepted"  # padding


def test_claims_are_checked_against_the_content() -> None:
    data = samples()["png"]
    assert (
        pipeline.process(data, filename="scan.PNG", declared_type="image/png").format.name == "PNG"
    )
    assert pipeline.process(data, filename="scan", declared_type="application/octet-stream")
    for name, declared in (("scan.jpg", None), ("scan.png", "image/gif"), ("a.png.exe", None)):
        with pytest.raises(Refused) as refused:
            pipeline.process(data, filename=name, declared_type=declared)
        assert refused.value.kind == "image-type-mismatch"


def test_animation_limits() -> None:
    many = images.gif((40, 30), frames=12)
    assert pipeline.process(many, max_frames=12).frames == 12
    with pytest.raises(Refused) as refused:
        pipeline.process(many, max_frames=11)
    assert refused.value.kind == "image-too-large"
    with pytest.raises(Refused):
        pipeline.process(many, max_pixels=40 * 30 * 11)
