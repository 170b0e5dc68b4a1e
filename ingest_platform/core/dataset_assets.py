"""A `Dataset` in Dagster: its asset arguments, its metadata, and how a write is recorded.

`core.dataset` describes a dataset and writes it, knowing no Dagster; this adapter is where the
description becomes ``@asset`` arguments (name, group, partitions, single-run backfills, owners,
column schema), where a domain opts its assets into chunked backfills
(`with_backfill_chunks`), and where a `DatasetWrite` becomes materialization metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
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

#: The tag Dagster puts on every run a backfill launches: the backfill's id.
BACKFILL_TAG = "dagster/backfill"


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


def with_backfill_chunks(
    assets: Sequence[AssetsDefinition], chunk: int | None
) -> list[AssetsDefinition]:
    """`assets`, each single-run asset backfilled in runs of at most `chunk` partitions
    (`BackfillPolicy.multi_run`); unchanged when `chunk` is None.

    Applied by a domain's Definitions when they load (`core.settings.backfill_chunk`), not at
    import, so the setting is read where the other settings are. Assets with another policy
    (none: one run per partition) keep it.
    """
    if chunk is None:
        return list(assets)
    multi_run = BackfillPolicy.multi_run(chunk)
    return [
        item.with_attributes(backfill_policy=multi_run)
        if item.backfill_policy == BackfillPolicy.single_run()
        else item
        for item in assets
    ]


def backfill_partition_keys(context: AssetExecutionContext, asset: str) -> list[str]:
    """The partitions of `asset` that the run's backfill targets as a whole, or, for a run no
    backfill launched (or one whose target the instance no longer holds), the run's own.

    A chunked backfill runs a range as several runs; a choice that must not depend on where
    the chunks fall (the rotating sample a budget-limited source reconciles) is made over the
    whole backfill, so every chunk makes the choice a single run would have made.
    """
    own = sorted(context.partition_keys)
    backfill_id = context.run.tags.get(BACKFILL_TAG)
    backfill = context.instance.get_backfill(backfill_id) if backfill_id else None
    data = getattr(backfill, "asset_backfill_data", None)  # None: a job backfill
    if data is None:
        return own
    subset = data.target_subset.partitions_subsets_by_asset_key.get(AssetKey(asset))
    if subset is None:
        return own
    return sorted(set(subset.get_partition_keys()) | set(own))


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
