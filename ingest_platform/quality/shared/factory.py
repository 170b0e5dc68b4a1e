"""One factory that turns quality functions into Dagster asset checks.

A domain's ``checks.py`` declares, per asset, which check functions apply and how to read the
frames they need (`Loader`): one read serves every check of the asset, so they become one
``@multi_asset_check``. Each check function returns a `Finding`; the factory maps it to an
`AssetCheckResult` (passed, severity, description, numeric metadata the UI plots, a Markdown
table of the worst rows) and nothing else: the rules stay plain functions that tests call.

Every selected check *always* emits a result. Dagster gates downstream assets only on a
blocking check that emitted a failed result, so a check that raised (unreadable lake, a bug)
emits a failed ERROR result marked ``could_not_run`` instead of nothing; the CI runner reads
that mark to tell "the data is bad" (exit 2) from "the checks could not run" (exit 1).

Which partitions a check looks at (its `CheckWindow`), always judged *as named*:

- the ``start``/``end`` of its run config when given (the CI runner's range): every partition
  of the range, present or not, judged at the earlier of now and the moment the range's last
  partition is complete;
- else the run's own partitions, when it runs with a materialization;
- else the newest `DEFAULT_RECENT_PARTITIONS` partitions of the dataset's scheme up to now,
  from the first one the lake holds (a lake that stopped updating shows its missing days),
  leaving out an open partition (today's) that no run has filled yet.

An expected partition (one whose window has closed by the clock the window is judged at) that
the lake lacks is never dropped from the window: `partitions_present` names each, and the
coverage and staleness checks count the days as missing instead of shrinking the window to
what happens to be there.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    Config,
    MetadataValue,
    multi_asset_check,
)
from pydantic import Field

from ingest_platform.core import settings
from ingest_platform.core.dataset import Dataset
from ingest_platform.core.lake import ParquetLake
from ingest_platform.core.metadata import markdown_table
from ingest_platform.core.partitioning import PartitionSchemeError
from ingest_platform.quality.shared.finding import Finding, Status

#: Partitions a standalone check looks at when nobody says which (a month of sessions).
DEFAULT_RECENT_PARTITIONS = 22
COULD_NOT_RUN = "could_not_run"


class CheckWindowConfig(Config):
    """Which partitions a check run covers (the CI runner sets these)."""

    start: str | None = Field(default=None, description="First partition key (inclusive).")
    end: str | None = Field(default=None, description="Last partition key (inclusive).")


@dataclass(frozen=True)
class CheckWindow:
    """The partitions under check, the clock the checks judge them by, and the expected
    partitions (closed by `now`) that the lake lacks."""

    keys: tuple[str, ...]
    now: pd.Timestamp
    missing: tuple[str, ...] = ()

    @property
    def start(self) -> str | None:
        return self.keys[0] if self.keys else None

    @property
    def end(self) -> str | None:
        return self.keys[-1] if self.keys else None

    def describe(self) -> str:
        if not self.keys:
            return "all"
        return self.keys[0] if len(self.keys) == 1 else f"{self.keys[0]}..{self.keys[-1]}"


@dataclass(frozen=True)
class QualityCheck:
    """One check of an asset: a name, a function of the loaded frames, whether it blocks."""

    name: str
    evaluate: Callable[["CheckInputs"], Finding]
    description: str
    blocking: bool = False
    #: The figure a one-line report shows (the CI table's "key figure" column).
    key_figure: str | None = None


@dataclass
class CheckInputs:
    """What the checks of one asset share: the window and the frames read once for it."""

    window: CheckWindow
    frames: Mapping[str, pd.DataFrame]
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.frames[name]


Loader = Callable[[ParquetLake, CheckWindow], Mapping[str, pd.DataFrame]]


class ChecksCouldNotRun(Exception):
    """The checks' inputs could not be read (empty lake, no partition in the window...)."""


def resolve_window(
    context: AssetCheckExecutionContext,
    config: CheckWindowConfig,
    dataset: Dataset,
    lake: ParquetLake,
) -> CheckWindow:
    """The configured range, else the run's partitions, else the newest partitions (see the
    module docstring), each with the partitions it expects and the lake lacks."""
    now = settings.now()
    if dataset.partitioning is None:
        return CheckWindow((), now)
    scheme = dataset.partitioning
    present = lake.partition_keys(dataset.name)
    if config.start or config.end:
        start = config.start or (present[0] if present else scheme.first_key)
        end = config.end or scheme.current_keys(now)[-1]
        try:
            keys = tuple(scheme.keys_in_range(start, end))
        except PartitionSchemeError as exc:
            raise ChecksCouldNotRun(f"{dataset.name}: {exc}") from None
        return _window(dataset, keys, _judged_at(now, dataset, keys), present)
    if context.has_partition_key_range or context.has_partition_key:
        keys = tuple(sorted(context.partition_keys))
        return _window(dataset, keys, _judged_at(now, dataset, keys), present)
    if not present:
        raise ChecksCouldNotRun(f"{dataset.name}: the lake holds no partition to check")
    # Today's partition exists from its first moment (end_offset=1) but is due only when its
    # window closes; until a run fills it, it is not judged (its sessions would otherwise be
    # expected as soon as they settle, hours before the schedule fills the day).
    closed, have = set(scheme.closed_keys(now)), set(present)
    recent = [k for k in scheme.current_keys(now) if k >= present[0] and (k in closed or k in have)]
    keys = tuple(recent[-DEFAULT_RECENT_PARTITIONS:])
    return _window(dataset, keys, now, present)


def _window(
    dataset: Dataset, keys: tuple[str, ...], now: pd.Timestamp, present: Sequence[str]
) -> CheckWindow:
    closed = set(dataset.scheme.closed_keys(now))
    have = set(present)
    return CheckWindow(keys, now, tuple(k for k in keys if k in closed and k not in have))


def _judged_at(now: pd.Timestamp, dataset: Dataset, keys: Sequence[str]) -> pd.Timestamp:
    """A window is judged at the earlier of now and the moment its last partition is complete
    (the end of its window): three years of history checked in CI is not stale because it
    ends before today, and a range whose newest days never arrived is judged at its end, where
    they are due, not at whatever day the lake happens to stop."""
    _, end = dataset.scheme.window(max(keys))
    return min(now, end.tz_convert("UTC"))


PARTITIONS_PRESENT = "partitions_present"


def partitions_present(dataset: Dataset, window: CheckWindow) -> Finding:
    """ERROR when an expected partition of the window is absent from the lake. Each missing
    day is named: as runs of consecutive partitions in the summary (``2024-07-11...2024-07-15
    (3)``), one row per run in the table."""
    closed = set(dataset.scheme.closed_keys(window.now))
    expected = sum(1 for k in window.keys if k in closed)
    runs = dataset.scheme.runs(window.missing)
    named = ", ".join(f if n == 1 else f"{f}...{last} ({n})" for f, last, n in runs)
    return Finding(
        check=PARTITIONS_PRESENT,
        status=Status.ERROR if runs else Status.PASS,
        summary=(
            f"{len(window.missing)} of {expected} expected partition(s) of "
            f"{window.describe()} absent from the lake: {named}"
            if runs
            else f"all {expected} expected partition(s) of {window.describe()} are in the lake"
        ),
        figures={"missing_partitions": len(window.missing), "expected_partitions": expected},
        offending=pd.DataFrame(runs, columns=["first", "last", "partitions"]),
    )


def to_result(
    asset: str, check: QualityCheck, finding: Finding, window: CheckWindow
) -> AssetCheckResult:
    """A finding as Dagster records it: numeric figures to plot, the worst rows as a table."""
    metadata: dict[str, Any] = {
        name: MetadataValue.int(value) if isinstance(value, int) else MetadataValue.float(value)
        for name, value in finding.figures.items()
    }
    metadata["status"] = MetadataValue.text(finding.status.value)
    metadata["window"] = MetadataValue.text(window.describe())
    metadata["judged_at"] = MetadataValue.text(window.now.isoformat())
    if len(finding.offending):
        metadata["offending"] = markdown_table(finding.offending)
    if check.key_figure and check.key_figure in finding.figures:
        metadata["key_figure"] = MetadataValue.text(
            f"{check.key_figure}={finding.figures[check.key_figure]:.4g}"
        )
    return AssetCheckResult(
        asset_key=asset,
        check_name=check.name,
        passed=finding.passed,
        severity=AssetCheckSeverity.ERROR
        if finding.status is Status.ERROR
        else AssetCheckSeverity.WARN,
        description=finding.summary,
        metadata=metadata,
    )


def could_not_run(asset: str, check: QualityCheck, reason: str) -> AssetCheckResult:
    """A failed ERROR result for a check that could not evaluate (never no result at all)."""
    return AssetCheckResult(
        asset_key=asset,
        check_name=check.name,
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=f"could not run: {reason}",
        metadata={COULD_NOT_RUN: MetadataValue.bool(True)},
    )


def quality_checks(
    dataset: Dataset,
    checks: Sequence[QualityCheck],
    load: Loader,
    reads: Sequence[str] = (),
) -> AssetChecksDefinition:
    """The checks of `dataset` as one multi-asset check: one read, one result per check.

    `reads` names the other datasets `load` reads (secondary sources for drift, corporate
    actions, instruments): they become the checks' dependencies in the asset graph. A
    partitioned dataset also gets `partitions_present`, judged from the window alone, so a
    window whose partitions are all missing still says which (the others cannot run then).
    """
    if dataset.partitioned:
        checks = [
            QualityCheck(
                PARTITIONS_PRESENT,
                lambda inputs: partitions_present(dataset, inputs.window),
                "Every partition of the window whose time has closed is in the lake; each "
                "missing one is named (ERROR).",
                key_figure="missing_partitions",
            ),
            *checks,
        ]
    specs = [
        AssetCheckSpec(
            check.name,
            asset=dataset.name,
            description=check.description,
            blocking=check.blocking,
            additional_deps=list(reads),
        )
        for check in checks
    ]
    by_key = {AssetCheckKey(s.asset_key, s.name): c for s, c in zip(specs, checks, strict=True)}

    @multi_asset_check(
        name=f"{dataset.name}_quality",
        specs=specs,
        can_subset=True,
        description=f"Quality checks of {dataset.name}, evaluated from one read of the lake.",
    )
    def _checks(context: AssetCheckExecutionContext, config: CheckWindowConfig, lake: ParquetLake):
        selected = [by_key[k] for k in sorted(context.selected_asset_check_keys, key=str)]
        try:
            window = resolve_window(context, config, dataset, lake)
        except Exception as exc:  # every check still emits a result
            reason = f"{type(exc).__name__}: {exc}"[:500]
            context.log.error(f"{dataset.name} checks could not run: {reason}")
            for check in selected:
                yield could_not_run(dataset.name, check, reason)
            return
        presence = [c for c in selected if c.name == PARTITIONS_PRESENT]
        for check in presence:
            yield to_result(dataset.name, check, partitions_present(dataset, window), window)
        selected = [c for c in selected if c.name != PARTITIONS_PRESENT]
        if not selected:
            return
        try:
            inputs = CheckInputs(window, load(lake, window))
        except Exception as exc:  # every check still emits a result
            reason = f"{type(exc).__name__}: {exc}"[:500]
            context.log.error(f"{dataset.name} checks could not run: {reason}")
            for check in selected:
                yield could_not_run(dataset.name, check, reason)
            return
        for check in selected:
            try:
                finding = check.evaluate(inputs)
            except Exception as exc:  # a broken check is a failed check, not a missing one
                reason = f"{type(exc).__name__}: {exc}"[:500]
                context.log.error(f"{dataset.name} {check.name} could not run: {reason}")
                yield could_not_run(dataset.name, check, reason)
                continue
            yield to_result(dataset.name, check, finding, window)

    return _checks


def failure_rate_result(
    asset: str,
    check_name: str,
    failures: Mapping[str, str],
    requested: int,
    max_failure_rate: float,
    what: str = "symbols",
) -> AssetCheckResult:
    """The run check every ingesting asset emits with its materialization: ERROR when more
    than `max_failure_rate` of what it asked a source for failed; the failures named."""
    rate = len(failures) / requested if requested else 0.0
    return AssetCheckResult(
        check_name=check_name,
        asset_key=asset,
        passed=rate <= max_failure_rate,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{len(failures)} of {requested} {what} failed ({rate:.1%}); "
            f"allowed {max_failure_rate:.1%}"
        ),
        metadata={
            "failed": markdown_table(
                [{"key": key, "error": message} for key, message in sorted(failures.items())]
            ),
            "failed_count": MetadataValue.int(len(failures)),
            "requested_count": MetadataValue.int(requested),
            "failure_rate": MetadataValue.float(rate),
            "max_failure_rate": MetadataValue.float(max_failure_rate),
        },
    )
