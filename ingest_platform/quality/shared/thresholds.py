"""Thresholds of every check, with their defaults, validated when built.

One frozen dataclass per check, validated when built, so a mistyped limit fails at import with
the field named, not as a silently lenient check. Limits are set in code where a domain builds
its checks (`economic/checks.py` loosens coverage this way); run config only moves the window.

How a value meets a threshold, everywhere: a value *exactly at* a threshold passes it.
``warn_below``/``error_below`` fire strictly below (ratios), ``warn_above``/``error_above`` and
``*_after_*`` strictly above (drifts, lags, hours). Counts of a run (`StuckThresholds`) are
"at least", as the name ``*_run_sessions`` says. The WARN limit must be strictly looser than
the ERROR limit: equal limits would make the WARN band vanish without anyone noticing.

These classes are the one source of every number: each says its bands in words (`bands`), and
the check descriptions shown in the UI are built from them, never retyped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from ingest_platform.quality.shared.finding import Status

#: Split ratios seen in practice: forward splits and their reverse (1-for-N) counterparts.
COMMON_SPLIT_RATIOS: tuple[float, ...] = (
    1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0,
    1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 8, 1 / 10, 1 / 15, 1 / 20, 1 / 25, 1 / 30, 1 / 50,
)  # fmt: skip


def _number(value: float) -> str:
    """A threshold as people write it: 0.9, 72, 0.25 (no trailing zeros)."""
    return f"{value:g}"


def _name(owner: object, attribute: str) -> str:
    return f"{type(owner).__name__}.{attribute}"


def _check_finite(owner: object) -> None:
    for f in fields(owner):  # type: ignore[arg-type]
        value = getattr(owner, f.name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and not math.isfinite(value):
            raise ValueError(f"{_name(owner, f.name)} must be finite, got {value}")


def _ratio(owner: object, attribute: str) -> None:
    value = getattr(owner, attribute)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{_name(owner, attribute)} must be a ratio within 0..1, got {value}")


def _non_negative(owner: object, attribute: str) -> None:
    value = getattr(owner, attribute)
    if value < 0:
        raise ValueError(f"{_name(owner, attribute)} must be >= 0, got {value}")


def _at_least(owner: object, attribute: str, minimum: float) -> None:
    value = getattr(owner, attribute)
    if value < minimum:
        raise ValueError(f"{_name(owner, attribute)} must be >= {minimum}, got {value}")


def _whole(owner: object, attribute: str) -> None:
    value = getattr(owner, attribute)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{_name(owner, attribute)} must be a whole number, got {value!r}")


def _looser(owner: object, warn: str, error: str, *, below: bool) -> None:
    """WARN must fire before ERROR: above a lower limit, or below a higher one."""
    w, e = getattr(owner, warn), getattr(owner, error)
    ok = w > e if below else w < e
    if not ok:
        side = "above" if below else "below"
        raise ValueError(
            f"{_name(owner, warn)} ({w}) must be looser than {_name(owner, error)} ({e}): "
            f"strictly {side} it"
        )


def _failing_status(owner: object, attribute: str) -> None:
    value = getattr(owner, attribute)
    if not isinstance(value, Status) or value is Status.PASS:
        raise ValueError(f"{_name(owner, attribute)} must be Status.WARN or Status.ERROR")


@dataclass(frozen=True)
class _ShareBands:
    """Bands on a share (0..1) that fails when it falls: WARN below, ERROR below (lower)."""

    warn_below: float
    error_below: float

    def bands(self) -> str:
        return f"WARN below {_number(self.warn_below)}, ERROR below {_number(self.error_below)}"

    def __post_init__(self) -> None:
        _check_finite(self)
        _ratio(self, "warn_below")
        _ratio(self, "error_below")
        _looser(self, "warn_below", "error_below", below=True)


@dataclass(frozen=True)
class CoverageThresholds(_ShareBands):
    """Fraction of expected observations present, per symbol or variable.

    `on_extra`: the status of a key with rows on days it was not expected (a holiday, outside
    its listing): zipline's rule reports extra sessions as well as missing ones. PASS ignores
    them (they are still counted in the figures).
    """

    warn_below: float = 0.9
    error_below: float = 0.75
    on_extra: Status = Status.WARN

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.on_extra, Status):
            raise ValueError(f"{_name(self, 'on_extra')} must be a Status")


@dataclass(frozen=True)
class UniverseCoverageThresholds(_ShareBands):
    """Per date, the share of that day's index members (known gaps aside) with a bar.

    0.95 of ~503 members is ~25 companies missing on one day, which no index event explains;
    0.99 (~5 missing) is worth a look.
    """

    warn_below: float = 0.99
    error_below: float = 0.95


@dataclass(frozen=True)
class BarStalenessThresholds:
    """Sessions a symbol's newest bar is behind its calendar's last completed session.

    A session is complete `settle_hours` after its close: the daily schedule fills a weekday
    at 01:30 New York, about 9.5 hours after the 16:00 close, so 12 hours leaves it room.
    """

    settle_hours: float = 12.0
    warn_after_sessions: int = 0
    error_after_sessions: int = 2

    def bands(self) -> str:
        return f"WARN above {self.warn_after_sessions}, ERROR above {self.error_after_sessions}"

    def __post_init__(self) -> None:
        _check_finite(self)
        _non_negative(self, "settle_hours")
        for name in ("warn_after_sessions", "error_after_sessions"):
            _whole(self, name)
            _non_negative(self, name)
        _looser(self, "warn_after_sessions", "error_after_sessions", below=False)


@dataclass(frozen=True)
class IndicatorStalenessThresholds:
    """Hours an indicator is late: since its oldest unmet release became due.

    A release is due `grace_hours` after its release time (a naive release date means
    midnight UTC of that day): publication hours vary and the monthly schedule needs a run.
    """

    grace_hours: float = 24.0
    warn_after_hours: float = 0.0
    error_after_hours: float = 72.0

    def bands(self) -> str:
        warn = (
            "WARN when any"
            if self.warn_after_hours == 0
            else f"WARN beyond {_number(self.warn_after_hours)} h"
        )
        return f"{warn}, ERROR beyond {_number(self.error_after_hours)} h"

    def __post_init__(self) -> None:
        _check_finite(self)
        for name in ("grace_hours", "warn_after_hours", "error_after_hours"):
            _non_negative(self, name)
        _looser(self, "warn_after_hours", "error_after_hours", below=False)


@dataclass(frozen=True)
class StreamStalenessThresholds:
    """Hours since the stream's last heartbeat (or newest row) per stream or symbol."""

    warn_after_hours: float = 0.25
    error_after_hours: float = 1.0

    def bands(self) -> str:
        return (
            f"WARN above {_number(self.warn_after_hours)} h, "
            f"ERROR above {_number(self.error_after_hours)} h"
        )

    def __post_init__(self) -> None:
        _check_finite(self)
        _non_negative(self, "warn_after_hours")
        _non_negative(self, "error_after_hours")
        _looser(self, "warn_after_hours", "error_after_hours", below=False)


@dataclass(frozen=True)
class DriftThresholds:
    """Relative close drift |secondary - primary| / primary between sources."""

    warn_above: float = 0.005
    error_above: float = 0.01

    def bands(self) -> str:
        """As percentages: 0.005 reads 0.5%."""
        return (
            f"WARN above {_number(self.warn_above * 100)}%, "
            f"ERROR above {_number(self.error_above * 100)}%"
        )

    def __post_init__(self) -> None:
        _check_finite(self)
        _ratio(self, "warn_above")
        _ratio(self, "error_above")
        _looser(self, "warn_above", "error_above", below=False)


@dataclass(frozen=True)
class FalseTickThresholds:
    """Robust z-score of a log return (median and MAD per symbol).

    Above `warn_z` is a suspected false tick (WARN); above `error_z`, or a spike that reverts
    the next session, is an ERROR. Earnings moves of 8-20 robust sigmas are real, so a lone
    large move without reversal stays a warning until it is implausibly large.
    """

    warn_z: float = 8.0
    error_z: float = 25.0
    #: Returns a symbol needs before its spread is trusted: a week of data has a MAD of
    #: almost nothing, and every ordinary move would read as dozens of sigmas.
    min_returns: int = 20

    def __post_init__(self) -> None:
        _check_finite(self)
        _at_least(self, "warn_z", 1.0)
        _looser(self, "warn_z", "error_z", below=False)
        _at_least(self, "min_returns", 2)


@dataclass(frozen=True)
class SplitThresholds:
    """A close-to-close jump that matches a split ratio within `tolerance` (relative, |j-k|/k).

    The default 5% leaves room for the day's own move around the split.
    """

    ratios: tuple[float, ...] = COMMON_SPLIT_RATIOS
    tolerance: float = 0.05

    def __post_init__(self) -> None:
        _check_finite(self)
        if not self.ratios or any(not (r > 0 and r != 1 and math.isfinite(r)) for r in self.ratios):
            raise ValueError(f"{_name(self, 'ratios')} must be positive, finite and not 1")
        if not 0.0 < self.tolerance < 0.25:
            raise ValueError(f"{_name(self, 'tolerance')} must be within 0..0.25 (exclusive)")


@dataclass(frozen=True)
class StuckThresholds:
    """A run of at least this many sessions with the same close (and a flat bar or no volume)."""

    warn_run_sessions: int = 3
    error_run_sessions: int = 5

    def __post_init__(self) -> None:
        for name in ("warn_run_sessions", "error_run_sessions"):
            _whole(self, name)
            _at_least(self, name, 2)
        _looser(self, "warn_run_sessions", "error_run_sessions", below=False)


@dataclass(frozen=True)
class VolumeThresholds:
    """Volume over the median of the previous `window` sessions (split-adjusted)."""

    window: int = 20
    warn_ratio: float = 10.0
    error_ratio: float = 100.0

    def __post_init__(self) -> None:
        _check_finite(self)
        _whole(self, "window")
        _at_least(self, "window", 3)
        _at_least(self, "warn_ratio", 1.0)
        _looser(self, "warn_ratio", "error_ratio", below=False)


@dataclass(frozen=True)
class AnomalyThresholds:
    """The thresholds of every bar anomaly detector, for the combined check."""

    false_ticks: FalseTickThresholds = field(default_factory=FalseTickThresholds)
    splits: SplitThresholds = field(default_factory=SplitThresholds)
    stuck: StuckThresholds = field(default_factory=StuckThresholds)
    volume: VolumeThresholds = field(default_factory=VolumeThresholds)


@dataclass(frozen=True)
class MappingThresholds:
    """The status of a registry variable that no source is mapped to (WARN or ERROR)."""

    unmapped: Status = Status.WARN

    def __post_init__(self) -> None:
        _failing_status(self, "unmapped")


@dataclass(frozen=True)
class ScoreThresholds:
    """Quality score per symbol or variable (0..1), and what each anomaly costs it.

    Each WARN anomaly multiplies the score by ``1 - warn_anomaly_penalty``, each ERROR anomaly
    by ``1 - error_anomaly_penalty``: one ERROR anomaly (a wrong number) halves the score and so
    fails it on its own; it takes four WARN anomalies to reach the WARN band.
    """

    warn_below: float = 0.85
    error_below: float = 0.6
    warn_anomaly_penalty: float = 0.05
    error_anomaly_penalty: float = 0.5

    def bands(self) -> str:
        return f"WARN below {_number(self.warn_below)}, ERROR below {_number(self.error_below)}"

    def __post_init__(self) -> None:
        _check_finite(self)
        for name in ("warn_below", "error_below", "warn_anomaly_penalty", "error_anomaly_penalty"):
            _ratio(self, name)
        _looser(self, "warn_below", "error_below", below=True)
