"""The SQL warehouse: each dataset published to a table, one transaction per window.

Tables derive from the `Dataset` descriptions: one column per model column with the SQL type
of its Arrow (= Pandera) type, the natural key as primary key, and an index on each query key.
A publish replaces a *window* (the partitions of a run, or the whole table for an unpartitioned
dataset) in one transaction: delete the window, bulk-insert its rows. Re-running a partition
therefore never duplicates a row, and a writer killed mid-publish leaves the previous content,
because the transaction never commits.

Bulk paths: PostgreSQL gets ``COPY … FROM STDIN`` (CSV) inside the transaction; SQLite gets
``executemany`` in batches. Never row-by-row ORM objects.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ingest_platform.core.dataset import Dataset

#: Rows per executemany batch (SQLite caps host parameters at 32,766 per statement).
BATCH_ROWS = 5_000


class WarehouseError(RuntimeError):
    """A publish failed; the message names the dataset, the table and the window."""


def sql_type(arrow_type: pyarrow.DataType) -> sa.types.TypeEngine[Any]:
    """The SQL column type for an Arrow type of a dataset model."""
    if pyarrow.types.is_string(arrow_type) or pyarrow.types.is_large_string(arrow_type):
        return sa.Text()
    if pyarrow.types.is_date(arrow_type):
        return sa.Date()
    if pyarrow.types.is_timestamp(arrow_type):
        return sa.DateTime(timezone=arrow_type.tz is not None)
    if pyarrow.types.is_boolean(arrow_type):
        return sa.Boolean()
    if pyarrow.types.is_integer(arrow_type):
        return sa.BigInteger()
    if pyarrow.types.is_floating(arrow_type):
        return sa.Double()
    raise TypeError(f"no SQL type for Arrow type {arrow_type}")


def table_name(dataset: Dataset) -> str:
    return dataset.name


def table_for(dataset: Dataset, metadata: sa.MetaData) -> sa.Table:
    """The table of `dataset`: typed columns, the natural key as primary key, query indexes."""
    columns = [
        sa.Column(
            f.name,
            sql_type(f.type),
            primary_key=f.name in dataset.key,
            nullable=f.nullable and f.name not in dataset.key,
        )
        for f in dataset.arrow_schema
    ]
    table = sa.Table(table_name(dataset), metadata, *columns)
    # The primary key serves lookups by its leading column; the others get their own index.
    for column in dataset.key[1:]:
        sa.Index(f"ix_{table.name}_{column}", table.c[column])
    return table


@dataclass(frozen=True)
class Window:
    """The rows a publish replaces: ``column`` between ``start`` and ``end`` (inclusive), or
    the whole table when ``column`` is None."""

    column: str | None = None
    start: Any = None
    end: Any = None

    def where(self, table: sa.Table) -> sa.ColumnElement[bool] | None:
        if self.column is None:
            return None
        column = table.c[self.column]
        start, end = pd.Timestamp(self.start), pd.Timestamp(self.end)
        if isinstance(column.type, sa.Date):
            return column.between(start.date(), end.date())
        # DBAPIs hold microseconds: the window's end (the last nanosecond of its day) is
        # floored to the last microsecond, which no stored value exceeds.
        return column.between(start.floor("us").to_pydatetime(), end.floor("us").to_pydatetime())

    def describe(self) -> str:
        return "all rows" if self.column is None else f"{self.column} {self.start}..{self.end}"


@dataclass(frozen=True)
class PublishReport:
    table: str
    window: str
    deleted: int
    inserted: int
    seconds: float


def create_tables(engine: Engine, datasets: Sequence[Dataset]) -> sa.MetaData:
    metadata = sa.MetaData()
    for dataset in datasets:
        table_for(dataset, metadata)
    metadata.create_all(engine)
    return metadata


def _column_values(series: pd.Series, column: sa.Column[Any]) -> list[Any]:
    """One column as Python values the DBAPI takes, NULL for missing (vectorised per column)."""
    if isinstance(column.type, sa.Date):
        values = pd.Series(series.dt.date, dtype=object)
    elif isinstance(column.type, sa.DateTime):
        stamps = series.dt.tz_convert("UTC") if series.dt.tz is not None else series
        values = stamps.astype(object)  # pd.Timestamp: a datetime every DBAPI binds
    else:
        values = series.astype(object)
    return values.where(series.notna().to_numpy(), None).tolist()


def _records(frame: pd.DataFrame, table: sa.Table) -> Iterator[list[dict[str, Any]]]:
    """Rows as parameter dicts, in batches."""
    names = [c.name for c in table.columns]
    columns = [_column_values(frame[c.name], c) for c in table.columns]
    for start in range(0, len(frame), BATCH_ROWS):
        stop = start + BATCH_ROWS
        yield [
            dict(zip(names, row, strict=True))
            for row in zip(*(values[start:stop] for values in columns), strict=True)
        ]


def _copy_postgres(connection: Connection, frame: pd.DataFrame, table: sa.Table) -> None:
    """PostgreSQL's COPY FROM STDIN (CSV) through the transaction's own DBAPI connection."""
    columns = [c.name for c in table.columns]
    buffer = io.StringIO()
    frame[columns].to_csv(buffer, header=False, index=False, na_rep="\\N")
    buffer.seek(0)
    raw = connection.connection.driver_connection
    assert raw is not None
    quoted = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cursor:
        cursor.copy_expert(
            f"COPY \"{table.name}\" ({quoted}) FROM STDIN WITH (FORMAT csv, NULL '\\N')",
            buffer,
        )


def publish(
    engine: Engine,
    dataset: Dataset,
    frame: pd.DataFrame,
    window: Window,
    metadata: sa.MetaData | None = None,
) -> PublishReport:
    """Replace `window` of the dataset's table with `frame`, in one transaction."""
    metadata = metadata or create_tables(engine, [dataset])
    table = metadata.tables[table_name(dataset)]
    outside = _outside(frame, window)
    if outside:
        raise WarehouseError(
            f"{dataset.name}: {outside} row(s) fall outside the publish window "
            f"{window.describe()}; refusing a publish that would leave duplicates"
        )
    began = time.perf_counter()
    try:
        with engine.begin() as connection:
            where = window.where(table)
            deleted = connection.execute(
                table.delete() if where is None else table.delete().where(where)
            ).rowcount
            if len(frame):
                if engine.dialect.name == "postgresql":
                    _copy_postgres(connection, frame, table)
                else:
                    for rows in _records(frame, table):
                        connection.execute(table.insert(), rows)
    except (sa.exc.SQLAlchemyError, _dbapi_error(engine)) as exc:
        raise WarehouseError(
            f"{dataset.name}: publishing {len(frame)} row(s) to table {table.name} "
            f"({window.describe()}) failed, nothing changed: {type(exc).__name__}: "
            f"{str(exc.orig if hasattr(exc, 'orig') else exc)[:500]}"
        ) from None
    return PublishReport(
        table.name, window.describe(), deleted, len(frame), time.perf_counter() - began
    )


def _dbapi_error(engine: Engine) -> type[Exception]:
    """The driver's base error: COPY runs on the raw DBAPI cursor, outside SQLAlchemy."""
    dbapi = engine.dialect.dbapi
    return dbapi.Error if dbapi is not None else sa.exc.SQLAlchemyError


def _outside(frame: pd.DataFrame, window: Window) -> int:
    if window.column is None or frame.empty:
        return 0
    values = frame[window.column]
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    if values.dt.tz is not None:
        start, end = start.tz_localize("UTC"), end.tz_localize("UTC")
    return int(((values < start) | (values > end)).sum())
