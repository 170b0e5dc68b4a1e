"""What every dataset's Pandera model shares, and what one model gives the rest of the platform.

Each domain defines its models on `DatasetModel` (in its own ``schema.py``). The same model
gives three things, so they cannot drift apart:
- validation of every frame before it reaches the lake (`validate`);
- the Parquet (Arrow) schema every partition is written with (`arrow_schema`), so partitions
  written months apart, or with zero rows on a holiday, read back as one table;
- the column schema shown in the Dagster UI (`column_schema`, via dagster-pandera).
"""

from __future__ import annotations

import warnings
from functools import cache

import pandas as pd
import pandera.pandas as pa
import pyarrow
from dagster import BetaWarning, TableSchema
from dagster_pandera import pandera_schema_to_dagster_type

#: Columns marked with this metadata hold a local calendar date: midnight-naive datetime64 in
#: pandas, Parquet DATE on disk.
DATE = {"logical_type": "date"}
UTC = {"tz": "UTC"}


class DatasetModel(pa.DataFrameModel):
    """Base of every dataset model: strict columns, coerced dtypes."""

    class Config:
        strict = True  # an unexpected column is a bug upstream, not something to carry along
        coerce = True


def validate(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> pd.DataFrame:
    """Validate (and coerce) `frame` against `model`, collecting every failure before raising."""
    return model.validate(frame, lazy=True)


def empty_frame(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """A zero-row frame with the model's columns and dtypes (a holiday partition)."""
    return _empty_frame(model).copy()


@cache
def _empty_frame(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    # Coercing through pandera costs ~5 ms; a backfill asks for hundreds of these.
    schema = model.to_schema()
    return schema.coerce_dtype(pd.DataFrame({name: [] for name in schema.columns}))


@cache
def arrow_schema(model: type[pa.DataFrameModel]) -> pyarrow.Schema:
    """The Arrow schema every Parquet partition of `model` is written with."""
    fields = []
    for name, column in model.to_schema().columns.items():
        fields.append(pyarrow.field(name, _arrow_type(column), nullable=column.nullable))
    return pyarrow.schema(fields)


def _arrow_type(column: pa.Column) -> pyarrow.DataType:
    if (column.metadata or {}).get("logical_type") == "date":
        return pyarrow.date32()
    dtype = column.dtype.type
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pyarrow.timestamp("ns", tz=str(dtype.tz))
    if pd.api.types.is_datetime64_dtype(dtype):
        return pyarrow.timestamp("ns")
    if pd.api.types.is_bool_dtype(dtype):
        return pyarrow.bool_()
    if pd.api.types.is_integer_dtype(dtype):
        return pyarrow.int64()
    if pd.api.types.is_float_dtype(dtype):
        return pyarrow.float64()
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return pyarrow.string()
    raise TypeError(f"no Parquet mapping for column {column.name!r} of dtype {dtype}")


@cache
def column_schema(model: type[pa.DataFrameModel]) -> TableSchema:
    """The model's column schema as Dagster shows it (names, types, descriptions, checks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # the helper is beta; its output is stable
        value = pandera_schema_to_dagster_type(model).metadata["schema"].value
    if not isinstance(value, TableSchema):
        raise TypeError(f"dagster-pandera gave no table schema for {model.__name__}")
    return value
