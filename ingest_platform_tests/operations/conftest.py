"""Fixtures for the alert tests: the local receivers and a real instance of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from ingest_platform_tests.operations.receivers import channels, mailbox, webhook

__all__ = ["channels", "mailbox", "webhook"]  # local alert receivers (receivers.py)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """A real instance (SQLite storage) in a folder of the test's own."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(tempdir=str(home)) as instance:
        yield instance
