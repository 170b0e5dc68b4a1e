"""Where the platform keeps its files, resolved when Definitions are built (never at import).

Defaults put everything under the repository's ``data/`` folder so a fresh clone works with no
configuration. Deployments point elsewhere with environment variables; the lake root may be an
fsspec URL (``s3://bucket/lake``).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root: the package lives in ``<root>/ingest_platform``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Root of runtime files (lake, stream log, caches): $INGEST_PLATFORM_DATA_DIR or ./data."""
    return Path(os.environ.get("INGEST_PLATFORM_DATA_DIR") or PROJECT_ROOT / "data")


def lake_root() -> str:
    """The Parquet lake root: $INGEST_PLATFORM_LAKE_ROOT, else <data dir>/lake."""
    return os.environ.get("INGEST_PLATFORM_LAKE_ROOT") or str(data_dir() / "lake")


def reference_dir() -> Path:
    """Versioned reference inputs (the S&P 500 snapshot, ETF and FX lists)."""
    return Path(
        os.environ.get("INGEST_PLATFORM_REFERENCE_DIR") or PROJECT_ROOT / "data" / "reference"
    )


SANDBOX_URL_ENV = "INGEST_PLATFORM_SANDBOX_URL"
SANDBOX_KRAKEN_URL_ENV = "INGEST_PLATFORM_SANDBOX_KRAKEN_URL"


def sandbox_url() -> str | None:
    """$INGEST_PLATFORM_SANDBOX_URL: when set, every HTTP source reads from that sandbox."""
    return os.environ.get(SANDBOX_URL_ENV) or None


def sandbox_kraken_url() -> str | None:
    """$INGEST_PLATFORM_SANDBOX_KRAKEN_URL: when set, the Kraken stream connects there."""
    return os.environ.get(SANDBOX_KRAKEN_URL_ENV) or None
