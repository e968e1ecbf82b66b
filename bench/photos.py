"""Benchmark of photo uploads: a 12-megapixel JPEG through the upload pipeline and through
POST /api/v1/photos under the production server, next to the floor (Pillow's own decode and
encode of the same image).

    .venv/bin/python bench/photos.py [--duration 20] [--clients 2] [--seed 2026]
        [--servers 1x2,2x1] [--warmup 5] [--runs 6]

The image is generated from ``--seed``: 4000 x 3000 pixels of gradients, soft shapes, texture
at several scales and sensor noise, saved at quality 92 (about 4 MB, as a phone camera's
photo), with EXIF naming the camera, the time, a GPS position and orientation 6 (the phone was
held upright: the stored pixels are on their side).

In process (no HTTP, database or storage):

(a) the floor: ``Image.open`` + ``load()`` + ``save`` as JPEG quality 90 of the same bytes, the
    least any re-encoding upload could cost; one thread alone, then ``--clients`` threads at
    once, then ``--clients`` processes at once (Pillow releases the GIL while decoding and
    resizing, but not while encoding into memory, so threads of one process do not add up to
    the machine's cores);
(b) ``pipeline.process`` (check, decode, orient, strip, re-encode the original, three
    derivatives), the same way; then the time of each of its steps, and of a few alternatives;
(c) the peak memory of one call of each in a fresh process: the rise of the peak resident set
    (VmHWM, reset right before the call; ``ru_maxrss`` would carry the parent's peak).

End to end, for each ``--servers`` setting (``WORKERSxTHREADS``, gunicorn gthread on 127.0.0.1
with ``ESN_OUTBOX_DISPATCH=off``, a fresh SQLite database migrated to head, one person with an
API token, the upload rate limit and the storage quota raised out of the way): ``--clients``
clients upload the image again and again (multipart/form-data with a caption, a new connection
per upload, as many people each uploading once would) for ``--duration`` seconds after a
``--warmup``, and the benchmark prints uploads per second, p50 and p99 latency, the server's
CPU time per upload, and the server's peak memory per upload: the rise of a worker's peak
resident set during the load (VmHWM, reset after the warm-up) over its resident set when idle
after the warm-up, and over its resident set when the server was ready, divided by the
uploads the worker had in flight at once. It checks that every upload answered 201, that
every size of every upload was stored, and that the stored original (read back through GET
/api/v1/photos/<id>/original) is upright and holds no EXIF.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import multiprocessing
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import PIL
from PIL import ExifTags, Image, ImageChops, ImageDraw, ImageFilter, features

from bench.feed import cpu_seconds, make_app, migrate, server
from esn.extensions import db
from esn.photos import pipeline

ROOT = Path(__file__).resolve().parent.parent
UPLOAD = "/api/v1/photos"
WIDTH, HEIGHT = 4000, 3000
FILENAME = "IMG_2026.jpg"
MB = 1_000_000


# --- the image --------------------------------------------------------------------------------


def make_jpeg(seed: int, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A photographic-looking JPEG, the same bytes for the same seed (and libjpeg)."""
    rng = random.Random(seed)

    def noise(w: int, h: int, mode: str = "RGB") -> Image.Image:
        """Random pixels at a coarse size, smoothly enlarged: detail at one scale."""
        coarse = Image.frombytes(mode, (w, h), rng.randbytes(w * h * len(mode)))
        return coarse.resize((width, height), Image.Resampling.BICUBIC)

    # Sky above, ground below, tinted; large soft colour variations over it.
    grad = Image.linear_gradient("L").resize((width, height), Image.Resampling.BICUBIC)
    image = Image.merge("RGB", (
        grad.point(lambda v: 150 + v // 4 - (v > 120) * 90),
        grad.point(lambda v: 180 - v // 5 - (v > 120) * 40),
        grad.point(lambda v: 235 - v // 2 - (v > 120) * 40),
    ))  # fmt: skip
    image = Image.blend(image, noise(6, 5), 0.25)
    # Objects: shapes in muted colours with slightly soft edges.
    shapes = image.copy()
    draw = ImageDraw.Draw(shapes)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height // 3, height)
        rx, ry = rng.randrange(40, 600), rng.randrange(40, 500)
        base = rng.randrange(40, 200)
        colour = tuple(max(0, min(255, base + rng.randrange(-40, 40))) for _ in range(3))
        box = (x - rx, y - ry, x + rx, y + ry)
        if rng.random() < 0.6:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    image = Image.blend(image, shapes.filter(ImageFilter.GaussianBlur(2)), 0.8)
    # Texture (foliage, gravel, fabric): luminance detail at three scales, more towards the
    # ground, as in a landscape.
    texture = noise(250, 188, "L")
    texture = Image.blend(texture, noise(1000, 750, "L"), 0.5)
    texture = Image.blend(texture, noise(2000, 1500, "L"), 0.4)
    flat = Image.new("L", (width, height), 128)
    texture = Image.composite(texture, flat, grad.point(lambda v: min(255, v * 2)))
    texture = texture.point([max(0, min(255, 128 + round((v - 128) * 0.7))) for v in range(256)])
    image = ImageChops.add(image, Image.merge("RGB", (texture,) * 3), 1.0, -128)
    # Sensor noise, a few levels either way in every pixel.
    grain = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    grain = grain.point([128 + round((v - 127.5) * 4 / 128) for v in range(256)])
    image = ImageChops.add(image, Image.merge("RGB", (grain,) * 3), 1.0, -128)

    out = io.BytesIO()
    image.save(out, format="JPEG", quality=92, exif=camera_exif())
    return out.getvalue()


def camera_exif() -> Image.Exif:
    """What a phone writes: make, model, times, a GPS position, and the orientation."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Benchmark"
    exif[ExifTags.Base.Model] = "Phone 12 MP"
    exif[ExifTags.Base.Orientation] = 6  # held upright: show the pixels turned 90° clockwise
    exif[ExifTags.Base.DateTime] = "2026:03:14 15:09:26"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2026:03:14 15:09:26"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 0.0, 42.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 21.0, 36.25)
    return exif


def describe(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        assert image.size == (WIDTH, HEIGHT) and gps and exif.get(ExifTags.Base.Orientation) == 6
        digest = hashlib.sha256(data).hexdigest()[:12]
        return (f"{image.size[0]} x {image.size[1]} JPEG, {len(data) / MB:.2f} MB, EXIF with "
                f"GPS and orientation 6, sha256 {digest}")  # fmt: skip


# --- in process --------------------------------------------------------------------------------


def floor(data: bytes) -> bytes:
    """The least a re-encoding upload costs: decode, then encode once at quality 90."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def full(data: bytes) -> pipeline.Processed:
    return pipeline.process(data, filename=FILENAME, declared_type="image/jpeg")


KINDS: dict[str, Callable[[bytes], object]] = {"floor": floor, "pipeline": full}


def _batch(kind: str, data: bytes, runs: int) -> list[float]:
    """Seconds per image of ``runs`` images, one after the other."""
    fn, took = KINDS[kind], []
    for _ in range(runs):
        started = time.perf_counter()
        fn(data)
        took.append(time.perf_counter() - started)
    return took


_WORKER_DATA = b""


def _worker_init(data: bytes) -> None:
    global _WORKER_DATA  # one image per worker process, given once
    _WORKER_DATA = data


def _worker_batch(kind: str, runs: int) -> list[float]:
    return _batch(kind, _WORKER_DATA, runs)


@dataclass
class Concurrent:
    rate: float  # images per second, all of them together
    ms: float  # median per image meanwhile

    @classmethod
    def of(cls, batches: list[list[float]], wall: float) -> Concurrent:
        times = [t for batch in batches for t in batch]
        return cls(rate=len(times) / wall, ms=statistics.median(times) * 1000)


@dataclass
class InProcess:
    one_ms: float  # median per image, one thread alone
    threads: Concurrent  # n threads of one process at once (as a gthread worker's threads)
    processes: Concurrent  # n processes at once (as gunicorn's workers)

    @property
    def best(self) -> Concurrent:
        return max(self.threads, self.processes, key=lambda c: c.rate)


def in_process(kind: str, data: bytes, runs: int, n: int) -> InProcess:
    """``kind`` alone, then in ``n`` threads at once, then in ``n`` processes at once."""
    _batch(kind, data, 1)  # warm-up: libjpeg's tables, Pillow's allocator
    one = _batch(kind, data, runs)
    with ThreadPoolExecutor(n) as pool:
        started = time.perf_counter()
        batches = list(pool.map(lambda _: _batch(kind, data, runs), range(n)))
        threads = Concurrent.of(batches, time.perf_counter() - started)
    with multiprocessing.Pool(n, initializer=_worker_init, initargs=(data,)) as procs:
        procs.starmap(_worker_batch, [(kind, 1)] * n, chunksize=1)  # warm-up
        started = time.perf_counter()
        batches = procs.starmap(_worker_batch, [(kind, runs)] * n, chunksize=1)
        processes = Concurrent.of(batches, time.perf_counter() - started)
    return InProcess(statistics.median(one) * 1000, threads, processes)


def _timed(times: dict[str, list[float]], label: str, fn: Callable[[], object]) -> object:
    started = time.perf_counter()
    result = fn()
    times.setdefault(label, []).append((time.perf_counter() - started) * 1000)
    return result


def steps(data: bytes, runs: int) -> dict[str, float]:
    """Median ms of each step of ``pipeline.process``, calling its parts in its order."""
    times: dict[str, list[float]] = {}
    jpeg = pipeline.JPEG
    for _ in range(runs + 1):  # the first is a warm-up, dropped below
        _timed(times, "check: sniff, walk the structure, name and type", lambda: (
            pipeline.sniff(data), pipeline.frame_count(jpeg, data),
            pipeline.check_claims(jpeg, FILENAME, "image/jpeg"),
        ))  # fmt: skip
        image = pipeline._open(jpeg, data)
        _timed(times, "decode 4000 x 3000", image.load)
        first = _timed(times, "orient (turn 90°) and drop the metadata",
                       partial(pipeline._clean, image, jpeg))  # fmt: skip
        assert isinstance(first, Image.Image)
        _timed(times, "encode the original (quality 90)",
               partial(pipeline._encode, first, jpeg, original=True))  # fmt: skip
        source = first
        for name, longest in pipeline.SIZES.items():
            before = f"{source.width} x {source.height}"
            scaled = _timed(times, f"{name}: resize {before}",
                            partial(pipeline._scaled, source, longest))  # fmt: skip
            assert isinstance(scaled, Image.Image)
            source = scaled
            _timed(times, f"{name}: encode {source.width} x {source.height} (baseline, 82)",
                   partial(pipeline._encode, source, jpeg, original=False))  # fmt: skip
        image.close()  # (the cleaned image is the decoded one, turned in place)
    return {label: statistics.median(ms[1:]) for label, ms in times.items()}


def alternatives(data: bytes, runs: int) -> list[tuple[str, float, float]]:
    """(what, its ms, the ms of the steps it would replace): measured, not implemented."""
    jpeg = pipeline.JPEG
    image = pipeline._open(jpeg, data)
    image.load()
    first = pipeline._clean(image, jpeg)  # turned in place: ``image`` stays open
    sizes = [first]
    for longest in pipeline.SIZES.values():
        sizes.append(pipeline._scaled(sizes[-1], longest))
    large, medium = sizes[1], sizes[2]

    def median_ms(fn: Callable[[], object]) -> float:
        fn()
        out = []
        for _ in range(runs):
            started = time.perf_counter()
            fn()
            out.append((time.perf_counter() - started) * 1000)
        return statistics.median(out)

    large_px = pipeline.SIZES["large"]
    return [
        ("(before) the three derivatives encoded progressive instead of baseline",
         median_ms(lambda: [pipeline._encode(s, jpeg, original=False, progressive=True)
                       for s in sizes[1:]]),
         median_ms(lambda: [pipeline._encode(s, jpeg, original=False) for s in sizes[1:]])),
        ("(before) medium from large by Lanczos instead of reduce(2)",
         median_ms(lambda: large.resize(medium.size, Image.Resampling.LANCZOS)),
         median_ms(lambda: pipeline._scaled(large, pipeline.SIZES["medium"]))),
        ("(before) large from full size by Lanczos instead of bicubic",
         median_ms(lambda: first.resize(large.size, Image.Resampling.LANCZOS)),
         median_ms(lambda: pipeline._scaled(first, large_px))),
        ("decode at 1/2 in the JPEG decoder (draft: 2000 x 1500) instead of full size + "
         "resize to large", median_ms(lambda: _decode(data, 2)),
         median_ms(lambda: _decode(data)) + median_ms(lambda: pipeline._scaled(first, large_px))),
        ("decode at 1/8 (draft: 500 x 375) and resize for the thumbnail, instead of from medium",
         median_ms(lambda: pipeline._scaled(_decode(data, 8), pipeline.SIZES["thumb"])),
         median_ms(lambda: pipeline._scaled(medium, pipeline.SIZES["thumb"]))),
        ("copy the JPEG without its APPn/COM segments instead of re-encoding the original",
         median_ms(lambda: _strip_segments(data)),
         median_ms(lambda: pipeline._encode(first, jpeg, original=True))),
    ]  # fmt: skip


def _decode(data: bytes, scale: int = 1) -> Image.Image:
    """The image, decoded at 1/``scale`` of its size by the JPEG decoder itself (draft)."""
    image = Image.open(io.BytesIO(data))
    if scale > 1:
        image.draft("RGB", (WIDTH // scale, HEIGHT // scale))
    image.load()
    return image


def _strip_segments(data: bytes) -> bytes:
    """The JPEG without its EXIF, XMP and other application segments and comments (the ICC
    profile and the scan data unchanged): what a lossless metadata strip costs. A sketch for
    the timing only: it keeps no orientation."""
    out, i = bytearray(data[:2]), 2
    while True:
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:
            out += data[i:]
            return bytes(out)
        if not (marker == 0xE1 or 0xE3 <= marker <= 0xEF or marker == 0xFE):  # ICC stays
            out += data[i : i + 2 + length]
        i += 2 + length


_MEMORY_CHILD = """
import io, json, sys
from pathlib import Path
from PIL import Image
from esn.photos import pipeline

data = Path(sys.argv[2]).read_bytes()


def floor():
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=90)


def full():
    pipeline.process(data, filename="photo.jpg", declared_type="image/jpeg")


def status(name):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])


Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
before = status("VmRSS")
{"floor": floor, "pipeline": full}[sys.argv[1]]()
print(json.dumps({"rss": before, "hwm": status("VmHWM")}))
"""


@dataclass
class Memory:
    rss_mb: float  # the fresh process's RSS before the call (modules loaded, file read)
    rise_mb: float  # the rise of its peak RSS in the call


def peak_memory(kind: str, path: Path) -> Memory:
    """The peak memory of one call of ``kind`` in a fresh process (Linux).

    Not ``ru_maxrss``: Linux carries the parent's peak across fork and exec into a child's
    ``ru_maxrss`` (here the benchmark's own, some 350 MB after making the image), which hides
    the rise of a call that peaks lower; the address space's own peak (VmHWM, reset to the
    current RSS right before the call) does not."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, kind, str(path)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    kib = json.loads(out)
    return Memory(kib["rss"] * 1024 / MB, (kib["hwm"] - kib["rss"]) * 1024 / MB)


# --- end to end ---------------------------------------------------------------------------------


def person(url: str, workdir: Path) -> str:
    """Create one employee with an API token (the application's own actions); the token."""
    from esn.accounts.actions import do_create_token, do_create_user

    app = make_app(url, workdir)
    with app.app_context():
        user = do_create_user(None, {
            "email": "photographer@example.org", "display_name": "Photo Grapher",
            "roles": ["employee"], "password": None,
        })  # fmt: skip
        user.last_visit_on = datetime.now(UTC).date()  # today's visit is recorded already
        _token, secret = do_create_token(user, "bench", None)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return secret


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in os.environ meanwhile (``bench.feed.server`` passes os.environ on)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def multipart(data: bytes) -> tuple[bytes, str]:
    """(body, content type) of an upload as a browser's form sends it."""
    boundary = "----esnbench" + hashlib.sha256(data).hexdigest()[:24]
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="caption"\r\n\r\n'
        "The new line on its first day\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{FILENAME}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + data + tail, f"multipart/form-data; boundary={boundary}"


def workers_of(master: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = stat.read_text().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        if ppid == str(master):
            found.append(int(stat.parent.name))
    return sorted(found)


def status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux 4.0+); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Sampler:
    """The highest VmRSS of each process, sampled every 10 ms (when VmHWM cannot be reset)."""

    def __init__(self, pids: list[int]) -> None:
        self.peak = {pid: status_kib(pid, "VmRSS") for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            for pid in self.peak:
                self.peak[pid] = max(self.peak[pid], status_kib(pid, "VmRSS"))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Load:
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, per upload
    statuses: list[int] = field(default_factory=list)
    photo_ids: list[int] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

    @property
    def uploads(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.uploads / self.seconds if self.seconds else 0.0

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def upload_load(
    base: str, token: str, body: bytes, content_type: str, clients: int, duration: float
) -> Load:
    """``clients`` closed-loop clients, each uploading again as soon as it has its answer."""
    host, port = base.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type,
               "Content-Length": str(len(body))}  # fmt: skip
    load = Load(seconds=0.0)
    lock = threading.Lock()

    def client(deadline: float) -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            try:
                conn.request("POST", UPLOAD, body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
            finally:
                conn.close()
            took = time.perf_counter() - began
            with lock:
                load.latencies.append(took)
                load.statuses.append(response.status)
                if response.status == 201:
                    load.photo_ids.append(int(json.loads(answer)["id"]))
                elif len(load.bad) < 3:
                    load.bad.append(f"{response.status} {answer[:300]!r}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client, started + duration) for _ in range(clients)]:
            future.result()
    load.seconds = time.perf_counter() - started
    return load


def fetch(base: str, token: str, path: str) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status} {data[:300]!r}")
        return data
    finally:
        conn.close()


@dataclass
class Served:
    workers: int
    threads: int
    load: Load
    cpu_ms: float  # the server's CPU time per upload
    start_rss: dict[int, int]  # KiB per worker, when the server is ready
    idle_rss: dict[int, int]  # KiB per worker, idle after the warm-up
    peak_rss: dict[int, int]  # KiB per worker, the highest during the load
    after_rss: dict[int, int]  # KiB per worker, idle after the load
    peak_how: str
    warmup_uploads: int
    clients: int

    @property
    def in_flight(self) -> int:
        """Uploads one worker had at once: at most its threads, and the clients shared out
        among the workers."""
        return max(1, min(self.threads, -(-self.clients // self.workers)))

    def per_upload_mb(self, since: dict[int, int]) -> float:
        """The largest rise of a worker's peak over its RSS ``since`` (at start, or idle after
        the warm-up), per upload in flight."""
        rises = [self.peak_rss[pid] - since[pid] for pid in self.peak_rss]
        return max(rises) * 1024 / MB / self.in_flight


def serve_and_load(
    url: str, workdir: Path, token: str, data: bytes, workers: int, threads: int,
    args: argparse.Namespace,
) -> Served:  # fmt: skip
    photo_dir = workdir / f"photos-{workers}x{threads}"
    settings = {
        "ESN_PHOTO_DIR": str(photo_dir),
        "ESN_PHOTO_UPLOAD_LIMIT": "100000 per hour",
        "ESN_PHOTO_QUOTA_BYTES": str(10**13),
    }
    body, content_type = multipart(data)
    with environment(settings), server(url, workdir, workers, threads) as (base, master):
        pids = workers_of(master)
        assert len(pids) == workers, (pids, workers)
        start_rss = {pid: status_kib(pid, "VmRSS") for pid in pids}
        warm = upload_load(base, token, body, content_type, args.clients, args.warmup)
        time.sleep(1.0)  # idle: whatever the warm-up left behind is in the idle RSS
        idle_rss = {pid: status_kib(pid, "VmRSS") for pid in pids}
        resettable = all(reset_peak(pid) for pid in pids)
        cpu = cpu_seconds(master)
        with Sampler(pids) as sampler:
            load = upload_load(base, token, body, content_type, args.clients, args.duration)
        cpu = cpu_seconds(master) - cpu
        if resettable:
            peak_rss, how = {pid: status_kib(pid, "VmHWM") for pid in pids}, "VmHWM"
        else:
            peak_rss, how = sampler.peak, "VmRSS sampled every 10 ms"
        time.sleep(1.0)
        after_rss = {pid: status_kib(pid, "VmRSS") for pid in pids}
        if workers_of(master) != pids:
            raise SystemExit(f"{workers}x{threads}: a worker was restarted during the load")
        for run in (warm, load):
            if run.bad or not run.uploads or set(run.statuses) != {201}:
                raise SystemExit(f"{workers}x{threads}: not every upload answered 201: "
                                 f"{sorted(set(run.statuses))} {run.bad}")  # fmt: skip
        check_stored(base, token, load.photo_ids[-1])
        stored = sum(1 for p in photo_dir.glob("??/??/*") if p.is_file())
        expected = len(pipeline.VARIANTS) * (warm.uploads + load.uploads)
        if stored != expected:
            raise SystemExit(f"{workers}x{threads}: {stored} files stored, {expected} expected")
    shutil.rmtree(photo_dir, ignore_errors=True)  # a few hundred MB
    return Served(
        workers=workers, threads=threads, load=load, cpu_ms=cpu * 1000 / load.uploads,
        start_rss=start_rss, idle_rss=idle_rss, peak_rss=peak_rss, after_rss=after_rss,
        peak_how=how,
        warmup_uploads=warm.uploads, clients=args.clients,
    )  # fmt: skip


def check_stored(base: str, token: str, photo_id: int) -> None:
    """The stored original, read back as a reader gets it: upright, and without EXIF."""
    original = fetch(base, token, f"{UPLOAD}/{photo_id}/original")
    with Image.open(io.BytesIO(original)) as image:
        if image.getexif() or "exif" in image.info:
            raise SystemExit(f"photo {photo_id}: the stored original still holds EXIF")
        if image.size != (HEIGHT, WIDTH):
            raise SystemExit(f"photo {photo_id}: stored {image.size}, not turned upright")
        image.load()


# --- main -----------------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = f" ({line.split(':', 1)[1].strip()})"
                break
    except OSError:
        pass
    jpeg = features.version("jpg") or "?"
    turbo = "libjpeg-turbo" if features.check_feature("libjpeg_turbo") else "libjpeg"
    return (f"{os.cpu_count()} CPUs{model}; Python {platform.python_version()}; Pillow "
            f"{PIL.__version__} ({turbo} {jpeg}); SQLite {sqlite3.sqlite_version} (WAL, "
            f"synchronous=FULL); load {os.getloadavg()[0]:.1f}")  # fmt: skip


def mb(values: dict[int, int]) -> str:
    """KiB per process, as MB."""
    return " + ".join(f"{v * 1024 / MB:.0f}" for v in values.values())


def row(figure: str, value: str, reference: str, ratio: float | None) -> None:
    print(f"{figure:52}{value:>16}{reference:>16}{'' if ratio is None else f'{ratio:.1f}':>8}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20, help="seconds of upload load")
    parser.add_argument("--warmup", type=float, default=5,
                        help="seconds of uploads before each measured load")  # fmt: skip
    parser.add_argument("--clients", type=int, default=2,
                        help="concurrent uploads (HTTP clients; threads in process)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=2026, help="of the generated image")
    parser.add_argument("--servers", default="1x2,2x1",
                        help="gunicorn gthread settings to try: WORKERSxTHREADS,...")  # fmt: skip
    parser.add_argument("--runs", type=int, default=6,
                        help="images per thread for the in-process figures (median)")  # fmt: skip
    args = parser.parse_args(argv)
    settings = [tuple(map(int, s.split("x"))) for s in args.servers.split(",") if s]

    started = time.perf_counter()
    data = make_jpeg(args.seed)
    print(f"image: {describe(data)} (generated in {time.perf_counter() - started:.1f} s)",
          flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="esn-bench-photos-") as tmp:
        workdir = Path(tmp)
        path = workdir / FILENAME
        path.write_bytes(data)
        floor_memory = peak_memory("floor", path)
        pipeline_memory = peak_memory("pipeline", path)
        n = args.clients
        base_floor = in_process("floor", data, max(args.runs, 10), n)
        base_full = in_process("pipeline", data, args.runs, n)
        for label, r in (("floor", base_floor), ("pipeline.process", base_full)):
            print(f"{label} in process: {r.one_ms:.0f} ms per image; {r.threads.rate:.1f} "
                  f"images/s on {n} threads, {r.processes.rate:.1f} on {n} processes",
                  flush=True)  # fmt: skip
        parts = steps(data, args.runs)
        others = alternatives(data, args.runs)

        url = f"sqlite:///{workdir / 'photos.sqlite3'}"
        migrate(url, workdir)
        token = person(url, workdir)
        served = []
        for workers, threads in settings:
            result = serve_and_load(url, workdir, token, data, workers, threads, args)
            served.append(result)
            print(f"  {workers}x{threads}: {result.load.rate:.2f} uploads/s, "
                  f"p50 {result.load.percentile_ms(0.5):.0f} ms", flush=True)  # fmt: skip

    print()
    print(f"Photo uploads: {describe(data)}")
    print(f"Machine: {machine()}")
    print()
    print(f"Where the time goes in pipeline.process (one thread, median of {args.runs}):")
    total = sum(parts.values())
    for label, ms in parts.items():
        print(f"  {label:62}{ms:8.1f} ms{ms / total:7.0%}")
    print(f"  {'sum of the steps':62}{total:8.1f} ms")
    print(f"  {'(the floor: decode + encode at quality 90)':62}{base_floor.one_ms:8.1f} ms")
    print()
    print("Alternatives (measured here, not what the pipeline does):")
    for label, ms, replaces in others:
        print(f"  {label:92}{ms:7.1f} ms instead of {replaces:6.1f} ms")
    print()
    print(f"{'figure':52}{'value':>16}{'floor':>16}{'x floor':>8}")
    row("in process, one thread: ms per image", f"{base_full.one_ms:.0f} ms",
        f"{base_floor.one_ms:.0f} ms", base_full.one_ms / base_floor.one_ms)  # fmt: skip
    for how in ("threads", "processes"):
        full_c, floor_c = getattr(base_full, how), getattr(base_floor, how)
        row(f"in process, {n} {how}: images/s", f"{full_c.rate:.2f}/s",
            f"{floor_c.rate:.2f}/s", floor_c.rate / full_c.rate)  # fmt: skip
        row(f"in process, {n} {how}: ms per image", f"{full_c.ms:.0f} ms",
            f"{floor_c.ms:.0f} ms", full_c.ms / floor_c.ms)  # fmt: skip
    row("peak memory of one call, fresh process", f"{pipeline_memory.rise_mb:.0f} MB",
        f"{floor_memory.rise_mb:.0f} MB",
        pipeline_memory.rise_mb / floor_memory.rise_mb)  # fmt: skip
    best = base_floor.best
    for s in served:
        name = f"{s.workers}x{s.threads}"
        row(f"{name} HTTP, {n} clients: uploads/s", f"{s.load.rate:.2f}/s",
            f"{best.rate:.2f}/s", best.rate / s.load.rate)  # fmt: skip
        for label, q in (("p50", 0.5), ("p99", 0.99)):
            ms = s.load.percentile_ms(q)
            row(f"{name} HTTP, {n} clients: {label} latency", f"{ms:.0f} ms",
                f"{best.ms:.0f} ms", ms / best.ms)  # fmt: skip
        row(f"{name} server CPU per upload", f"{s.cpu_ms:.0f} ms",
            f"{base_floor.one_ms:.0f} ms", s.cpu_ms / base_floor.one_ms)  # fmt: skip
        for label, since in (("warm", s.idle_rss), ("start", s.start_rss)):
            per_upload = s.per_upload_mb(since)
            row(f"{name} server peak memory per upload ({label})", f"{per_upload:.0f} MB",
                f"{floor_memory.rise_mb:.0f} MB", per_upload / floor_memory.rise_mb)  # fmt: skip
    print()
    print("x floor: the figure's time, memory or cost per image (the inverse of a rate) as a "
          "multiple of the floor's. The floor's rate and time per image in the HTTP rows are its "
          f"best on {n} cores in process ({n} threads or {n} processes, whichever is faster); "
          "its CPU per image is its time alone on one thread.")  # fmt: skip
    shapes = ", ".join(f"{s.workers}x{s.threads}" for s in served)
    print(f"HTTP: gunicorn gthread (workers x threads: {shapes}) on 127.0.0.1, "
          "ESN_OUTBOX_DISPATCH=off, SQLite "
          f"file, local photo store; {n} closed-loop clients, a new connection per upload, "
          f"{args.warmup:.0f} s warm-up then {args.duration:.0f} s; every upload answered 201, "
          f"every size was stored, the stored original is upright and holds no EXIF.")  # fmt: skip
    print("Peak memory per upload, server: the largest rise of a worker's peak RSS during the "
          "load over its RSS when idle after the warm-up (warm; what the warm-up left allocated "
          "is reused) or when the server was ready (start), divided by the uploads it had in "
          "flight at once; fresh process: the rise of the peak RSS (VmHWM) in one call, "
          f"from {pipeline_memory.rss_mb:.0f} MB with the modules loaded and the file "
          "read.")  # fmt: skip
    print("Resident memory of the workers (MB, one figure per worker):")
    columns = ("at start", "idle after warm-up", f"peak ({served[0].peak_how})" if served else "",
               "idle after the load")  # fmt: skip
    print(f"{'server':8}{'uploads':>8}" + "".join(f"{c:>28}" for c in columns))
    for s in served:
        figures = (s.start_rss, s.idle_rss, s.peak_rss, s.after_rss)
        print(f"{f'{s.workers}x{s.threads}':8}{s.warmup_uploads + s.load.uploads:8}"
              + "".join(f"{mb(f):>28}" for f in figures))  # fmt: skip


if __name__ == "__main__":
    main()
