"""`warehouse_*` assets: each consolidated dataset published to its SQL table.

One asset per dataset, made by one factory from the dataset's description: same partitions as
the dataset, a single run per range, and a window (the run's partitions) replaced in one
transaction. They materialize after the dataset they publish (an automation condition), and
only once every blocking check on it passed: a blocking check that failed, at WARN or ERROR,
holds the publish back (Dagster's condition knows pass and fail, not severity), so a published
table never carries data a blocking check doubts. Non-blocking checks never hold it.
"""

from collections.abc import Sequence

from dagster import (
    AssetCheckKey,
    AssetExecutionContext,
    AssetsDefinition,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ingest_platform.core import settings
from ingest_platform.core.dataset import OWNERS, Dataset
from ingest_platform.core.dataset_assets import asset_kwargs, record_run
from ingest_platform.core.lake import ParquetLake
from ingest_platform.economic.resources import Fred, WorldBank
from ingest_platform.market.resources import AlphaVantage, Polygon
from ingest_platform.publish import metadata, state
from ingest_platform.publish.catalogue import DATASETS
from ingest_platform.publish.readme import render
from ingest_platform.publish.resources import Warehouse
from ingest_platform.publish.warehouse import Window, create_tables, publish

GROUP = "warehouse"
METADATA_FILE = "metadata.json"
README_FILE = "README.md"

#: Publish each partition after its upstream partition is updated (any partition, not only the
#: latest, so a backfill is published too), never while an upstream blocking check is failing.
PUBLISH_CONDITION = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_missing()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
    & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("after each upstream update, blocking checks passed")


def warehouse_asset(dataset: Dataset) -> AssetsDefinition:
    """The asset that publishes `dataset` to its table."""
    name = f"warehouse_{dataset.name}"
    kwargs = asset_kwargs(
        dataset,
        name=name,
        group_name=GROUP,
        deps=[dataset.name],
        kinds={"sql", "sqlite", "postgres"},
        description=f"`{dataset.name}` published to the SQL table {dataset.name} (primary key "
        f"{', '.join(dataset.key)}), one transaction per run window.",
        automation_condition=PUBLISH_CONDITION,
        pool="warehouse",
        metadata={"table": MetadataValue.text(dataset.name)},
    )

    @asset(**kwargs)
    def _publish(
        context: AssetExecutionContext, lake: ParquetLake, warehouse: Warehouse
    ) -> MaterializeResult:
        engine = warehouse.engine()
        metadata = create_tables(engine, [dataset])
        if dataset.partitioned:
            keys = sorted(context.partition_keys)
            frame = dataset.read(lake, keys)
            start, end = dataset.key_window(keys)
            window = Window(dataset.partition_column, start, end)
        else:
            frame = lake.read(dataset.name)
            window = Window()
        report = publish(engine, dataset, frame, window, metadata)
        context.log.info(
            "%s: %s replaced (%d deleted, %d inserted) in %.2f s",
            report.table,
            report.window,
            report.deleted,
            report.inserted,
            report.seconds,
        )
        figures = {
            "table": MetadataValue.text(report.table),
            "warehouse": MetadataValue.text(warehouse.redacted_url()),
            "window": MetadataValue.text(report.window),
            "rows_deleted": MetadataValue.int(report.deleted),
            "rows_inserted": MetadataValue.int(report.inserted),
            "publish_seconds": MetadataValue.float(round(report.seconds, 3)),
            "rows_per_second": MetadataValue.float(
                round(report.inserted / report.seconds, 1) if report.seconds else 0.0
            ),
        }
        if dataset.partitioned:
            record_run(context, name, figures)
            return MaterializeResult()
        return MaterializeResult(metadata=figures)

    return _publish


METADATA_GROUP = "metadata"


def dataset_metadata_asset(check_keys: Sequence[AssetCheckKey]) -> AssetsDefinition:
    """The `dataset_metadata` asset, reporting the latest results of `check_keys`.

    The check keys are those of the whole code location, handed over when it is assembled:
    the run's own asset graph holds only the assets it runs, and a run started in process
    (tests, `materialize`) has no repository to ask.
    """
    declared = tuple(check_keys)

    @asset(
        name="dataset_metadata",
        group_name=METADATA_GROUP,
        deps=[d.name for d in DATASETS],
        kinds={"json", "markdown"},
        owners=list(OWNERS),
        description="metadata.json and README.md at the lake root: every dataset's schema, rows, "
        "date range, partitions present and missing, source mix, coverage per symbol and per "
        "variable (the quality functions), last materialization and latest check results; each "
        "source's calls against its budget; the registry's mapped and unmapped variables.",
    )
    def dataset_metadata(
        context: AssetExecutionContext,
        lake: ParquetLake,
        alpha_vantage: AlphaVantage,
        polygon: Polygon,
        fred: Fred,
        worldbank: WorldBank,
    ) -> MaterializeResult:
        now = settings.now().to_pydatetime()
        checks = state.latest_checks(context.instance, declared)
        budgets = {
            "alpha_vantage": alpha_vantage.budget(),
            "polygon": polygon.budget(),
            "fred": fred.budget(),
            "worldbank": worldbank.budget(),
        }
        document = metadata.build(lake, context.instance, checks, budgets, now)
        readme = render(document)
        json_uri = lake.write_json(METADATA_FILE, document)
        readme_uri = lake.write_text(README_FILE, readme)
        datasets = document["datasets"]
        return MaterializeResult(
            metadata={
                "metadata_json": MetadataValue.path(json_uri),
                "readme": MetadataValue.md(readme),
                "readme_path": MetadataValue.path(readme_uri),
                "datasets": MetadataValue.int(len(datasets)),
                "rows_total": MetadataValue.int(sum(d["rows"] for d in datasets.values())),
                "missing_partitions": MetadataValue.int(
                    sum((d["partitions"] or {}).get("missing_count", 0) for d in datasets.values())
                ),
                "failing_checks": MetadataValue.int(
                    sum(1 for d in datasets.values() for c in d["checks"] if c["passed"] is False)
                ),
            }
        )

    return dataset_metadata
