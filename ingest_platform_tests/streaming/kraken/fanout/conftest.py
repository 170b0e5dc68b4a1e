"""A real NATS server with JetStream per test (Debian's ``nats-server``), on a free port with a
temporary store, that a test can stop and restart mid-stream. A machine without it fails the
test with the install line (``apt-get install -y nats-server``): never a skip."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """``nats-server -js`` on loopback; `stop`, `start` and `restart` keep port and store."""

    def __init__(self, store: Path, log: Path, *args: str) -> None:
        if not Path(NATS_SERVER).exists():
            raise AssertionError(
                "nats-server is not installed: apt-get install -y nats-server (see the README)"
            )
        self.port = _free_port()
        self.store = store
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.args = list(args)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    NATS_SERVER,
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-sd",
                    str(self.store),
                    *self.args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    tail = self.log.read_text()[-2000:]
                    raise AssertionError(f"nats-server exited: {tail}") from None
                time.sleep(0.05)
        raise AssertionError(f"nats-server not listening on {self.port} within 10 s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self, down_seconds: float = 0.5) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


NATS_USER = "ingest"
NATS_PASSWORD = "nats-s3cret-7f3a9"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats-store", tmp_path / "nats-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_server_with_auth(tmp_path: Path) -> Iterator[NatsServer]:
    """The server requires ``NATS_USER``/``NATS_PASSWORD``."""
    args = ("--user", NATS_USER, "--pass", NATS_PASSWORD)
    server = NatsServer(tmp_path / "nats-store", tmp_path / "nats-server.log", *args)
    server.start()
    try:
        yield server
    finally:
        server.stop()
