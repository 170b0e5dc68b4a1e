"""`ingest-platform audit`: do the copies of the data agree?

Each dataset lives in several copies: the lake (the Parquet files), Dagster's history (the
latest materialization of each partition, with the rows and content hash the write path
recorded), the warehouse table (for published datasets) and `metadata.json`. "Consistent" means,
for every dataset and partition:

- **lake = Dagster**: the latest materialization of the partition records the rows and content
  hash the file holds now; every file in the lake has a materialization, and every
  materialization that says it stored rows has its file;
- **lake = warehouse**: the table holds, for the partition's window, exactly the file's rows
  (same row count, same content hash, values compared as the dataset's schema holds them);
- **lake = metadata.json**: the document describes the lake as it is now (partitions, rows and a
  digest of every partition's hash).

Content hashes come from `core.fingerprint` and ignore how a copy stores its values (Parquet,
SQLite, PostgreSQL), never what the values are. A materialization recorded before hashes were
kept is compared by rows only and counted as unverified.

The audit reads; `repair` (a separate module) acts on what it finds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance
from sqlalchemy.engine import Engine

from ingest_platform.core import fingerprint
from ingest_platform.core.dataset import CONTENT_HASH, Dataset, PartitionState
from ingest_platform.core.lake import UNPARTITIONED, LakeError, ParquetLake
from ingest_platform.publish.catalogue import DATASETS, PUBLISHED
from ingest_platform.publish.warehouse import table_name

LAKE, DAGSTER, WAREHOUSE, METADATA = "lake", "dagster", "warehouse", "metadata.json"
#: Record ids fetched per query when reading the latest materializations.
_CHUNK = 500


@dataclass(frozen=True)
class Recorded:
    """What the latest materialization of a partition says it holds."""

    rows: int | None
    content_hash: str | None
    run_id: str
    timestamp: float
    stored: bool = True


@dataclass(frozen=True)
class Disagreement:
    """Two copies of one partition (or one dataset) that do not hold the same thing."""

    dataset: str
    partition: str | None
    copies: tuple[str, str]
    problem: str
    figures: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        where = f"{self.dataset}[{self.partition}]" if self.partition else self.dataset
        return f"{where}: {self.copies[0]} vs {self.copies[1]}: {self.problem}"


@dataclass
class DatasetAudit:
    """One dataset's comparison."""

    dataset: str
    partitions: int = 0
    rows: int = 0
    compared: list[str] = field(default_factory=list)
    unverified: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)


@dataclass
class AuditReport:
    datasets: list[DatasetAudit]
    seconds: float = 0.0

    @property
    def disagreements(self) -> list[Disagreement]:
        return [d for audit in self.datasets for d in audit.disagreements]

    @property
    def consistent(self) -> bool:
        return not self.disagreements

    def as_dict(self) -> dict[str, Any]:
        return {
            "consistent": self.consistent,
            "seconds": round(self.seconds, 3),
            "datasets": {
                a.dataset: {
                    "partitions": a.partitions,
                    "rows": a.rows,
                    "compared": a.compared,
                    "unverified": a.unverified,
                    "disagreements": len(a.disagreements),
                }
                for a in self.datasets
            },
            "disagreements": [
                {**dataclasses.asdict(d), "copies": list(d.copies)} for d in self.disagreements
            ],
        }


# ---- the copies ------------------------------------------------------------------------------


def _value(metadata: Mapping[str, Any], name: str) -> Any:
    entry = metadata.get(name)
    return None if entry is None else getattr(entry, "value", entry)


def recorded_partitions(instance: DagsterInstance, dataset: Dataset) -> dict[str, Recorded]:
    """The latest materialization of each partition (key ``all`` for an unpartitioned one)."""
    key = AssetKey(dataset.name)
    if not dataset.partitioned:
        event = instance.get_latest_materialization_event(key)
        if event is None or event.asset_materialization is None:
            return {}
        return {UNPARTITIONED: _recorded(event.asset_materialization.metadata, event)}
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(
        key, DagsterEventType.ASSET_MATERIALIZATION
    )
    ids = sorted(latest.values())
    out: dict[str, Recorded] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        result = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, storage_ids=chunk), limit=len(chunk)
        )
        for record in result.records:
            materialization = record.asset_materialization
            if materialization is None or record.partition_key is None:
                continue
            out[record.partition_key] = _recorded(materialization.metadata, record.event_log_entry)
    return out


def _recorded(metadata: Mapping[str, Any], entry: Any) -> Recorded:
    rows = _value(metadata, "dagster/row_count")
    stored = _value(metadata, "stored")
    return Recorded(
        rows=None if rows is None else int(rows),
        content_hash=_value(metadata, CONTENT_HASH),
        run_id=entry.run_id,
        timestamp=entry.timestamp,
        stored=stored is not False,
    )


def warehouse_partitions(engine: Engine, dataset: Dataset) -> dict[str, PartitionState] | None:
    """The warehouse table's rows per partition (None when the table does not exist)."""
    name = table_name(dataset)
    if not sa.inspect(engine).has_table(name):
        return None
    columns = [f.name for f in dataset.arrow_schema]
    quoted = ", ".join(f'"{c}"' for c in columns)
    # The DBAPI's own cursor: SQLAlchemy's per-row result processing costs more than the rows
    # (half of a three-year audit). Values come back as the driver gives them (ISO strings on
    # SQLite, datetimes on PostgreSQL) and take the dataset's types in one vectorised pass.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f'SELECT {quoted} FROM "{name}"')
        rows = cursor.fetchall()
        cursor.close()
    finally:
        raw.close()
    frame = _as_dataset_types(pd.DataFrame.from_records(rows, columns=columns), dataset)
    if not dataset.partitioned:
        return {UNPARTITIONED: PartitionState.of(frame, dataset.arrow_schema)}
    if frame.empty:
        return {}
    labels = dataset.scheme.keys_of(frame[dataset.scheme.column]).to_numpy()
    hashes = fingerprint.partition_hashes(frame, labels, dataset.arrow_schema)
    return {k: PartitionState(n, h) for k, (n, h) in hashes.items()}


def _as_dataset_types(frame: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """SQL values in the dataset's pandas types: what the DBAPI returns (dates, naive UTC
    datetimes on SQLite, aware ones on PostgreSQL, 0/1 booleans) as the lake holds them."""
    out = {}
    for f in dataset.arrow_schema:
        values = frame[f.name] if f.name in frame else pd.Series(dtype=object)
        kind = f.type
        if str(kind).startswith("timestamp"):
            out[f.name] = pd.to_datetime(
                values, utc=getattr(kind, "tz", None) is not None, format="ISO8601"
            )
        elif str(kind).startswith("date"):
            out[f.name] = pd.to_datetime(values, format="ISO8601")
        elif str(kind) == "bool":
            out[f.name] = values.map(lambda v: None if v is None else bool(v)).astype(object)
        else:
            out[f.name] = values
    return pd.DataFrame(out)


# ---- the comparison --------------------------------------------------------------------------


def _short(text: str | None) -> str:
    return "none" if text is None else text[:12]


def compare_dagster(
    name: str, lake: Mapping[str, PartitionState], recorded: Mapping[str, Recorded]
) -> tuple[list[Disagreement], int]:
    """Lake files against Dagster's latest materializations; returns the disagreements and
    how many partitions could be compared by rows only (no hash recorded)."""
    out: list[Disagreement] = []
    unverified = 0
    for key in sorted(set(lake) | set(recorded)):
        have, said = lake.get(key), recorded.get(key)
        pair = (LAKE, DAGSTER)
        if said is None:
            assert have is not None
            out.append(
                Disagreement(
                    name, key, pair,
                    f"the lake holds this partition ({have.rows} rows) but Dagster has no "
                    "materialization of it",
                    {"lake_rows": have.rows, "lake_hash": have.content_hash},
                )
            )  # fmt: skip
            continue
        if have is None:
            if said.stored and (said.rows is None or said.rows > 0 or said.content_hash):
                out.append(
                    Disagreement(
                        name, key, pair,
                        f"Dagster's latest materialization (run {said.run_id[:8]}) records "
                        f"{said.rows} rows, but the lake has no file",
                        {"dagster_rows": said.rows, "dagster_hash": said.content_hash},
                    )
                )  # fmt: skip
            continue
        if not said.stored:
            out.append(
                Disagreement(
                    name, key, pair,
                    f"the lake holds {have.rows} rows, but Dagster's latest materialization "
                    f"(run {said.run_id[:8]}) says nothing was stored",
                    {"lake_rows": have.rows},
                )
            )  # fmt: skip
            continue
        if said.content_hash is None:
            unverified += 1
        rows_differ = said.rows is not None and said.rows != have.rows
        hash_differs = said.content_hash is not None and said.content_hash != have.content_hash
        if rows_differ or hash_differs:
            out.append(
                Disagreement(
                    name, key, pair,
                    f"lake {have.rows} rows {_short(have.content_hash)}, Dagster's latest "
                    f"materialization (run {said.run_id[:8]}) {said.rows} rows "
                    f"{_short(said.content_hash)}",
                    {
                        "lake_rows": have.rows,
                        "lake_hash": have.content_hash,
                        "dagster_rows": said.rows,
                        "dagster_hash": said.content_hash,
                    },
                )
            )  # fmt: skip
    return out, unverified


def compare_warehouse(
    name: str,
    lake: Mapping[str, PartitionState],
    table: Mapping[str, PartitionState] | None,
) -> list[Disagreement]:
    """Lake files against the warehouse table, partition by partition."""
    pair = (LAKE, WAREHOUSE)
    if table is None:
        rows = sum(p.rows for p in lake.values())
        if rows == 0:
            return []
        return [Disagreement(name, None, pair, f"no table {name} (the lake holds {rows} rows)")]
    out = []
    empty = PartitionState(0, fingerprint.EMPTY)
    for key in sorted(set(lake) | set(table)):
        have, published = lake.get(key, empty), table.get(key, empty)
        if have == published:
            continue
        out.append(
            Disagreement(
                name, key, pair,
                f"lake {have.rows} rows {_short(have.content_hash)}, warehouse "
                f"{published.rows} rows {_short(published.content_hash)}",
                {
                    "lake_rows": have.rows,
                    "lake_hash": have.content_hash,
                    "warehouse_rows": published.rows,
                    "warehouse_hash": published.content_hash,
                },
            )
        )  # fmt: skip
    return out


def compare_metadata(
    name: str,
    lake: Mapping[str, PartitionState],
    corrupt: Sequence[str],
    document: Mapping[str, Any] | None,
    recorded: Mapping[str, Recorded],
) -> list[Disagreement]:
    """The lake against metadata.json's description of it."""
    pair = (LAKE, METADATA)
    if document is None:
        return [Disagreement(name, None, pair, "there is no metadata.json")]
    entry = (document.get("datasets") or {}).get(name)
    described = (entry or {}).get("content")
    partitions = len(lake) + len(corrupt)
    if entry is None and partitions == 0:
        return []
    if entry is None or described is None:
        return [Disagreement(name, None, pair, "metadata.json does not describe this dataset")]
    rows = sum(p.rows for p in lake.values())
    digest = fingerprint.digest(
        {**{k: p.content_hash for k, p in lake.items()}, **dict.fromkeys(corrupt, "corrupt")}
    )
    if (described["partitions"], described["rows"], described["digest"]) == (
        partitions,
        rows,
        digest,
    ):
        return []
    generated = str(document.get("generated_at", ""))
    since = _materialized_after(recorded, generated)
    named = f"; materialized since: {', '.join(since[:10])}" if since else ""
    more = f" (+{len(since) - 10} more)" if len(since) > 10 else ""
    return [
        Disagreement(
            name, None, pair,
            f"metadata.json (generated {generated}) describes {described['partitions']} "
            f"partitions, {described['rows']} rows; the lake holds {partitions} partitions, "
            f"{rows} rows{named}{more}",
            {
                "metadata_partitions": described["partitions"],
                "metadata_rows": described["rows"],
                "metadata_digest": described["digest"],
                "lake_partitions": partitions,
                "lake_rows": rows,
                "lake_digest": digest,
                "materialized_since": since,
            },
        )
    ]  # fmt: skip


def _materialized_after(recorded: Mapping[str, Recorded], generated: str) -> list[str]:
    try:
        moment = dt.datetime.fromisoformat(generated).timestamp()
    except ValueError:
        return []
    return sorted(k for k, r in recorded.items() if r.timestamp > moment)


def audit_dataset(
    dataset: Dataset,
    lake: ParquetLake,
    instance: DagsterInstance,
    engine: Engine | None,
    document: Mapping[str, Any] | None,
) -> DatasetAudit:
    state, corrupt = dataset.content_state(lake)
    recorded = recorded_partitions(instance, dataset)
    audit = DatasetAudit(
        dataset.name, len(state) + len(corrupt), sum(p.rows for p in state.values())
    )
    for key in corrupt:
        audit.disagreements.append(
            Disagreement(dataset.name, key, (LAKE, LAKE), "the partition file is unreadable")
        )
    found, audit.unverified = compare_dagster(dataset.name, state, recorded)
    audit.disagreements += found
    audit.compared.append(DAGSTER)
    if engine is not None and dataset in PUBLISHED:
        table = warehouse_partitions(engine, dataset)
        audit.disagreements += compare_warehouse(dataset.name, state, table)
        audit.compared.append(WAREHOUSE)
    audit.disagreements += compare_metadata(dataset.name, state, corrupt, document, recorded)
    audit.compared.append(METADATA)
    return audit


def read_metadata(lake: ParquetLake) -> dict[str, Any] | None:
    try:
        document = lake.read_json("metadata.json", missing_ok=True)
    except (LakeError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def run_audit(
    lake: ParquetLake,
    instance: DagsterInstance,
    engine: Engine | None,
    datasets: Iterable[Dataset] = DATASETS,
) -> AuditReport:
    """Every dataset's copies compared (see the module docstring)."""
    began = dt.datetime.now(dt.UTC)
    document = read_metadata(lake)
    audits = [audit_dataset(d, lake, instance, engine, document) for d in datasets]
    seconds = (dt.datetime.now(dt.UTC) - began).total_seconds()
    return AuditReport(audits, seconds)
