"""`warehouse_*` assets: each consolidated dataset published to its SQL table.

One asset per dataset, made by one factory from the dataset's description: same partitions as
the dataset, a single run per range, and a window (the run's partitions) replaced in one
transaction. They materialize after the dataset they publish (an automation condition), and
only once its blocking checks passed: a failed ERROR check upstream holds the publish back.
"""

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ingest_platform.core.dataset import Dataset, record_run
from ingest_platform.core.lake import ParquetLake
from ingest_platform.publish.resources import Warehouse
from ingest_platform.publish.warehouse import Window, create_tables, publish

GROUP = "warehouse"

#: Publish after each upstream update, never while a blocking check on it is failing.
PUBLISH_CONDITION = (
    AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager, blocking checks passed")


def warehouse_asset(dataset: Dataset) -> AssetsDefinition:
    """The asset that publishes `dataset` to its table."""
    name = f"warehouse_{dataset.name}"
    kwargs = dataset.asset_kwargs(
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
