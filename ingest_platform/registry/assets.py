"""`variable_mappings`: every model variable of the registry mapped to the series it is read
from, validated against what the platform actually ingests.

The registry files are read when the asset runs, never at import: a broken registry fails this
asset with a message naming the entry and the file, and the rest of the code location loads.
"""

from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from ingest_platform.core.dataset_assets import asset_kwargs, content_metadata
from ingest_platform.core.lake import LakeError, ParquetLake
from ingest_platform.core.metadata import markdown_table
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.reference.schema import INSTRUMENTS
from ingest_platform.registry.catalogue import load_series_catalogue
from ingest_platform.registry.load import RULES_FILE, VARIABLES_FILE, load_registry
from ingest_platform.registry.mapping import map_variables
from ingest_platform.registry.schema import VARIABLE_MAPPINGS
from ingest_platform.registry.tags import KnownSources
from ingest_platform.streaming.kraken.resources import KrakenStream


@asset(**asset_kwargs(VARIABLE_MAPPINGS, deps=[INSTRUMENTS.name]))
def variable_mappings(
    context: AssetExecutionContext,
    lake: ParquetLake,
    reference_files: ReferenceFiles,
    kraken_stream: KrakenStream,
) -> MaterializeResult:
    folder = Path(reference_files.directory)
    try:
        instruments = INSTRUMENTS.read(lake, columns=["symbol"])
    except LakeError as exc:
        raise LakeError(f"{exc}; materialize the `instruments` asset first") from exc
    known = KnownSources.from_tables(
        instruments, load_series_catalogue(folder), kraken_stream.pairs
    )
    registry = load_registry(folder, known)
    mappings = map_variables(registry.variables, registry.rules, known)
    write = VARIABLE_MAPPINGS.write_all(lake, mappings)
    (part,) = write.partitions.values()
    unmapped = mappings[mappings["source"].isna()]
    for row in unmapped.itertuples(index=False):
        context.log.warning("unmapped variable %s: %s", row.variable, row.reason)
    by_rule = mappings["rule"].fillna("unmapped").str.split(":").str[0].value_counts()
    by_source = mappings["source"].fillna("unmapped").value_counts()
    return MaterializeResult(
        metadata={
            **content_metadata(part),
            "variables": MetadataValue.int(len(mappings)),
            "mapped": MetadataValue.int(int(mappings["source"].notna().sum())),
            "unmapped": MetadataValue.int(len(unmapped)),
            **{f"by_rule_{k}": MetadataValue.int(int(v)) for k, v in by_rule.items()},
            **{f"from_{k}": MetadataValue.int(int(v)) for k, v in by_source.items()},
            "unmapped_variables": markdown_table(unmapped[["variable", "reason"]]),
            "registry": MetadataValue.path(str(folder / VARIABLES_FILE)),
            "rules": MetadataValue.path(str(folder / RULES_FILE)),
        }
    )


REGISTRY_ASSETS = [variable_mappings]
