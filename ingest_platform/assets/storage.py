"""The one path from a validated frame to the lake, shared by every asset.

Each asset hands over a frame per partition; this validates it against the dataset's Pandera
model, writes it atomically with the model's Arrow schema, and returns the metadata Dagster
records for that partition. Keeping it in one place is what makes "every partition in the lake
passed its schema" true rather than a convention.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
from dagster import MetadataValue

from ingest_platform import schemas
from ingest_platform.lake import UNPARTITIONED, ParquetLake

OWNERS = ["team:data-platform"]


def definition_metadata(model: type[pa.DataFrameModel]) -> dict[str, Any]:
    """Metadata attached to the asset definition: its column schema, visible before any run."""
    return {"dagster/column_schema": MetadataValue.table_schema(schemas.column_schema(model))}


def write_validated(
    lake: ParquetLake,
    dataset: str,
    model: type[pa.DataFrameModel],
    frame: pd.DataFrame,
    partition_key: str = UNPARTITIONED,
) -> dict[str, Any]:
    """Validate `frame` against `model`, write it as one partition, return its metadata.

    Raises pandera's `SchemaErrors` (listing every failing check) before anything is written.
    """
    valid = schemas.validate(model, frame)
    write = lake.write_partition(dataset, valid, schemas.arrow_schema(model), partition_key)
    return write.metadata(schemas.column_schema(model))
