"""Where the platform keeps its files, resolved when Definitions are built (never at import).

Defaults put everything under the repository's ``data/`` folder so a fresh clone works with no
configuration. Deployments point elsewhere with environment variables; the lake root and the
stream log root may be fsspec URLs (``s3://bucket/lake``), whose credentials and endpoint come
from the store's own standard configuration (for S3: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``), never from these settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

_PACKAGE = Path(__file__).resolve().parent.parent
#: Where a wheel carries the reference snapshots and the default instance config.
PACKAGED_REFERENCE_DIR = _PACKAGE / "_bundled" / "reference"
PACKAGED_INSTANCE_CONFIG = _PACKAGE / "_bundled" / "dagster.yaml"


def project_root() -> Path:
    """The folder the platform works in: $INGEST_PLATFORM_HOME, else the checkout this package
    runs from (editable install, tests), else the current directory (an installed wheel)."""
    home = os.environ.get("INGEST_PLATFORM_HOME")
    if home:
        return Path(home)
    checkout = _PACKAGE.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "workspace.yaml").is_file():
        return checkout
    return Path.cwd()


def data_dir() -> Path:
    """Root of runtime files (lake, stream log, caches): $INGEST_PLATFORM_DATA_DIR or
    <project root>/data."""
    return Path(os.environ.get("INGEST_PLATFORM_DATA_DIR") or project_root() / "data")


def lake_root() -> str:
    """The Parquet lake root: $INGEST_PLATFORM_LAKE_ROOT, else <data dir>/lake."""
    return os.environ.get("INGEST_PLATFORM_LAKE_ROOT") or str(data_dir() / "lake")


STREAM_ROOT_ENV = "INGEST_PLATFORM_STREAM_ROOT"


def stream_root() -> str:
    """The Kraken stream log root: $INGEST_PLATFORM_STREAM_ROOT (a path or an fsspec URL such as
    ``s3://bucket/stream/kraken``), else <data dir>/stream/kraken."""
    return os.environ.get(STREAM_ROOT_ENV) or str(data_dir() / "stream" / "kraken")


def reference_dir() -> Path:
    """Versioned reference inputs (the S&P 500 snapshot, ETF and FX lists):
    $INGEST_PLATFORM_REFERENCE_DIR, else the checkout's data/reference, else the wheel's copy."""
    configured = os.environ.get("INGEST_PLATFORM_REFERENCE_DIR")
    if configured:
        return Path(configured)
    checkout = project_root() / "data" / "reference"
    return checkout if checkout.is_dir() else PACKAGED_REFERENCE_DIR


SANDBOX_URL_ENV = "INGEST_PLATFORM_SANDBOX_URL"
SANDBOX_KRAKEN_URL_ENV = "INGEST_PLATFORM_SANDBOX_KRAKEN_URL"


def sandbox_url() -> str | None:
    """$INGEST_PLATFORM_SANDBOX_URL: when set, every HTTP source reads from that sandbox."""
    return os.environ.get(SANDBOX_URL_ENV) or None


def sandbox_kraken_url() -> str | None:
    """$INGEST_PLATFORM_SANDBOX_KRAKEN_URL: when set, the Kraken stream connects there."""
    return os.environ.get(SANDBOX_KRAKEN_URL_ENV) or None


def endpoint(production_url: str, sandbox_path: str) -> str:
    """Where a provider is reached: the sandbox when $INGEST_PLATFORM_SANDBOX_URL is set, else
    the provider itself.

    The environment decides, never run config: a launchpad override of a resource cannot
    silently switch a sandbox deployment to production or the other way round.
    """
    base = sandbox_url()
    return f"{base.rstrip('/')}{sandbox_path}" if base else production_url


def using_sandbox() -> bool:
    """Whether this process talks to the sandbox (which imposes no limits and has no quota)."""
    return sandbox_url() is not None


def env(name: str) -> str | None:
    """An environment variable's value, None when unset or empty (for optional wiring only:
    secrets travel as Dagster EnvVar, read at run time)."""
    return os.environ.get(name) or None


NOW_ENV = "INGEST_PLATFORM_NOW"


def now() -> pd.Timestamp:
    """The current time (UTC). $INGEST_PLATFORM_NOW (ISO 8601) pins it, for simulations against
    the sandbox and tests of what the platform does mid-session; production never sets it."""
    pinned = os.environ.get(NOW_ENV)
    if pinned:
        stamp = pd.Timestamp(pinned)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return pd.Timestamp.now(tz="UTC")


BACKFILL_CHUNK_ENV = "INGEST_PLATFORM_BACKFILL_CHUNK"


def backfill_chunk() -> int | None:
    """The most partitions one backfill run covers ($INGEST_PLATFORM_BACKFILL_CHUNK), or None
    (unset or empty): a whole range in one run.

    Chunks let a cluster run a long backfill as several runs side by side; each run makes its
    own history request per symbol per source, so requests grow with the number of chunks (see
    docs/pages/operations.md). A value that is not a whole number of at least 1 is refused with
    its name and value, when the definitions load, rather than silently running one big run.
    """
    raw = os.environ.get(BACKFILL_CHUNK_ENV, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ValueError(
            f"{BACKFILL_CHUNK_ENV}={raw!r}: expected a whole number of partitions per run, "
            "1 or more (unset it to run each backfill range as one run)"
        )
    return int(raw)
