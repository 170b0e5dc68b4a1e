"""A non-editable install works: the wheel carries what `ingest-platform demo` needs.

The wheel is built offline from this checkout and installed with ``--no-deps`` into a fresh
venv that borrows this environment's dependencies through a ``.pth`` line (so nothing is
downloaded). Then the demo runs from an empty folder: it must find the reference snapshots
and the instance config inside the wheel, not in the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parent.parent


def test_the_wheel_runs_the_demo_from_an_empty_folder(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(CHECKOUT),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("ingest_platform-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir)}))
    # This environment's packages, without its editable finder for the checkout (.pth files
    # inside a directory named by a .pth line are not processed).
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )

    home = tmp_path / "somewhere"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_PLATFORM_", "DAGSTER"))}
    probe = subprocess.run(
        [
            str(env_dir / "bin" / "python"),
            "-c",
            "import ingest_platform; print(ingest_platform.__file__)",
        ],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(env_dir) in probe.stdout, probe.stdout  # the wheel, not the checkout

    demo = subprocess.run(
        [str(env_dir / "bin" / "ingest-platform"), "demo"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "reference_job: run" in demo.stdout and "FAILED" not in demo.stdout
    assert (home / "dagster.yaml").is_file()  # the packaged embedded instance
    assert (home / "data" / "lake" / "instruments" / "all.parquet").is_file()
    # recent months of economic indicators, the warehouse's sample query, and a clean status
    assert "economic_indicators_job" in demo.stdout and "variable_series_job" in demo.stdout
    assert (home / "data" / "lake" / "metadata.json").is_file()
    assert (home / "data" / "warehouse" / "warehouse.sqlite").is_file()
    assert "FROM market_bars" in demo.stdout and "AAPL | " in demo.stdout
    assert "$ ingest-platform status" in demo.stdout and "PROBLEM" not in demo.stdout
