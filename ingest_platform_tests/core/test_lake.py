"""The lake: atomic partition writes, range writes, reads by range, projection."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pandas as pd
import pyarrow
import pyarrow.parquet as pq
import pytest

from ingest_platform.core.lake import CorruptPartition, LakeError, ParquetLake

SCHEMA = pyarrow.schema(
    [
        pyarrow.field("symbol", pyarrow.string(), nullable=False),
        pyarrow.field("date", pyarrow.date32(), nullable=False),
        pyarrow.field("close", pyarrow.float64(), nullable=False),
    ]
)


def bars(day: str, symbols: list[str], close: float = 10.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": symbols,
            "date": pd.to_datetime([day] * len(symbols)),
            "close": [close + i for i in range(len(symbols))],
        }
    )


def test_write_then_read_one_partition(lake: ParquetLake):
    write = lake.write_partition("bars", bars("2024-03-01", ["AAPL", "MSFT"]), SCHEMA, "2024-03-01")
    assert write.row_count == 2
    assert write.uri.endswith("bars/2024-03-01.parquet")
    frame = lake.read("bars", ["2024-03-01"])
    assert frame["symbol"].tolist() == ["AAPL", "MSFT"]
    assert str(frame["date"].dtype) == "datetime64[ns]"
    metadata = write.metadata()
    assert metadata["dagster/row_count"].value == 2
    assert metadata["dagster/uri"].value == write.uri


def test_range_write_reload_and_projection(lake: ParquetLake):
    days = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]
    writes = lake.write_partitions(
        "bars", {d: bars(d, ["AAPL", "MSFT", "SPY"]) for d in days}, SCHEMA
    )
    assert [w.partition_key for w in writes] == days
    assert lake.partition_keys("bars") == days

    middle = lake.read_range("bars", "2024-03-05", "2024-03-06")
    assert sorted(middle["date"].dt.strftime("%Y-%m-%d").unique()) == days[1:3]
    assert len(middle) == 6

    projected = lake.read("bars", columns=["symbol", "close"])
    assert list(projected.columns) == ["symbol", "close"]
    assert len(projected) == 12


def test_slices_of_one_table_are_written_as_partitions(lake: ParquetLake):
    days = {"2024-03-04": ["AAPL", "MSFT"], "2024-03-05": [], "2024-03-06": ["SPY"]}
    frames = {d: bars(d, symbols) for d, symbols in days.items()}
    table = lake.arrow_table("bars", pd.concat(frames.values(), ignore_index=True), SCHEMA)
    sizes = {d: len(f) for d, f in frames.items()}
    writes = lake.write_table_partitions("bars", table, sizes)
    assert [(w.partition_key, w.row_count) for w in writes] == list(sizes.items())
    assert lake.read("bars", ["2024-03-06"])["symbol"].tolist() == ["SPY"]
    assert lake.read("bars", ["2024-03-05"]).empty
    with pytest.raises(ValueError, match="partitions of 2 rows for a table of 3"):
        lake.write_table_partitions("bars", table, {"2024-03-07": 2})
    assert "2024-03-07" not in lake.partition_keys("bars")


def test_rewrite_replaces_the_partition(lake: ParquetLake):
    lake.write_partition("bars", bars("2024-03-01", ["AAPL", "MSFT"]), SCHEMA, "2024-03-01")
    lake.write_partition("bars", bars("2024-03-01", ["SPY"], 99.0), SCHEMA, "2024-03-01")
    frame = lake.read("bars")
    assert frame["symbol"].tolist() == ["SPY"]
    assert frame["close"].tolist() == [99.0]


def test_empty_partition_keeps_the_schema(lake: ParquetLake):
    """A holiday writes zero rows; reading it beside full days still gives one typed table."""
    lake.write_partition("bars", bars("2024-07-03", ["AAPL"]), SCHEMA, "2024-07-03")
    lake.write_partition("bars", bars("2024-07-04", []), SCHEMA, "2024-07-04")
    frame = lake.read("bars")
    assert len(frame) == 1
    assert str(frame["close"].dtype) == "float64"


def test_reading_absent_partitions_is_an_error_unless_allowed(lake: ParquetLake):
    lake.write_partition("bars", bars("2024-03-01", ["AAPL"]), SCHEMA, "2024-03-01")
    with pytest.raises(LakeError, match=r"bars: 1 partition\(s\) not in the lake: 2024-03-04"):
        lake.read("bars", ["2024-03-01", "2024-03-04"])
    assert len(lake.read("bars", ["2024-03-01", "2024-03-04"], missing_ok=True)) == 1
    with pytest.raises(LakeError, match="no partitions"):
        lake.read("nothing_here")


def test_a_frame_that_does_not_fit_the_schema_names_the_partition(lake: ParquetLake):
    wrong = pd.DataFrame({"symbol": ["AAPL"], "date": ["not a date"], "close": [1.0]})
    with pytest.raises(LakeError, match="bars/2024-03-01"):
        lake.write_partition("bars", wrong, SCHEMA, "2024-03-01")
    assert lake.partition_keys("bars") == []


@pytest.mark.parametrize("name", ["", "../escape", ".hidden", "a/b"])
def test_unsafe_names_are_refused(lake: ParquetLake, name: str):
    with pytest.raises(LakeError, match="invalid"):
        lake.partition_path(name)


def test_fsspec_url_root():
    lake = ParquetLake(root="memory://lake-test")
    lake.write_partition("bars", bars("2024-03-01", ["AAPL"]), SCHEMA, "2024-03-01")
    lake.write_partition("bars", bars("2024-03-04", ["AAPL"]), SCHEMA, "2024-03-04")
    assert lake.partition_keys("bars") == ["2024-03-01", "2024-03-04"]
    assert len(lake.read_range("bars", "2024-03-01", "2024-03-04", columns=["close"])) == 2


def _write_and_die_halfway(root: str) -> None:
    """Child process: start replacing the partition, then get SIGKILLed mid-write."""
    import pyarrow.parquet as pq

    def torn_write(table, where, **kwargs):
        where.write(b"PAR1 half a parquet file")
        where.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    pq.write_table = torn_write
    lake = ParquetLake(root=root)
    lake.write_partition("bars", bars("2024-03-01", ["NEW"] * 3, 1.0), SCHEMA, "2024-03-01")


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_the_previous_partition_intact(tmp_path):
    root = str(tmp_path / "lake")
    lake = ParquetLake(root=root)
    lake.write_partition("bars", bars("2024-03-01", ["AAPL", "MSFT"]), SCHEMA, "2024-03-01")

    child = multiprocessing.get_context("spawn").Process(
        target=_write_and_die_halfway, args=(root,)
    )
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL

    # The torn temporary file is invisible to readers; the old content is untouched.
    assert lake.partition_keys("bars") == ["2024-03-01"]
    assert lake.read("bars")["symbol"].tolist() == ["AAPL", "MSFT"]
    leftovers = [p for p in os.listdir(tmp_path / "lake" / "bars") if p.startswith(".")]
    assert len(leftovers) == 1  # the killed writer's temp file, never renamed into place

    # A later writer sweeps it once it is old enough not to belong to a live writer.
    assert lake.sweep_temporary_files("bars", older_than_seconds=3600) == 0
    assert lake.sweep_temporary_files("bars", older_than_seconds=-1) == 1
    assert lake.read("bars")["symbol"].tolist() == ["AAPL", "MSFT"]


def test_an_interrupted_write_cleans_up_and_keeps_the_old_partition(lake: ParquetLake, monkeypatch):
    """Run cancellation raises a BaseException inside the write: no temp file, old data kept."""
    import pyarrow.parquet as pq

    lake.write_partition("bars", bars("2024-03-01", ["AAPL"]), SCHEMA, "2024-03-01")

    class Interrupted(BaseException):
        pass

    def interrupted_write(table, where, **kwargs):
        where.write(b"PAR1")
        raise Interrupted

    monkeypatch.setattr(pq, "write_table", interrupted_write)
    with pytest.raises(Interrupted):
        lake.write_partition("bars", bars("2024-03-01", ["NEW"]), SCHEMA, "2024-03-01")
    monkeypatch.undo()
    assert lake.read("bars")["symbol"].tolist() == ["AAPL"]
    assert os.listdir(lake.dataset_path("bars")) == ["2024-03-01.parquet"]


def _silent_bit_flip(path: Path, closes: list[float]) -> None:
    """Flip one bit of the `close` column's data so that a reader which does not verify page
    checksums still decodes the file, only with a different number (the dangerous case)."""
    import pyarrow.dataset as ds

    original = path.read_bytes()
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(0).column(meta.schema.names.index("close"))
    start = chunk.data_page_offset
    for offset in range(start + chunk.total_compressed_size - 1, start, -1):
        flipped = bytearray(original)
        flipped[offset] ^= 0x01
        path.write_bytes(flipped)
        try:
            unverified = ds.dataset(str(path), format="parquet").to_table().to_pandas()
        except (OSError, pyarrow.ArrowInvalid):
            continue
        decoded = unverified["close"].tolist() if "close" in unverified else None
        if decoded is not None and len(decoded) == len(closes) and decoded != closes:
            return
    raise AssertionError("no silent flip found")


@pytest.mark.slow
def test_a_silently_flipped_bit_is_an_error_naming_the_file(lake: ParquetLake):
    frame = bars("2024-03-01", ["AAPL", "MSFT", "NVDA"] * 50)
    frame["close"] = [100.0 + 0.37 * i for i in range(len(frame))]
    lake.write_partition("bars", frame, SCHEMA, "2024-03-01")
    lake.write_partition("bars", bars("2024-03-04", ["AAPL"]), SCHEMA, "2024-03-04")
    path = Path(lake.partition_path("bars", "2024-03-01").path)
    _silent_bit_flip(path, frame["close"].tolist())
    with pytest.raises(
        CorruptPartition, match=r"bars: 1 corrupt partition\(s\): .*2024-03-01\.parquet"
    ) as info:
        lake.read("bars")
    assert info.value.keys == ["2024-03-01"]
    readable, corrupt = lake.read_checked("bars", ["2024-03-01", "2024-03-04"])
    assert corrupt == ["2024-03-01"] and readable is not None and len(readable) == 1


def test_a_truncated_partition_is_an_error_naming_the_file(lake: ParquetLake):
    lake.write_partition("bars", bars("2024-03-01", ["AAPL"]), SCHEMA, "2024-03-01")
    path = Path(lake.partition_path("bars", "2024-03-01").path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptPartition, match=r"2024-03-01\.parquet"):
        lake.read("bars", ["2024-03-01"])


def test_documents_at_the_root_are_replaced_whole(lake: ParquetLake):
    metadata = {"datasets": {"bars": {"rows": 3}}, "note": "naïve"}
    uri = lake.write_json("metadata.json", metadata)
    assert uri.endswith("lake/metadata.json")
    assert lake.read_json("metadata.json") == metadata
    path = Path(lake.file_path("metadata.json").path)
    assert path.read_text(encoding="utf-8").endswith("\n") and "naïve" in path.read_text("utf-8")
    lake.write_text("README.md", "# Ground truth\n")
    lake.write_json("metadata.json", {"datasets": {}})
    assert lake.read_text("README.md") == "# Ground truth\n"
    assert lake.read_json("metadata.json") == {"datasets": {}}
    assert sorted(os.listdir(path.parent)) == ["README.md", "metadata.json"]  # no temp files
    assert lake.read_json("absent.json", missing_ok=True) is None
    with pytest.raises(LakeError, match=r"absent\.json: not in the lake"):
        lake.read_text("absent.json")
    with pytest.raises(LakeError, match="not JSON"):
        lake.read_json("README.md")
    with pytest.raises(LakeError, match="cannot write as JSON"):
        lake.write_json("metadata.json", {"coverage": float("inf")})
    assert lake.read_json("metadata.json") == {"datasets": {}}


def test_an_interrupted_document_write_keeps_the_old_document(lake: ParquetLake, monkeypatch):
    """Cancelled between writing the temporary file and the rename: the old document stays."""
    lake.write_json("metadata.json", {"version": 1})

    class Interrupted(BaseException):
        pass

    def interrupted_fsync(fd):
        raise Interrupted

    monkeypatch.setattr(os, "fsync", interrupted_fsync)
    with pytest.raises(Interrupted):
        lake.write_json("metadata.json", {"version": 2})
    monkeypatch.undo()
    assert lake.read_json("metadata.json") == {"version": 1}
    assert os.listdir(Path(lake.file_path("metadata.json").path).parent) == ["metadata.json"]
