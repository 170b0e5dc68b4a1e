"""Fetching many series from one source, with every failure named rather than swallowed.

An asset asks for tens of series; one unknown or unreachable series must cost that series, not
the others, and must show up by name. `fetch_each` returns every requested key either in the
frame or in `failures`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from ingest_platform.core.http.errors import SourceError, redacted_failure


@dataclass
class EconomicFetch:
    """Outcome of fetching several series (or indicator/country pairs) from one source."""

    source: str
    frame: pd.DataFrame
    failures: dict[str, SourceError] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)

    @property
    def failure_rate(self) -> float:
        return len(self.failures) / len(self.requested) if self.requested else 0.0

    def failure_messages(self) -> dict[str, str]:
        return {key: error.detail for key, error in sorted(self.failures.items())}


def fetch_each(
    source: str,
    keys: Sequence[str],
    fetch_one: Callable[[str], pd.DataFrame],
    empty: Callable[[], pd.DataFrame],
    threads: int = 1,
    redact: Callable[[str], str] = str,
) -> EconomicFetch:
    """``fetch_one(key)`` for every key; `SourceError`s are collected per key, anything else is
    a bug and propagates. Both leave through `redact` (the source's key redactor), since a
    parsing stage may quote a payload that echoes the key."""

    def run(key: str) -> tuple[str, pd.DataFrame | None, SourceError | None]:
        try:
            return key, fetch_one(key), None
        except SourceError as exc:
            return key, None, exc.redacted(redact)
        except Exception as exc:
            raise redacted_failure(exc, redact, source, key) from None

    frames: list[pd.DataFrame] = []
    failures: dict[str, SourceError] = {}
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix=source) as pool:
        for key, frame, error in pool.map(run, keys):
            if error is not None:
                failures[key] = error
            elif frame is not None and len(frame):
                frames.append(frame)
    combined = pd.concat(frames, ignore_index=True) if frames else empty()
    return EconomicFetch(source, combined, failures, list(keys))
