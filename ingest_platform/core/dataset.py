"""A dataset described once, and the one validated path from frames to the lake.

A `Dataset` names a dataset and holds its Pandera model, partitioning, natural key, owners and
description. Everything else derives from it: the asset's definition arguments and column
schema, the Arrow schema of its Parquet files, and `write`, the single function through which
every asset puts rows in the lake. `write` validates the *merged* content of each partition it
is about to replace (not just the freshly fetched rows), skips partitions whose content would
not change (so a re-run leaves the lake untouched), and writes each changed partition
atomically. "Every partition in the lake passed its schema" is therefore a property of the
code, not a convention.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import pandas as pd
import pandera.errors as pandera_errors
import pandera.pandas as pa
import pyarrow
from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    FreshnessPolicy,
    MetadataValue,
    PartitionsDefinition,
    TableSchema,
)

from ingest_platform.core import schema
from ingest_platform.core.lake import UNPARTITIONED, LakeError, ParquetLake

OWNERS = ("team:data-platform",)
KINDS = frozenset({"pandas", "parquet"})

Grain = Literal["day", "month"]


class DatasetValidationError(ValueError):
    """Merged partition content failed the dataset's schema; nothing was written."""


@dataclass(frozen=True)
class Dataset:
    """One dataset of the lake: its shape, partitioning and how its asset is presented.

    `partition_column` and `grain` say which partition a row belongs to: a ``date`` column at
    ``day`` grain maps to the ``YYYY-MM-DD`` key, at ``month`` grain to ``YYYY-MM-01``.
    `key` is the natural key: unique within the dataset, and each partition's sort order.
    """

    name: str
    model: type[pa.DataFrameModel]
    description: str
    group: str
    key: tuple[str, ...]
    partitions_def: PartitionsDefinition | None = None
    partition_column: str | None = None
    grain: Grain | None = None
    owners: tuple[str, ...] = OWNERS
    kinds: frozenset[str] = KINDS
    #: Fraction of expected observations the coverage check wants present (None: not checked).
    expected_coverage: float | None = None
    #: When the dataset counts as stale, for the UI (the daemon evaluates it); CI runs the
    #: partition-aware staleness checks instead, which need no daemon.
    freshness: FreshnessPolicy | None = None
    extra_metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        partitioned = self.partitions_def is not None
        if partitioned != (self.partition_column is not None) or partitioned != (
            self.grain is not None
        ):
            raise ValueError(
                f"dataset {self.name}: partitions_def, partition_column and grain go together"
            )
        missing = [c for c in self.key if c not in self.model.to_schema().columns]
        if missing:
            raise ValueError(f"dataset {self.name}: key column(s) {missing} not in the model")

    # ---- what the model gives ----------------------------------------------------------------

    @property
    def partitioned(self) -> bool:
        return self.partitions_def is not None

    @cached_property
    def arrow_schema(self) -> pyarrow.Schema:
        return schema.arrow_schema(self.model)

    @cached_property
    def column_schema(self) -> TableSchema:
        return schema.column_schema(self.model)

    @property
    def columns(self) -> list[str]:
        return list(self.model.to_schema().columns)

    def empty_frame(self) -> pd.DataFrame:
        return schema.empty_frame(self.model)

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame coerced to the model, or `DatasetValidationError` naming what failed."""
        try:
            return schema.validate(self.model, frame)
        except pandera_errors.SchemaErrors as errors:
            raise DatasetValidationError(
                f"{self.name}: {describe_failures(errors.failure_cases, frame)}"
            ) from None

    # ---- how the asset is presented ----------------------------------------------------------

    def definition_metadata(self) -> dict[str, Any]:
        """Attached to the asset definition: visible in the UI before any run."""
        return {
            "dagster/column_schema": MetadataValue.table_schema(self.column_schema),
            "natural_key": MetadataValue.text(", ".join(self.key)),
            **self.extra_metadata,
        }

    def asset_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Arguments for ``@asset``: name, group, partitions, single-run backfills, owners."""
        kwargs: dict[str, Any] = {
            "name": self.name,
            "group_name": self.group,
            "kinds": set(self.kinds),
            "owners": list(self.owners),
            "description": self.description,
            "metadata": self.definition_metadata(),
        }
        if self.partitioned:
            kwargs["partitions_def"] = self.partitions_def
            kwargs["backfill_policy"] = BackfillPolicy.single_run()
        if self.freshness is not None:
            kwargs["freshness_policy"] = self.freshness
        kwargs.update(overrides)
        return kwargs

    def spec(self, **overrides: Any) -> AssetSpec:
        """An `AssetSpec` for a ``@multi_asset`` (which sets partitions for all its specs)."""
        kwargs = self.asset_kwargs()
        for name in ("name", "group_name", "partitions_def", "backfill_policy"):
            kwargs.pop(name, None)
        kwargs.update(overrides)
        return AssetSpec(self.name, **kwargs)

    # ---- partitions --------------------------------------------------------------------------

    @cached_property
    def first_key(self) -> str | None:
        """The first partition: it also holds whatever came before it (see `partition_keys_of`)."""
        if self.partitions_def is None:
            return None
        return self.partitions_def.get_first_partition_key()

    def partition_keys_of(self, values: pd.Series) -> pd.Series:
        """The partition key of each value of the partition column.

        Values before the first partition belong to the first partition: a dataset keyed by
        when things became known starts with what was already known at its start.
        """
        dates = pd.to_datetime(values)
        if dates.dt.tz is not None:
            dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
        if self.grain == "month":
            keys = dates.dt.strftime("%Y-%m-01")
        elif self.grain == "day":
            keys = dates.dt.strftime("%Y-%m-%d")
        else:
            raise ValueError(f"dataset {self.name} is not partitioned")
        first = self.first_key
        return keys.where(keys >= first, first) if first else keys

    def key_window(self, keys: Sequence[str]) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The span of partition-column values partitions `keys` hold, inclusive at both ends
        (naive; for a UTC timestamp column, in UTC)."""
        if not keys:
            raise ValueError(f"dataset {self.name}: no partition keys")
        first, last = pd.Timestamp(min(keys)), pd.Timestamp(max(keys))
        if min(keys) == self.first_key:
            first = pd.Timestamp("1900-01-01")  # the first partition holds what came before
        if self.grain == "month":
            return first, last + pd.offsets.MonthBegin(1) - pd.Timedelta(1, "ns")
        if self.grain == "day":
            column = self.model.to_schema().columns[self.partition_column]
            if (column.metadata or {}).get("logical_type") == "date":
                return first, last  # a calendar date column: the days themselves
            return first, last + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
        raise ValueError(f"dataset {self.name} is not partitioned")

    def split(self, frame: pd.DataFrame, keys: Iterable[str]) -> dict[str, pd.DataFrame]:
        """Rows per partition for `keys` (every key present, possibly empty); rows outside the
        keys are not returned. Each partition comes out in natural-key order."""
        wanted = list(keys)
        if not self.partitioned:
            raise ValueError(f"dataset {self.name} is not partitioned")
        if frame.empty:
            return {k: frame.iloc[0:0] for k in wanted}
        assert self.partition_column is not None
        ordered = frame.sort_values(list(self.key), kind="stable")
        by_key = dict(iter(ordered.groupby(self.partition_keys_of(ordered[self.partition_column]))))
        none = ordered.iloc[0:0]
        return {k: by_key.get(k, none).reset_index(drop=True) for k in wanted}

    def read(
        self,
        lake: ParquetLake,
        keys: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The given partitions (all when None) as one frame; absent keys are skipped."""
        if not self.partitioned:
            return lake.read(self.name, columns=columns)
        present = lake.partition_keys(self.name)
        chosen = present if keys is None else sorted(set(present) & set(keys))
        if not chosen:
            return self.empty_frame() if columns is None else self.empty_frame()[list(columns)]
        return lake.read(self.name, chosen, columns)

    def read_partitions(
        self, lake: ParquetLake, keys: Sequence[str], skip_corrupt: bool = False
    ) -> dict[str, pd.DataFrame]:
        """What the lake holds now for each of `keys` that is present.

        A corrupt partition raises `CorruptPartition` naming its file, unless `skip_corrupt`
        (a caller about to rewrite the range): then it is left out, as if absent.
        """
        if skip_corrupt:
            frame, corrupt = lake.read_checked(self.name, keys)
            readable = sorted((set(lake.partition_keys(self.name)) & set(keys)) - set(corrupt))
            return {} if frame is None else self.split(frame, readable)
        present = sorted(set(lake.partition_keys(self.name)) & set(keys))
        if not present:
            return {}
        return self.split(lake.read(self.name, present), present)

    # ---- the write path ----------------------------------------------------------------------

    def write(
        self,
        lake: ParquetLake,
        contents: Mapping[str, pd.DataFrame],
        existing: Mapping[str, pd.DataFrame] | None = None,
    ) -> DatasetWrite:
        """Validate and atomically write each partition's *merged* content.

        `contents` maps each partition key to that partition's complete new content.
        `existing` (what the lake held, as read before merging) lets an unchanged partition
        be skipped. Validation covers every partition that will be written, in one pass,
        before any is written: a failure writes nothing and names the rows and partitions.
        """
        existing = existing or {}
        final: dict[str, pd.DataFrame] = {}
        changed: list[str] = []
        for key in sorted(contents):
            frame = contents[key]
            frame = (
                self.empty_frame()
                if frame.empty
                else frame[self.columns].sort_values(list(self.key), ignore_index=True)
            )
            final[key] = frame
            if not same_rows(existing.get(key), frame, self.key):
                changed.append(key)
        if changed:
            sizes = [len(final[k]) for k in changed]
            stacked = pd.concat([final[k] for k in changed], ignore_index=True)
            if len(stacked):
                valid = self.validate(stacked)
                offset = 0
                for key, size in zip(changed, sizes, strict=True):
                    final[key] = valid.iloc[offset : offset + size].reset_index(drop=True)
                    offset += size
        written = lake.write_partitions(
            self.name, {k: final[k] for k in changed}, self.arrow_schema
        )
        uris = {w.partition_key: w.uri for w in written}
        return DatasetWrite(
            dataset=self.name,
            partitions={
                key: PartitionContent(
                    key=key,
                    rows=final[key],
                    uri=uris.get(key) or str(lake.partition_path(self.name, key)),
                    rewritten=key in uris,
                )
                for key in final
            },
        )

    def write_all(self, lake: ParquetLake, frame: pd.DataFrame) -> DatasetWrite:
        """An unpartitioned dataset: validate and atomically replace its single file."""
        if self.partitioned:
            raise ValueError(f"dataset {self.name} is partitioned: use write()")
        existing = {}
        if lake.has_partition(self.name):
            with contextlib.suppress(LakeError):  # unreadable: rewrite it
                existing[UNPARTITIONED] = lake.read(self.name)
        return self.write(lake, {UNPARTITIONED: frame}, existing)


@dataclass(frozen=True)
class PartitionContent:
    """One partition after a write: its full content, where it lives, whether it was rewritten."""

    key: str
    rows: pd.DataFrame
    uri: str
    rewritten: bool

    def metadata(self) -> dict[str, Any]:
        """Dagster's standard keys for this partition's materialization."""
        return {
            "dagster/row_count": MetadataValue.int(len(self.rows)),
            "dagster/uri": MetadataValue.path(self.uri),
            "rewritten": MetadataValue.bool(self.rewritten),
        }


@dataclass(frozen=True)
class DatasetWrite:
    """What `Dataset.write` did, partition by partition."""

    dataset: str
    partitions: dict[str, PartitionContent]

    @property
    def rows(self) -> int:
        return sum(len(p.rows) for p in self.partitions.values())

    @property
    def rewritten(self) -> int:
        return sum(p.rewritten for p in self.partitions.values())

    @property
    def unchanged(self) -> int:
        return len(self.partitions) - self.rewritten

    def content(self) -> pd.DataFrame:
        frames = [p.rows for p in self.partitions.values() if len(p.rows)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def record_partitions(
    context: AssetExecutionContext,
    write: DatasetWrite,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Attach each partition's own metadata to its materialization (row count, URI, ...).

    Only the run's partitions get it: a write may also repair partitions outside the run
    (a split rebasing older history), which have no materialization in this run.
    """
    extra = extra or {}
    targeted = set(context.partition_keys)
    for key, part in write.partitions.items():
        if key not in targeted:
            continue
        context.add_asset_metadata(
            {**part.metadata(), **extra.get(key, {})},
            asset_key=write.dataset,
            partition_key=key,
        )


def record_run(context: AssetExecutionContext, dataset: str, metadata: Mapping[str, Any]) -> None:
    """Run-level metadata (requests, failures, samples) goes once, on the run's newest partition.

    Dagster copies an output's unscoped metadata onto every partition's materialization; a
    three-year backfill would repeat it 783 times. Scoping it to the last partition of the run
    records it once, on the materialization the UI shows as the latest.
    """
    keys = sorted(context.partition_keys)
    context.add_asset_metadata(dict(metadata), asset_key=dataset, partition_key=keys[-1])


def same_rows(a: pd.DataFrame | None, b: pd.DataFrame, key: Sequence[str]) -> bool:
    """Whether two frames hold the same rows, whatever their order."""
    if a is None or len(a) != len(b) or list(a.columns) != list(b.columns):
        return False
    if a.empty:
        return True
    left = a.sort_values(list(key), ignore_index=True)
    right = b.sort_values(list(key), ignore_index=True)
    return left.equals(right)


def describe_failures(cases: pd.DataFrame, frame: pd.DataFrame, shown: int = 5) -> str:
    """Pandera failure cases as one readable line: which checks, which rows (by key values)."""
    parts = []
    for check, group in cases.groupby(cases["check"].astype(str), sort=True):
        index = group["index"].dropna()
        rows = frame.loc[frame.index.intersection(pd.Index(index.unique()))]
        labels = [
            " ".join(str(v.date() if isinstance(v, pd.Timestamp) else v) for v in row)
            for row in rows.head(shown)[_label_columns(rows)].itertuples(index=False)
        ]
        where = f" rows: {'; '.join(labels)}" if labels else ""
        more = f" (+{len(rows) - shown} more)" if len(rows) > shown else ""
        column = group["column"].dropna().astype(str).unique().tolist()
        parts.append(f"{check}{' on ' + ','.join(column) if column else ''}{where}{more}")
    return "; ".join(parts) or "schema validation failed"


def _label_columns(rows: pd.DataFrame) -> list[str]:
    preferred = [c for c in ("symbol", "variable", "series_id", "calendar", "date") if c in rows]
    return preferred or list(rows.columns[:2])
