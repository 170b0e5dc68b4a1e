"""Shared fixtures. No test may reach the internet: sockets to anything but loopback fail."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest_platform.core.lake import ParquetLake
from ingest_platform_tests.postgres import PG_HOST, PG_PORT, PG_USER, throwaway_database

#: The checkout this test suite belongs to.
CHECKOUT = Path(__file__).resolve().parent.parent


def shared_fixtures_dir() -> Path:
    """The team's shared fixtures (a real Kraken capture): ``../shared/fixtures`` beside the
    checkout (or beside one of its parent folders), beside the checkout a local clone was made
    from (``git clone . /tmp/fresh``), or $INGEST_PLATFORM_SHARED_FIXTURES.

    Tests may read them; the package never needs them at run time.
    """
    origin = subprocess.run(
        ["git", "-C", str(CHECKOUT), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    homes = [CHECKOUT, *([Path(origin)] if origin and Path(origin).is_dir() else [])]
    candidates = [
        os.environ.get("INGEST_PLATFORM_SHARED_FIXTURES"),
        *(folder / "shared" / "fixtures" for home in homes for folder in home.parents),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError(f"shared fixtures not found; looked in {candidates}")


_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_real_connect = socket.socket.connect
_real_create_connection = socket.create_connection


def _host_of(address) -> str | None:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return None  # unix sockets are local by definition


def _guarded_connect(self, address):
    host = _host_of(address)
    if host is not None and host not in _LOOPBACK:
        raise ConnectionRefusedError(f"test tried to reach the internet: {address!r}")
    return _real_connect(self, address)


def _guarded_create_connection(address, *args, **kwargs):
    host = _host_of(address)
    if host is not None and host not in _LOOPBACK:
        raise ConnectionRefusedError(f"test tried to reach the internet: {address!r}")
    return _real_create_connection(address, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """Fail loudly, at once, on any non-loopback connection (DNS lookups included)."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket, "create_connection", _guarded_create_connection)
    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host not in _LOOPBACK and host is not None:
            raise socket.gaierror(f"test tried to resolve a non-local host: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


#: Fixtures that start or reach a service, and the marker a test using one gets.
SERVICE_FIXTURES = {
    "postgres_database": "postgres",
    "postgres_url": "postgres",
    "s3_server": "s3",
    "s3_bucket": "s3",
    "nats_server": "nats",
    "nats_server_with_auth": "nats",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the services its fixtures start (`SERVICE_FIXTURES`), so ``-m "not
    postgres"`` leaves out exactly the tests that would need PostgreSQL. Fixtures that reach a
    service only for some of their parameters mark those parameters (``pytest.param``)."""
    for item in items:
        for name in getattr(item, "fixturenames", ()):
            marker = SERVICE_FIXTURES.get(name)
            if marker is not None:
                item.add_marker(marker)


@pytest.fixture(scope="session")
def kraken_capture_path() -> Path:
    """The real Kraken v2 book capture (BTC/USD, depth 10): 1 snapshot + 509 updates."""
    path = shared_fixtures_dir() / "kraken" / "orderbook-v2.json"
    assert path.is_file(), f"Kraken capture fixture missing at {path}"
    return path


@pytest.fixture
def lake(tmp_path) -> ParquetLake:
    return ParquetLake(root=str(tmp_path / "lake"))


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A throwaway database for one test (see `throwaway_database`)."""
    with throwaway_database() as name:
        yield name


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """A SQLAlchemy URL for a throwaway database on the local server."""
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{postgres_database}"
