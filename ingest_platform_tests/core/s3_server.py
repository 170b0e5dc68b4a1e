"""A local S3 for tests: moto's server on loopback, a fresh bucket per test, and what it received.

`s3_server` (session) runs ``moto.server.ThreadedMotoServer`` on 127.0.0.1 at a free port.
`s3_bucket` (per test) points the standard AWS environment variables at it (dummy credentials,
``AWS_ENDPOINT_URL``), exactly as a user configures a real deployment, creates an empty bucket,
and clears the request log. Nothing leaves loopback.

The request log is the server's own access log (werkzeug's, one line per request it answered),
so a count of PUTs is what the store received, not what the client meant to send.

`StallingProxy` stands between a writer and the server and holds a PUT mid-body: the writer's
upload is then in flight, deterministically, for as long as the test needs (to kill it).

moto and s3fs are imported at the top: when they are missing the tests fail, never skip.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import s3fs
from moto.server import ThreadedMotoServer

_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3})')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: Dummy credentials: tests assert they never show up in anything the platform records.
ACCESS_KEY = "AKIDTESTONLY0000"
SECRET_KEY = "test-only-secret-never-shown"


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as the server logged it
    status: int

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class RequestLog(logging.Handler):
    """Every request the moto server answered, from its access log."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.requests: list[Request] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = _ACCESS_LINE.search(_ANSI.sub("", record.getMessage()))
        if match:
            self.requests.append(Request(match["method"], match["target"], int(match["status"])))

    def clear(self) -> None:
        self.requests.clear()

    def of(self, method: str, prefix: str = "/") -> list[Request]:
        """Requests with `method` whose path starts with `prefix` (``/bucket/key...``)."""
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]


@dataclass
class MotoS3:
    endpoint: str
    log: RequestLog


@dataclass
class Bucket:
    """A fresh bucket on the local server, and the environment that reaches it."""

    name: str
    endpoint: str
    log: RequestLog
    fs: s3fs.S3FileSystem = field(repr=False)

    def url(self, *parts: str) -> str:
        return "/".join([f"s3://{self.name}", *parts])

    def puts(self, prefix: str = "") -> list[Request]:
        return self.log.of("PUT", f"/{self.name}/{prefix}")

    def gets(self, prefix: str = "") -> list[Request]:
        return self.log.of("GET", f"/{self.name}/{prefix}")

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under `prefix`, as the store lists it now."""
        self.fs.invalidate_cache()
        found = self.fs.find(f"{self.name}/{prefix}")
        return sorted(k[len(self.name) + 1 :] for k in found)

    def pending_multipart_uploads(self) -> list[dict]:
        self.fs.invalidate_cache()
        answer = self.fs.call_s3("list_multipart_uploads", Bucket=self.name)
        return list(answer.get("Uploads", []))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3]:
    log = RequestLog()
    access = logging.getLogger("werkzeug")
    access.addHandler(log)  # also keeps werkzeug from adding its own stderr handler
    access.setLevel(logging.INFO)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoS3(f"http://{host}:{port}", log)
    finally:
        server.stop()
        access.removeHandler(log)


def aws_environment(endpoint: str) -> dict[str, str]:
    """What a user sets to reach an S3-compatible store: the standard AWS variables only."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        # Never read a developer's own AWS files or probe an instance metadata service.
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture
def s3_bucket(s3_server: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in aws_environment(s3_server.endpoint).items():
        monkeypatch.setenv(name, value)
    # fsspec caches filesystem instances (and their listings) per process: start clean.
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    name = f"test-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    s3_server.log.clear()
    try:
        yield Bucket(name, s3_server.endpoint, s3_server.log, fs)
    finally:
        s3fs.S3FileSystem.clear_instance_cache()


class StallingProxy:
    """A loopback TCP proxy to the S3 server that forwards the first request's headers and half
    of its body, then holds the rest back: the upload is in flight until the client dies.

    Then it ends the request towards the server where it stands (as a dead client's kernel
    would) and keeps what the server answers. `stalled` is set once half the body has reached
    the server, `finished` once the server has answered the torn request (`final_status`).
    Serves one connection: the writer under test makes exactly one request.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.stalled = threading.Event()
        self.finished = threading.Event()
        self.request_line = ""
        self.content_length = 0
        self.forwarded_body = 0
        self.final_status: int | None = None
        self._answered = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="stalling-proxy", daemon=True)

    def __enter__(self) -> StallingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        self._thread.join(30)

    def _serve(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(self._upstream)
        back = threading.Thread(target=self._answer_back, args=(upstream, client), daemon=True)
        back.start()
        try:
            self._forward_half(client, upstream)
            while client.recv(65536):  # hold the rest back until the writer dies
                pass
        except OSError:
            pass
        finally:
            client.close()
            upstream.shutdown(socket.SHUT_WR)  # the request ends short of its Content-Length
            self._answered.wait(60)
            upstream.close()
            back.join(30)
            self.finished.set()

    def _forward_half(self, client: socket.socket, upstream: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                return
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                self.content_length = int(value.strip())
        half = self.content_length // 2
        upstream.sendall(head + b"\r\n\r\n")
        while len(body) < half:  # with Expect: 100-continue the body follows the server's 100
            chunk = client.recv(65536)
            if not chunk:
                return
            body += chunk
        upstream.sendall(body[:half])
        self.forwarded_body = half
        self.stalled.set()

    def _answer_back(self, upstream: socket.socket, client: socket.socket) -> None:
        """Relay the server's answers to the client (while it lives) and note the final one."""
        received = b""
        try:
            while chunk := upstream.recv(65536):
                received += chunk
                with contextlib.suppress(OSError):
                    client.sendall(chunk)
                self.final_status = _final_status(received)
                if self.final_status is not None:
                    break
        except OSError:
            pass
        finally:
            self._answered.set()


def _final_status(received: bytes) -> int | None:
    """The status of the first complete non-100 response head in `received`, if any."""
    while (end := received.find(b"\r\n\r\n")) >= 0:
        status = int(received[:end].split(b" ", 2)[1])
        if status != 100:
            return status
        received = received[end + 4 :]
    return None
