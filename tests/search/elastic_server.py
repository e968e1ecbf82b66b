"""An Elasticsearch-compatible server for the search tests, and backends pointing at it.

``ESN_TEST_ELASTICSEARCH_URL`` names a real cluster (Elasticsearch 8 or 9) when set; otherwise
osmem-server (PyPI ``osmem-server``: an in-memory OpenSearch-compatible server, one static binary
bundled in the wheel) runs as a subprocess on a free loopback port.

osmem answers ``406`` to the official client's versioned media type
(``application/vnd.elasticsearch+json; compatible-with=8``), so against it the client gets
:class:`PlainJsonNode`, a transport node that sends plain ``application/json`` (and
``application/x-ndjson`` for bulk bodies). That node lives here, in the tests, and nowhere else:
a real cluster is always spoken to with the client's own headers.

Use::

    with elastic_server() as server:          # once per module: the process
        with server.backend() as backend:     # once per test: a fresh index prefix
            backend.index([...])

or the session fixture :func:`elastic_test_server`, or :func:`elastic_backend` for one backend
on its own server.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from esn.search.elastic import ElasticsearchBackend

ES_URL_ENV = "ESN_TEST_ELASTICSEARCH_URL"

try:
    from elastic_transport import HttpHeaders, Urllib3HttpNode
except ImportError:  # pragma: no cover - the 'test' extra installs it
    Urllib3HttpNode = object  # type: ignore[misc,assignment]

_VENDOR = re.compile(r"application/vnd\.elasticsearch\+([a-z-]+)(;\s*compatible-with=\d+)?")


def _plain(value: str) -> str:
    return _VENDOR.sub(lambda m: f"application/{m.group(1)}", value)


class PlainJsonNode(Urllib3HttpNode):  # type: ignore[misc,valid-type]
    """A urllib3 node that rewrites the versioned media types to plain JSON / NDJSON."""

    def perform_request(
        self, method: str, target: str, body: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        if headers is not None:
            headers = HttpHeaders(headers)
            for name in ("content-type", "accept"):
                if name in headers:
                    headers[name] = _plain(headers[name])
        # The node's own defaults (set when the client was built) carry the same media types.
        for name in ("content-type", "accept"):
            if name in self._headers:
                self._headers[name] = _plain(self._headers[name])
        return super().perform_request(method, target, body=body, headers=headers, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ElasticServer:
    """A server the tests can reach: ``url``, whether it is osmem, and its process if ours."""

    url: str
    osmem: bool
    process: subprocess.Popen[str] | None = None
    backends: list[ElasticsearchBackend] = field(default_factory=list)

    def client_options(self) -> dict[str, Any]:
        return {"node_class": PlainJsonNode} if self.osmem else {}

    def make_backend(self, prefix: str | None = None, **options: Any) -> ElasticsearchBackend:
        """A backend on its own index prefix (so tests never see each other's documents),
        writing with refresh so that a search right after a write sees it."""
        options.setdefault("refresh", True)
        options.setdefault("request_timeout", 10.0)
        options.setdefault("replicas", 0)
        options.setdefault("delete_grace", 0.2)
        for key, value in self.client_options().items():
            options.setdefault(key, value)
        backend = ElasticsearchBackend(
            self.url, prefix=prefix or f"esntest-{uuid.uuid4().hex[:10]}", **options
        )
        self.backends.append(backend)
        return backend

    @contextlib.contextmanager
    def backend(self, prefix: str | None = None, **options: Any) -> Iterator[ElasticsearchBackend]:
        """A ready backend (its indices created); its indices are deleted afterwards."""
        made = self.make_backend(prefix, **options)
        made.ensure_indices()
        try:
            yield made
        finally:
            with contextlib.suppress(Exception):
                made.drop()
            made.close()

    def stop(self) -> None:
        """Stops the osmem process (a test of the cluster going away)."""
        if self.process is None or self.process.poll() is not None:
            return
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"osmem-server exited during startup (status {process.returncode})")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"osmem-server did not answer on {url} within {timeout} s")


def start_osmem() -> ElasticServer:
    """osmem-server on a free loopback port; it exits when its stdin closes (or we do)."""
    from osmem_server import resolve_binary

    port = free_port()
    process = subprocess.Popen(
        [
            resolve_binary(),
            "--addr",
            f"127.0.0.1:{port}",
            "--no-ja",  # no Japanese analysis: faster start, less memory
            "--parent-pid",
            str(os.getpid()),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return ElasticServer(url, osmem=True, process=process)


@contextlib.contextmanager
def elastic_server() -> Iterator[ElasticServer]:
    """The cluster named by ``ESN_TEST_ELASTICSEARCH_URL``, or a fresh osmem-server."""
    url = os.environ.get(ES_URL_ENV, "").strip()
    if url:
        yield ElasticServer(url.rstrip("/"), osmem=False)
        return
    server = start_osmem()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def elastic_test_server() -> Iterator[ElasticServer]:
    """The server as a session fixture, for a conftest to import (``from
    tests.search.elastic_server import elastic_test_server``) and a backend-parametrized fixture
    to use: ``with request.getfixturevalue("elastic_test_server").backend() as backend: ...``.
    Skips when neither the env cluster nor osmem-server is there."""
    try:
        import elasticsearch  # noqa: F401

        if not os.environ.get(ES_URL_ENV, "").strip():
            import osmem_server  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the installation
        pytest.skip(f"Elasticsearch tests need the 'test' extra ({exc}), or {ES_URL_ENV}")
    with elastic_server() as server:
        yield server


@contextlib.contextmanager
def elastic_backend(**options: Any) -> Iterator[ElasticsearchBackend]:
    """One ready backend on its own server (or on the env cluster, under a fresh prefix): for a
    contract suite that parametrizes over backends."""
    with elastic_server() as server, server.backend(**options) as backend:
        yield backend
