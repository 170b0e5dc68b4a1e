"""Helpers the CLI benchmarks share: a sandbox in its own process, a fresh DAGSTER_HOME (SQLite
or a fresh PostgreSQL database) per timed run, a timed subprocess with its peak RSS, and one
variant's figures; and for the fan-out benchmarks a ``nats-server -js`` of their own and a
process's CPU seconds. Not a benchmark itself (market_backfill.py, economic_backfill.py,
warehouse_publish.py, quality_checks.py and the kraken_fanout*.py scripts import it)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUIET = "loggers:\n  console:\n    config:\n      log_level: WARNING\n"
PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}

_MEASURE = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "use = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "sys.stderr.write(f'\\nPEAK_RSS_KB={use.ru_maxrss} CPU_S={use.ru_utime + use.ru_stime}\\n'); "
    "sys.exit(code)"
)


def timed(
    cmd: list[str], env: dict[str, str], cwd: Path, check: bool = True
) -> tuple[float, float, str, int]:
    """Run `cmd`; return wall seconds, peak RSS (MB) of the largest process in its tree, stdout
    and the exit code (a non-zero code stops the benchmark unless ``check=False``).

    A fresh launcher process runs the command so its RUSAGE_CHILDREN covers only this run.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd], env=env, cwd=cwd, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0 and check:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    peak_kb = int(proc.stderr.rsplit("PEAK_RSS_KB=", 1)[1].split()[0])
    global LAST_CPU_S
    LAST_CPU_S = float(proc.stderr.rsplit("CPU_S=", 1)[1].split()[0])
    return wall, peak_kb / 1024, proc.stdout, proc.returncode


# The CPU seconds (user + system, the whole process tree) of the last `timed` command: on a
# machine shared with other work, wall clocks stretch with the load, CPU time much less.
LAST_CPU_S = 0.0


def get(url: str, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return json.loads(body) if body else None


def start_sandbox(env: dict[str, str], as_of: str) -> tuple[subprocess.Popen, str]:
    """`ingest-platform sandbox` in its own process (free ports); returns it and its URL."""
    proc = subprocess.Popen(
        [
            str(BIN / "ingest-platform"),
            *("sandbox", "--http-port", "0", "--kraken-port", "0", "--as-of", as_of),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip().startswith("export INGEST_PLATFORM_SANDBOX_URL="):
            return proc, line.strip().split("=", 1)[1]
    raise SystemExit("sandbox did not start")


def stop_sandbox(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)


def postgres_database() -> str:
    """A fresh, empty database on the local server (dropped by `drop_database`)."""
    import psycopg2

    name = f"bench_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def drop_database(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@dataclass
class Home:
    """A fresh DAGSTER_HOME (and lake) for one timed run, on one kind of instance."""

    path: Path
    env: dict[str, str]
    database: str | None = None

    @property
    def lake(self) -> Path:
        return self.path / "data" / "lake"

    def seed(self, datasets: dict[str, Path]) -> None:
        """Copy lake folders built once (untimed) into this home's lake."""
        for name, source in datasets.items():
            shutil.copytree(source, self.lake / name)

    def close(self) -> None:
        if self.database:
            drop_database(self.database)
        shutil.rmtree(self.path, ignore_errors=True)


def fresh_home(
    base: Path, env: dict[str, str], instance: str, batch: int = 500, path: Path | None = None
) -> Home:
    """A new DAGSTER_HOME under `base` (or at `path`, which may hold one from an earlier run)."""
    path = path or base / f"home-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True, exist_ok=True)
    (path / "quiet.yaml").write_text(QUIET)
    run_env = {**env, "DAGSTER_HOME": str(path), "INGEST_PLATFORM_DATA_DIR": str(path / "data")}
    if instance == "sqlite":
        shutil.copy(ROOT / "dagster.yaml", path / "dagster.yaml")
        return Home(path, run_env)
    database = postgres_database()
    shutil.copy(ROOT / "deploy" / "dagster-postgres.yaml", path / "dagster.yaml")
    run_env.update(
        DAGSTER_PG_HOST=PG["host"],
        DAGSTER_PG_PORT=PG["port"],
        DAGSTER_PG_USER=PG["user"],
        DAGSTER_PG_PASSWORD="",
        DAGSTER_PG_DB=database,
        DAGSTER_EVENT_BATCH_SIZE=str(batch),
    )
    return Home(path, run_env, database)


def materialize_cmd(
    home: Home, target: list[str], select: str, partition_range: str | None = None
) -> list[str]:
    """``dagster asset materialize`` of `select` (over `partition_range`, "first...last")."""
    cmd = [str(BIN / "dagster"), "asset", "materialize", *target, "--select", select]
    if partition_range:
        cmd += ["--partition-range", partition_range]
    return [*cmd, "-c", str(home.path / "quiet.yaml")]


@dataclass
class Variant:
    name: str
    instance: str | None  # None: no Dagster instance (a bare script)
    walls: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Symbols a run recorded as unavailable from a source (market_backfill).
    unavailable: int = 0

    @property
    def label(self) -> str:
        return f"{self.name} ({self.instance})" if self.instance else self.name

    @property
    def median(self) -> float:
        return statistics.median(self.walls)


def print_table(variants: list[Variant]) -> None:
    print(f"{'run':<22}{'median s':>10}{'min s':>8}{'max s':>8}{'peak RSS MB':>13}")
    for v in variants:
        print(
            f"{v.label:<22}{v.median:>10.1f}{min(v.walls):>8.1f}{max(v.walls):>8.1f}"
            f"{max(v.rss):>13.0f}"
        )


def load_note() -> str:
    """The machine's load averages, printed beside figures measured on a shared machine."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return "load: unknown"
    return f"load averages {one} {five} {fifteen}"


NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy so far (Linux ``/proc/stat``: everything but idle
    and iowait; 0 elsewhere): over a window, how much of the machine a run had left."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in fields]
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # user..steal, less idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


class NatsServer:
    """``nats-server -js`` on a free port with its store in ``store``, up when constructed."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@contextlib.contextmanager
def nats_server() -> Iterator[str]:
    """A `NatsServer` on a temporary store for the block; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as store:
        server = NatsServer(Path(store))
        try:
            yield server.url
        finally:
            server.close()
