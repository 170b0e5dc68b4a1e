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

Which partitions a check looks at (its `CheckWindow`): the ``start``/``end`` of its run config
when given (the CI runner's range); else the run's own partitions when it runs with a
materialization; else the newest partitions present in the lake.
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
from ingest_platform.quality.finding import Finding, Status

#: Partitions a standalone check looks at when nobody says which (a month of sessions).
DEFAULT_RECENT_PARTITIONS = 22
COULD_NOT_RUN = "could_not_run"


class CheckWindowConfig(Config):
    """Which partitions a check run covers (the CI runner sets these)."""

    start: str | None = Field(default=None, description="First partition key (inclusive).")
    end: str | None = Field(default=None, description="Last partition key (inclusive).")


@dataclass(frozen=True)
class CheckWindow:
    """The partitions under check and the clock the checks judge them by."""

    keys: tuple[str, ...]
    now: pd.Timestamp

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
    """The configured range, else the run's partitions, else the newest partitions present."""
    now = settings.now()
    if not dataset.partitioned:
        return CheckWindow((), now)
    present = lake.partition_keys(dataset.name)
    if config.start or config.end:
        start, end = config.start or "", config.end or "9999-12-31"
        keys = tuple(k for k in present if start <= k <= end)
        if not keys:
            raise ChecksCouldNotRun(
                f"{dataset.name}: no partition in the lake between {config.start or 'the start'}"
                f" and {config.end or 'the end'}"
            )
        return CheckWindow(keys, _judged_at(now, dataset, keys))
    if context.has_partition_key_range or context.has_partition_key:
        keys = tuple(sorted(context.partition_keys))
        return CheckWindow(keys, _judged_at(now, dataset, keys))
    if not present:
        raise ChecksCouldNotRun(f"{dataset.name}: the lake holds no partition to check")
    keys = tuple(present[-DEFAULT_RECENT_PARTITIONS:])
    return CheckWindow(keys, now)


def _judged_at(now: pd.Timestamp, dataset: Dataset, keys: Sequence[str]) -> pd.Timestamp:
    """A historical window is judged as of its own end, not today: three years of history
    checked in CI is complete, not stale because it ends before today."""
    _, end = dataset.key_window(list(keys))
    end_of_window = pd.Timestamp(end).tz_localize("UTC") + pd.Timedelta(days=2)
    return min(now, end_of_window)


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
    actions, instruments): they become the checks' dependencies in the asset graph.
    """
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
