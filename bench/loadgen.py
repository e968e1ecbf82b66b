"""A bounded HTTP load run against a local server: ``wrk`` when it is installed, otherwise a
small asyncio client in this process.

Both are closed-loop: ``connections`` keep-alive connections each send a request, wait for the
answer and send the next, until ``duration`` seconds have passed. Requests rotate through the
given bearer tokens, so that every request is made by a different person (no warm per-person
cache helps). Latency is measured per request at the client.

``wrk`` is written in C and costs the machine far less CPU per request than any Python client,
which matters when client and server share two cores. Install it with
``apt-get install wrk`` (Debian/Ubuntu) or ``brew install wrk`` (macOS).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    bad_status: int  # answers other than 200
    socket_errors: int
    cpu_ms: float = 0.0  # the server's CPU time per request, when the caller measures it

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


_LUA = """
local tokens = {%(tokens)s}
local path = %(path)s
local counter = 0
local threads = {}

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  counter = offset or 0
end

function request()
  counter = counter + 1
  if #tokens == 0 then
    return wrk.format("GET", path)
  end
  local token = tokens[(counter %% #tokens) + 1]
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end

function done(summary, latency, requests)
  io.write(string.format(
    "ESN-RESULT requests=%%d duration_us=%%d p50_us=%%d p99_us=%%d mean_us=%%f max_us=%%d "
    .. "status=%%d connect=%%d read=%%d write=%%d timeout=%%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
end
"""


def _lua_string(value: str) -> str:
    assert re.fullmatch(r"[A-Za-z0-9_/?=&.-]*", value), value
    return f'"{value}"'


def run_wrk(
    base: str, path: str, tokens: list[str], duration: float, connections: int, threads: int
) -> Result:
    script = _LUA % {"tokens": ",".join(map(_lua_string, tokens)), "path": _lua_string(path)}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [
                wrk_path() or "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                f.name,
                base + path,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=True,
        ).stdout
    finally:
        Path(f.name).unlink()
    line = next(x for x in out.splitlines() if x.startswith("ESN-RESULT"))
    v = {k: float(n) for k, n in re.findall(r"(\w+)=([\d.]+)", line)}
    return Result(
        tool="wrk",
        requests=int(v["requests"]),
        seconds=v["duration_us"] / 1e6,
        p50_ms=v["p50_us"] / 1000,
        p99_ms=v["p99_us"] / 1000,
        mean_ms=v["mean_us"] / 1000,
        max_ms=v["max_us"] / 1000,
        # wrk counts answers with a status of 400 or more; the caller checks a 200 first.
        bad_status=int(v["status"]),
        socket_errors=int(v["connect"] + v["read"] + v["write"] + v["timeout"]),
    )


async def _client(
    host: str,
    port: int,
    requests: list[bytes],
    start: int,
    deadline: float,
    latencies: list[float],
    counters: dict[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = start
    try:
        while time.perf_counter() < deadline:
            payload = requests[i % len(requests)]
            i += 1
            began = time.perf_counter()
            writer.write(payload)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            if b" 200 " not in status:
                counters["bad"] += 1
    except (OSError, asyncio.IncompleteReadError):
        counters["socket"] += 1
    finally:
        writer.close()


def run_python(
    base: str, path: str, tokens: list[str], duration: float, connections: int
) -> Result:
    hostport = base.removeprefix("http://")
    host, _, port = hostport.partition(":")
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: {hostport}\r\n"
        f"{'Authorization: Bearer ' + t + chr(13) + chr(10) if t else ''}\r\n".encode()
        for t in (tokens or [""])
    ]
    latencies: list[float] = []
    counters = {"bad": 0, "socket": 0}

    async def main() -> float:
        began = time.perf_counter()
        deadline = began + duration
        await asyncio.gather(*(
            _client(host, int(port), requests, n * 7919, deadline, latencies, counters)
            for n in range(connections)
        ))  # fmt: skip
        return time.perf_counter() - began

    seconds = asyncio.run(main())
    latencies.sort()
    ms = [x * 1000 for x in latencies] or [0.0]
    return Result(
        tool="python",
        requests=len(latencies),
        seconds=seconds,
        p50_ms=ms[len(ms) // 2],
        p99_ms=ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        mean_ms=statistics.fmean(ms),
        max_ms=ms[-1],
        bad_status=counters["bad"],
        socket_errors=counters["socket"],
    )


def run(
    base: str,
    path: str,
    tokens: list[str],
    *,
    duration: float,
    connections: int,
    threads: int = 1,
    tool: str = "auto",
) -> Result:
    """One bounded load run of ``duration`` seconds (wrk if available, unless ``tool`` says)."""
    if tool == "wrk" or (tool == "auto" and wrk_path()):
        return run_wrk(base, path, tokens, duration, connections, threads)
    return run_python(base, path, tokens, duration, connections)
