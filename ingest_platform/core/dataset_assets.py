"""A `Dataset` in Dagster: its asset arguments, its metadata, and how a write is recorded.

`core.dataset` describes a dataset and writes it, knowing no Dagster; this adapter is where the
description becomes ``@asset`` arguments (name, group, partitions, single-run backfills, owners,
column schema), and where a `DatasetWrite` becomes materialization metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    FreshnessPolicy,
    MetadataValue,
    PartitionsDefinition,
    TableSchema,
)

from ingest_platform.core import partitions, schema
from ingest_platform.core.dataset import (
    CONTENT_HASH,
    REWRITE_REASON,
    Dataset,
    DatasetWrite,
    PartitionContent,
)


def partitions_def(dataset: Dataset) -> PartitionsDefinition | None:
    """Dagster's definition of the partitioning (the same object for every dataset of a
    scheme)."""
    return None if dataset.partitioning is None else partitions.definition(dataset.partitioning)


def column_schema(dataset: Dataset) -> TableSchema:
    return schema.column_schema(dataset.model)


def freshness_policy(dataset: Dataset) -> FreshnessPolicy | None:
    """The dataset's freshness policy, or a clear error naming the dataset if it is not one."""
    if dataset.freshness is None or isinstance(dataset.freshness, FreshnessPolicy):
        return dataset.freshness
    raise TypeError(
        f"dataset {dataset.name}: freshness must be a dagster FreshnessPolicy, "
        f"got {type(dataset.freshness).__name__}"
    )


def definition_metadata(dataset: Dataset) -> dict[str, Any]:
    """Attached to the asset definition: visible in the UI before any run."""
    return {
        "dagster/column_schema": MetadataValue.table_schema(column_schema(dataset)),
        "natural_key": MetadataValue.text(", ".join(dataset.key)),
        **dataset.extra_metadata,
    }


def asset_kwargs(dataset: Dataset, **overrides: Any) -> dict[str, Any]:
    """Arguments for ``@asset``: name, group, partitions, single-run backfills, owners."""
    kwargs: dict[str, Any] = {
        "name": dataset.name,
        "group_name": dataset.group,
        "kinds": set(dataset.kinds),
        "owners": list(dataset.owners),
        "description": dataset.description,
        "metadata": definition_metadata(dataset),
    }
    if dataset.partitioned:
        kwargs["partitions_def"] = partitions_def(dataset)
        kwargs["backfill_policy"] = BackfillPolicy.single_run()
    freshness = freshness_policy(dataset)
    if freshness is not None:
        kwargs["freshness_policy"] = freshness
    kwargs.update(overrides)
    return kwargs


def spec(dataset: Dataset, **overrides: Any) -> AssetSpec:
    """An `AssetSpec` for a ``@multi_asset`` (which sets partitions for all its specs)."""
    kwargs = asset_kwargs(dataset)
    for name in ("name", "group_name", "partitions_def", "backfill_policy"):
        kwargs.pop(name, None)
    kwargs.update(overrides)
    return AssetSpec(dataset.name, **kwargs)


def content_metadata(part: PartitionContent) -> dict[str, Any]:
    """Dagster's standard keys for a partition's materialization, its content hash and, when it
    was rewritten, why."""
    out = {
        "dagster/row_count": MetadataValue.int(len(part.rows)),
        "dagster/uri": MetadataValue.path(part.uri),
        CONTENT_HASH: MetadataValue.text(part.content_hash),
        "rewritten": MetadataValue.bool(part.rewritten),
    }
    if part.reason:
        out[REWRITE_REASON] = MetadataValue.text(part.reason)
    return out


def record_partitions(
    context: AssetExecutionContext,
    write: DatasetWrite,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Give every partition the write touched a materialization with its own metadata.

    The run's own partitions get theirs on the run's materialization (row count, URI, content
    hash, and why when rewritten). A partition *outside* the run that the write changed (a
    split rebasing older history, a repair) gets a materialization of its own, logged by this
    op: otherwise Dagster's history would show superseded content as current, and the publish
    automation, which follows materializations, would never republish it. Returns the keys
    recorded outside the run.
    """
    extra = extra or {}
    targeted = set(context.partition_keys)
    outside = []
    for key, part in sorted(write.partitions.items()):
        metadata = {**content_metadata(part), **extra.get(key, {})}
        if key in targeted:
            context.add_asset_metadata(metadata, asset_key=write.dataset, partition_key=key)
        elif part.rewritten:
            context.log_event(
                AssetMaterialization(
                    asset_key=write.dataset,
                    partition=key,
                    description=f"rewritten outside the run's partitions: {part.reason}",
                    metadata=metadata,
                )
            )
            outside.append(key)
    return outside


def record_run(context: AssetExecutionContext, dataset: str, metadata: Mapping[str, Any]) -> None:
    """Run-level metadata (requests, failures, samples) goes once, on the run's newest partition.

    Dagster copies an output's unscoped metadata onto every partition's materialization; a
    three-year backfill would repeat it 783 times. Scoping it to the last partition of the run
    records it once, on the materialization the UI shows as the latest.
    """
    keys = sorted(context.partition_keys)
    context.add_asset_metadata(dict(metadata), asset_key=dataset, partition_key=keys[-1])
