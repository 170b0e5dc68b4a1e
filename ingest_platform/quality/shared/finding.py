"""`Finding`: what every quality check returns, and how findings combine.

A check is a plain function over frames that returns one `Finding`, so the Dagster factory that
wraps it holds no logic of its own:

- ``passed``  -> ``AssetCheckResult.passed``;
- ``status``  -> the severity (``WARN`` or ``ERROR``; ``PASS`` passes);
- ``summary`` -> the description, one line that names the symbols or variables and the dates;
- ``figures`` -> numeric metadata, so the UI can plot each figure across runs;
- ``offending`` -> a table of the worst rows, worst first.

A finding carries numbers and rows rather than prose alone because the same result feeds a UI
plot, a CI exit code and a person reading the description.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pandas as pd

#: The most rows a finding's `offending` table keeps; `figures` carry the full counts.
MAX_OFFENDING_ROWS = 50

Figures = dict[str, float | int]


class Status(Enum):
    """How bad a finding is, ordered PASS < WARN < ERROR (``max`` gives the worst)."""

    PASS = "PASS"
    WARN = "WARN"
    ERROR = "ERROR"

    @property
    def rank(self) -> int:
        return _RANK[self.value]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {"PASS": 0, "WARN": 1, "ERROR": 2}


@dataclass(frozen=True, eq=False)
class Finding:
    """The outcome of one check over one set of frames.

    Args:
        check: the check's name (``bar_coverage``, ``cross_source_drift``, ...).
        status: PASS, WARN or ERROR.
        figures: finite numbers only (ratios, counts, hours, maxima); numpy scalars are
            converted to Python ones so they serialise anywhere.
        offending: the worst rows, worst first, at most `MAX_OFFENDING_ROWS` (empty on PASS,
            unless a check lists what it excused).
        summary: one line naming symbols or variables and dates.
    """

    check: str
    status: Status
    figures: Figures
    offending: pd.DataFrame
    summary: str

    def __post_init__(self) -> None:
        if not self.check:
            raise ValueError("a finding needs a check name")
        if not isinstance(self.status, Status):
            raise TypeError(f"{self.check}: status must be a Status, got {self.status!r}")
        if not isinstance(self.offending, pd.DataFrame):
            raise TypeError(f"{self.check}: offending must be a DataFrame")
        if "\n" in self.summary:
            raise ValueError(f"{self.check}: summary must be one line")
        object.__setattr__(self, "figures", _clean_figures(self.check, self.figures))

    @property
    def passed(self) -> bool:
        """True only for PASS: a WARN is a failed check of warning severity."""
        return self.status is Status.PASS

    @property
    def severity(self) -> int:
        """0 (PASS), 1 (WARN) or 2 (ERROR): sort findings worst first with ``-severity``."""
        return self.status.rank


def _clean_figures(check: str, figures: Mapping[str, object]) -> Figures:
    clean: Figures = {}
    for name, value in figures.items():
        if isinstance(value, bool | np.bool_ | int | np.integer):
            clean[name] = int(value)
        elif isinstance(value, float | np.floating):
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"{check}: figure {name!r} is not finite ({number})")
            clean[name] = number
        else:
            raise TypeError(f"{check}: figure {name!r} must be a number, got {value!r}")
    return clean


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe status (PASS when there is none)."""
    return max(statuses, default=Status.PASS)


def status_where(
    values: np.ndarray, warn: float, error: float, *, below: bool = False
) -> np.ndarray:
    """Per value: ``"ERROR"``, ``"WARN"`` or ``"PASS"``; a value exactly at a threshold passes it.

    With ``below`` the bad direction is down (ratios), otherwise up (drifts, lags).
    """
    if below:
        is_error, is_warn = values < error, values < warn
    else:
        is_error, is_warn = values > error, values > warn
    return np.where(is_error, "ERROR", np.where(is_warn, "WARN", "PASS"))


def status_of(labels: Iterable[str] | pd.Series | np.ndarray) -> Status:
    """The worst of a column of status labels (vectorised: columns can be long)."""
    values = np.asarray(labels if isinstance(labels, pd.Series | np.ndarray) else list(labels))
    if (values == "ERROR").any():
        return Status.ERROR
    return Status.WARN if (values == "WARN").any() else Status.PASS


def status_rank(labels: Iterable[str] | pd.Series | np.ndarray) -> np.ndarray:
    """0, 1 or 2 per status label (PASS, WARN, ERROR), for comparisons and sorting."""
    return pd.Series(np.asarray(labels, dtype=object)).map(_RANK).to_numpy(dtype=np.int64)


def severity_order(frame: pd.DataFrame, *by: str, ascending: Sequence[bool] = ()) -> pd.DataFrame:
    """Rows worst first: by status (ERROR, WARN, PASS), then by the given columns."""
    rank = status_rank(frame["status"])
    order = [False, *(ascending or [False] * len(by))]
    keyed = frame.assign(_rank=rank).sort_values(["_rank", *by], ascending=order, kind="stable")
    return keyed.drop(columns="_rank").reset_index(drop=True)


def combine(findings: Sequence[Finding], check: str) -> Finding:
    """One finding from several (the anomaly dimensions, say): the worst status wins.

    Figures keep their names prefixed by their check (``false_ticks.count``); offending rows
    gain a ``check`` column and are ordered worst first; the summary lists the failing checks'
    summaries, or says every one passed.
    """
    if not findings:
        return Finding(check, Status.PASS, {}, pd.DataFrame(), "no checks to combine")
    figures: Figures = {}
    for finding in findings:
        figures.update({f"{finding.check}.{k}": v for k, v in finding.figures.items()})
    tables = [
        f.offending.assign(check=f.check)[["check", *f.offending.columns]]
        for f in findings
        if not f.offending.empty
    ]
    offending = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if "status" in offending:
        offending = severity_order(offending)
    failing = [f for f in sorted(findings, key=lambda f: -f.severity) if not f.passed]
    if failing:
        summary = " | ".join(f"{f.check}: {f.summary}" for f in failing)
    else:
        summary = f"all {len(findings)} checks passed: " + ", ".join(f.check for f in findings)
    return Finding(
        check,
        worst(f.status for f in findings),
        figures,
        offending.head(MAX_OFFENDING_ROWS),
        summary,
    )
