"""A dataset described once, and the one validated path from frames to the lake.

A `Dataset` names a dataset and holds its Pandera model, partitioning, natural key, owners and
description. Everything else derives from it: the Arrow schema of its Parquet files, `write`,
the single function through which every asset puts rows in the lake, and (in
`core.dataset_assets`, the Dagster adapter) the asset's definition arguments and metadata. This
module imports no Dagster, so flows that read and write datasets stay plain Python.

`write` validates the *merged* content of each partition it is about to replace (not just the
freshly fetched rows), skips partitions whose content would not change (so a re-run leaves the
lake untouched), and writes each changed partition atomically. "Every partition in the lake
passed its schema" is therefore a property of the code, not a convention.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd
import pandera.errors as pandera_errors
import pandera.pandas as pa
import pyarrow

from ingest_platform.core import fingerprint, schema
from ingest_platform.core.lake import UNPARTITIONED, LakeError, ParquetLake
from ingest_platform.core.partitioning import PartitionScheme

OWNERS = ("team:data-platform",)
#: Materialization metadata: the partition's content hash (`core.fingerprint`).
CONTENT_HASH = "content_hash"
#: Materialization metadata: why a partition was rewritten.
REWRITE_REASON = "rewrite_reason"
KINDS = frozenset({"pandas", "parquet"})


class DatasetValidationError(ValueError):
    """Merged partition content failed the dataset's schema; nothing was written."""


@dataclass(frozen=True)
class Dataset:
    """One dataset of the lake: its shape, partitioning and how its asset is presented.

    `partitioning` says which partition a row belongs to and what a partition holds (one
    `PartitionScheme` per family of datasets, shared by the write path, the checks, the
    warehouse windows and the as-of reads). `key` is the natural key: unique within the
    dataset, and each partition's sort order.
    """

    name: str
    model: type[pa.DataFrameModel]
    description: str
    group: str
    key: tuple[str, ...]
    partitioning: PartitionScheme | None = None
    owners: tuple[str, ...] = OWNERS
    kinds: frozenset[str] = KINDS
    #: Fraction of expected observations the coverage check wants present (None: not checked).
    expected_coverage: float | None = None
    #: When the dataset counts as stale, for the UI (the daemon evaluates it); CI runs the
    #: partition-aware staleness checks instead, which need no daemon. A Dagster
    #: `FreshnessPolicy`, handed through as is (`core.dataset_assets.freshness_policy`).
    freshness: object | None = None
    extra_metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        columns = self.model.to_schema().columns
        missing = [c for c in self.key if c not in columns]
        if missing:
            raise ValueError(f"dataset {self.name}: key column(s) {missing} not in the model")
        if self.partitioning is not None and self.partitioning.column not in columns:
            raise ValueError(
                f"dataset {self.name}: partition column {self.partitioning.column!r} "
                f"({self.partitioning.name}) is not in the model"
            )

    # ---- what the model gives ----------------------------------------------------------------

    @property
    def partitioned(self) -> bool:
        return self.partitioning is not None

    @property
    def scheme(self) -> PartitionScheme:
        """The partitioning, for a dataset known to be partitioned (else a clear error)."""
        if self.partitioning is None:
            raise ValueError(f"dataset {self.name} is not partitioned")
        return self.partitioning

    @property
    def partition_column(self) -> str | None:
        return None if self.partitioning is None else self.partitioning.column

    @cached_property
    def arrow_schema(self) -> pyarrow.Schema:
        return schema.arrow_schema(self.model)

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

    # ---- partitions --------------------------------------------------------------------------

    @property
    def first_key(self) -> str | None:
        """The first partition: it also holds whatever came before it."""
        return None if self.partitioning is None else self.partitioning.first_key

    def partition_keys_of(self, values: pd.Series) -> pd.Series:
        """The partition key of each value of the partition column (`PartitionScheme.keys_of`)."""
        return self.scheme.keys_of(values)

    def key_window(self, keys: Sequence[str]) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The span of partition-column values partitions `keys` hold, inclusive at both ends
        (`PartitionScheme.bounds`)."""
        return self.scheme.bounds(keys)

    def split(self, frame: pd.DataFrame, keys: Iterable[str]) -> dict[str, pd.DataFrame]:
        """Rows per partition for `keys` (every key present, possibly empty); rows outside the
        keys are not returned. Each partition comes out in natural-key order."""
        wanted = list(keys)
        scheme = self.scheme
        if frame.empty:
            return {k: frame.iloc[0:0] for k in wanted}
        ordered = frame.sort_values(list(self.key), kind="stable")
        by_key = dict(iter(ordered.groupby(scheme.keys_of(ordered[scheme.column]))))
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

    def corrupt_keys(self, lake: ParquetLake, keys: Sequence[str]) -> list[str]:
        """Which of `keys` the lake holds as unreadable files (empty when all read cleanly)."""
        _, corrupt = lake.read_checked(self.name, keys, columns=list(self.key[:1]))
        return corrupt

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

    def content_state(self, lake: ParquetLake) -> tuple[dict[str, PartitionState], list[str]]:
        """What the lake holds for this dataset, partition by partition: rows and content hash
        (`core.fingerprint`), and the keys of unreadable (corrupt) files. One read of every
        partition, one hashing pass: what `ingest-platform audit` and metadata.json compare."""
        if not self.partitioned:
            if not lake.has_partition(self.name):
                return {}, []
            try:
                frame = lake.read(self.name)
            except LakeError:
                return {}, [UNPARTITIONED]
            return {UNPARTITIONED: PartitionState.of(frame, self.arrow_schema)}, []
        keys = lake.partition_keys(self.name)
        frame, corrupt = lake.read_checked(self.name, keys)
        state = {k: PartitionState(0, fingerprint.EMPTY) for k in keys if k not in corrupt}
        if frame is not None and len(frame):
            labels = self.scheme.keys_of(frame[self.scheme.column]).to_numpy()
            hashes = fingerprint.partition_hashes(frame, labels, self.arrow_schema)
            state.update({k: PartitionState(rows, h) for k, (rows, h) in hashes.items()})
        return state, corrupt

    # ---- the write path ----------------------------------------------------------------------

    def write(
        self,
        lake: ParquetLake,
        contents: Mapping[str, pd.DataFrame],
        existing: Mapping[str, pd.DataFrame] | None = None,
        reasons: Mapping[str, str] | None = None,
    ) -> DatasetWrite:
        """Validate and atomically write each partition's *merged* content.

        `contents` maps each partition key to that partition's complete new content.
        `existing` (what the lake held, as read before merging) lets an unchanged partition
        be skipped. Validation covers every partition that will be written, in one pass,
        before any is written: a failure writes nothing and names the rows and partitions.
        `reasons` says why a partition is rewritten when the caller knows better than "new" or
        "changed" (``rebased_for_split: NVDA 10:1``); it travels to the partition's
        materialization. Every partition returned carries its content hash
        (`core.fingerprint`), the figure `ingest-platform audit` holds the copies against.
        """
        existing = existing or {}
        reasons = reasons or {}
        keys = sorted(contents)
        final: dict[str, pd.DataFrame] = {}
        changed: list[str] = []
        for key in keys:
            frame = contents[key]
            frame = (
                self.empty_frame()
                if frame.empty
                else frame[self.columns].sort_values(list(self.key), ignore_index=True)
            )
            final[key] = frame
            if not same_rows(existing.get(key), frame, self.key):
                changed.append(key)
        unchanged = {k: f for k, f in final.items() if k not in set(changed)}
        hashes = fingerprint.hashes_of(unchanged, self.arrow_schema)
        del unchanged
        written = []
        if changed:
            # The changed partitions are held once more, stacked: validated, converted to
            # Arrow once for both their hashes and their files, then sliced back. Each copy is
            # dropped as soon as the next exists: a year of 5,000 instruments is 1.25 M rows.
            sizes = {k: len(final[k]) for k in changed}
            stacked = pd.concat([final[k] for k in changed], ignore_index=True)
            if len(stacked):
                for key in changed:
                    del final[key]
                stacked = self.validate(stacked)
            table = lake.arrow_table(self.name, stacked, self.arrow_schema)
            hashes.update(fingerprint.table_hashes(table, sizes))
            written = lake.write_table_partitions(self.name, table, sizes)
            del table
            offset = 0
            for key, size in sizes.items():
                if key not in final:
                    final[key] = stacked.iloc[offset : offset + size].reset_index(drop=True)
                offset += size
            del stacked
        uris = {w.partition_key: w.uri for w in written}
        return DatasetWrite(
            dataset=self.name,
            partitions={
                key: PartitionContent(
                    key=key,
                    rows=final[key],
                    uri=uris.get(key) or str(lake.partition_path(self.name, key)),
                    rewritten=key in uris,
                    content_hash=hashes[key],
                    reason=(
                        reasons.get(key) or ("new" if key not in existing else "changed")
                        if key in uris
                        else None
                    ),
                )
                for key in keys
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
class PartitionState:
    """How many rows a copy of a partition holds, and their content hash."""

    rows: int
    content_hash: str

    @classmethod
    def of(cls, frame: pd.DataFrame, schema: pyarrow.Schema) -> PartitionState:
        return cls(len(frame), fingerprint.content_hash(frame, schema))


@dataclass(frozen=True)
class PartitionContent:
    """One partition after a write: its full content, where it lives, whether it was rewritten."""

    key: str
    rows: pd.DataFrame
    uri: str
    rewritten: bool
    #: `core.fingerprint.content_hash` of the rows: what the lake holds for this partition now.
    content_hash: str = fingerprint.EMPTY
    #: Why it was rewritten ("new", "changed", "rebased_for_split: NVDA 10:1"); None if not.
    reason: str | None = None


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
