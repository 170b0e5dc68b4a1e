"""The lake on S3 (moto on loopback, through s3fs): one whole-object PUT per partition, reads by
key and range, checksums verified, documents at the root, a writer killed mid-upload."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.parquet as pq
import pytest
from pandera.typing import Series

from ingest_platform.core import settings
from ingest_platform.core.dataset import Dataset, DatasetValidationError
from ingest_platform.core.lake import CorruptPartition, LakeError, ParquetLake
from ingest_platform.core.partitioning import PartitionScheme
from ingest_platform.core.schema import DATE, DatasetModel
from ingest_platform_tests.core.s3_server import (
    ACCESS_KEY,
    SECRET_KEY,
    Bucket,
    StallingProxy,
    aws_environment,
)

SCHEMA = pyarrow.schema(
    [
        pyarrow.field("symbol", pyarrow.string(), nullable=False),
        pyarrow.field("date", pyarrow.date32(), nullable=False),
        pyarrow.field("close", pyarrow.float64(), nullable=False),
    ]
)
DAYS = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]


def bars(day: str, symbols: list[str], close: float = 10.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": symbols,
            "date": pd.to_datetime([day] * len(symbols)),
            "close": [close + i for i in range(len(symbols))],
        }
    )


@pytest.fixture
def s3_lake(s3_bucket: Bucket) -> ParquetLake:
    return ParquetLake(root=s3_bucket.url("lake"))


@pytest.mark.slow
def test_a_range_write_is_one_put_per_partition_and_reads_back_by_key_and_range(
    s3_lake: ParquetLake, s3_bucket: Bucket
):
    writes = s3_lake.write_partitions(
        "bars", {d: bars(d, ["AAPL", "MSFT", "SPY"]) for d in DAYS}, SCHEMA
    )

    # Exactly one PUT per partition reached the server, each to its final key, and nothing
    # else is in the bucket: no temporary objects, no multipart upload left open.
    puts = s3_bucket.puts("lake/")
    assert sorted(p.path for p in puts) == [
        f"/{s3_bucket.name}/lake/bars/{d}.parquet" for d in DAYS
    ]
    assert all(p.status == 200 for p in puts)
    assert s3_bucket.keys() == [f"lake/bars/{d}.parquet" for d in DAYS]
    assert s3_bucket.pending_multipart_uploads() == []
    assert [w.uri for w in writes] == [s3_bucket.url("lake", "bars", f"{d}.parquet") for d in DAYS]
    assert [w.size_bytes for w in writes] == [
        s3_bucket.fs.size(f"{s3_bucket.name}/lake/bars/{d}.parquet") for d in DAYS
    ]

    assert s3_lake.partition_keys("bars") == DAYS
    assert s3_lake.has_partition("bars", DAYS[0])
    assert not s3_lake.has_partition("bars", "2024-03-08")

    s3_bucket.log.clear()
    middle = s3_lake.read_range("bars", DAYS[1], DAYS[2], columns=["symbol", "close"])
    assert list(middle.columns) == ["symbol", "close"]
    assert middle["symbol"].tolist() == ["AAPL", "MSFT", "SPY"] * 2
    # Each partition came whole, in one GET (one version of the object), with no HEAD first.
    assert sorted(g.path for g in s3_bucket.gets("lake/bars/")) == [
        f"/{s3_bucket.name}/lake/bars/{d}.parquet" for d in DAYS[1:3]
    ]
    assert s3_bucket.log.of("HEAD") == []

    one = s3_lake.read("bars", [DAYS[3]])
    assert str(one["date"].dtype) == "datetime64[ns]" and len(one) == 3
    with pytest.raises(LakeError, match=r"1 partition\(s\) not in the lake: 2024-03-08"):
        s3_lake.read("bars", [DAYS[0], "2024-03-08"])


def test_a_rewrite_replaces_the_object_and_other_processes_see_it(
    s3_lake: ParquetLake, s3_bucket: Bucket
):
    """fsspec caches listings per process; the lake must not serve a stale one."""
    s3_lake.write_partition("bars", bars(DAYS[0], ["AAPL"]), SCHEMA, DAYS[0])
    assert s3_lake.partition_keys("bars") == [DAYS[0]]
    # Another writer (not through this process's filesystem cache) adds a partition.
    sink = pyarrow.BufferOutputStream()
    pq.write_table(pyarrow.Table.from_pandas(bars(DAYS[1], ["SPY"]), schema=SCHEMA), sink)
    _put_behind_the_lakes_back(s3_bucket, f"lake/bars/{DAYS[1]}.parquet", sink.getvalue())
    assert s3_lake.partition_keys("bars") == DAYS[:2]
    s3_lake.write_partition("bars", bars(DAYS[0], ["NEW"], 99.0), SCHEMA, DAYS[0])
    assert s3_lake.read("bars", [DAYS[0]])["symbol"].tolist() == ["NEW"]


def _put_behind_the_lakes_back(bucket: Bucket, key: str, data: pyarrow.Buffer) -> None:
    """Write an object with a separate client, leaving the lake's listing cache untouched."""
    import boto3

    client = boto3.client("s3", endpoint_url=bucket.endpoint)
    client.put_object(Bucket=bucket.name, Key=key, Body=data.to_pybytes())


class _Close(DatasetModel):
    symbol: Series[str] = pa.Field()
    date: Series[pd.Timestamp] = pa.Field(metadata=DATE)
    close: Series[float] = pa.Field(gt=0)


CLOSES = Dataset(
    name="closes",
    model=_Close,
    description="Closing prices, for the S3 write-path test.",
    group="test",
    key=("symbol", "date"),
    partitioning=PartitionScheme(
        name="test_days",
        column="date",
        column_kind="date",
        grain="day",
        timezone="UTC",
        first_key="2024-03-01",
    ),
)


def test_the_validated_write_path_puts_each_changed_partition_once(
    s3_lake: ParquetLake, s3_bucket: Bucket
):
    frame = pd.concat([bars(d, ["AAPL", "MSFT"]) for d in DAYS[:3]], ignore_index=True)
    written = CLOSES.write(s3_lake, CLOSES.split(frame, DAYS[:3]))
    assert written.rewritten == 3
    assert len(s3_bucket.puts("lake/closes/")) == 3

    # A re-run with the same content changes nothing: no PUT at all.
    s3_bucket.log.clear()
    existing = CLOSES.read_partitions(s3_lake, DAYS[:3])
    again = CLOSES.write(s3_lake, CLOSES.split(frame, DAYS[:3]), existing)
    assert again.rewritten == 0 and s3_bucket.puts() == []

    # One changed partition: one PUT, and the range reads back with it.
    changed = frame.copy()
    changed.loc[changed["date"] == DAYS[1], "close"] = 42.0
    s3_bucket.log.clear()
    CLOSES.write(s3_lake, CLOSES.split(changed, DAYS[:3]), existing)
    assert [p.path for p in s3_bucket.puts()] == [
        f"/{s3_bucket.name}/lake/closes/{DAYS[1]}.parquet"
    ]
    back = CLOSES.read(s3_lake, DAYS[:3], columns=["date", "close"])
    assert back.loc[back["date"] == DAYS[1], "close"].tolist() == [42.0, 42.0]

    # A frame that fails its schema writes nothing.
    bad = frame.assign(close=-1.0)
    s3_bucket.log.clear()
    with pytest.raises(DatasetValidationError):
        CLOSES.write(s3_lake, CLOSES.split(bad, DAYS[:3]), existing)
    assert s3_bucket.puts() == []


def _flip_a_bit_silently(data: bytes, closes: list[float]) -> bytes:
    """A copy of a Parquet file with one bit of the `close` data flipped such that a reader
    that does not verify page checksums still decodes it, to different numbers."""
    meta = pq.ParquetFile(pyarrow.BufferReader(data)).metadata
    chunk = meta.row_group(0).column(meta.schema.names.index("close"))
    start = chunk.data_page_offset
    for offset in range(start + chunk.total_compressed_size - 1, start, -1):
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        try:
            unverified = pq.read_table(pyarrow.BufferReader(bytes(flipped))).to_pandas()
        except (OSError, pyarrow.ArrowInvalid):
            continue
        decoded = unverified["close"].tolist() if "close" in unverified else None
        if decoded is not None and len(decoded) == len(closes) and decoded != closes:
            return bytes(flipped)
    raise AssertionError("no silent flip found")


@pytest.mark.slow
def test_a_flipped_bit_in_an_object_is_a_corrupt_partition_naming_it(
    s3_lake: ParquetLake, s3_bucket: Bucket
):
    frame = bars(DAYS[0], ["AAPL", "MSFT", "NVDA"] * 50)
    frame["close"] = [100.0 + 0.37 * i for i in range(len(frame))]
    s3_lake.write_partition("bars", frame, SCHEMA, DAYS[0])
    s3_lake.write_partition("bars", bars(DAYS[1], ["AAPL"]), SCHEMA, DAYS[1])
    key = f"{s3_bucket.name}/lake/bars/{DAYS[0]}.parquet"
    s3_bucket.fs.pipe_file(
        key, _flip_a_bit_silently(s3_bucket.fs.cat_file(key), frame["close"].tolist())
    )

    with pytest.raises(
        CorruptPartition, match=rf"s3://{s3_bucket.name}/lake/bars/2024-03-04\.parquet"
    ) as info:
        s3_lake.read("bars")
    assert info.value.keys == [DAYS[0]]
    readable, corrupt = s3_lake.read_checked("bars", DAYS[:2])
    assert corrupt == [DAYS[0]] and readable is not None and len(readable) == 1


def test_documents_at_the_root_are_one_put_each_and_read_back(
    s3_lake: ParquetLake, s3_bucket: Bucket
):
    metadata = {"datasets": {"bars": {"rows": 12, "owners": ["team:data-platform"]}}, "π": 3.14}
    uri = s3_lake.write_json("metadata.json", metadata)
    assert uri == s3_bucket.url("lake", "metadata.json")
    assert [p.path for p in s3_bucket.puts()] == [f"/{s3_bucket.name}/lake/metadata.json"]
    assert s3_lake.read_json("metadata.json") == metadata
    raw = s3_bucket.fs.cat_file(f"{s3_bucket.name}/lake/metadata.json").decode()
    assert raw.endswith("\n") and json.loads(raw) == metadata and "π" in raw

    s3_lake.write_text("README.md", "# Ground truth\n\nDaily bars.\n")
    s3_lake.write_json("metadata.json", {"datasets": {}})
    assert s3_lake.read_text("README.md") == "# Ground truth\n\nDaily bars.\n"
    assert s3_lake.read_json("metadata.json") == {"datasets": {}}
    assert len(s3_bucket.puts()) == 3

    assert s3_lake.read_json("absent.json", missing_ok=True) is None
    with pytest.raises(LakeError, match=r"absent\.json: not in the lake"):
        s3_lake.read_json("absent.json")

    s3_bucket.log.clear()
    with pytest.raises(LakeError, match=r"metadata\.json: cannot write as JSON"):
        s3_lake.write_json("metadata.json", {"coverage": float("nan")})
    assert s3_bucket.puts() == []
    assert s3_lake.read_json("metadata.json") == {"datasets": {}}
    with pytest.raises(LakeError, match="invalid file name"):
        s3_lake.write_text("../escape.md", "x")


def test_the_root_and_credentials_come_from_the_standard_environment(
    s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
):
    """$INGEST_PLATFORM_LAKE_ROOT=s3://... plus the AWS variables is all a deployment sets; the
    credentials never reach anything the platform records."""
    monkeypatch.setenv("INGEST_PLATFORM_LAKE_ROOT", s3_bucket.url("lake"))
    lake = ParquetLake(root=settings.lake_root())
    write = lake.write_partition("bars", bars(DAYS[0], ["AAPL"]), SCHEMA, DAYS[0])
    assert lake.read("bars")["symbol"].tolist() == ["AAPL"]
    recorded = " ".join(
        [repr(lake), write.uri, repr(write.metadata()), json.dumps(lake.model_dump())]
    )
    assert SECRET_KEY not in recorded and ACCESS_KEY not in recorded


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    import pandas as pd, pyarrow
    from ingest_platform.core.lake import ParquetLake

    schema = pyarrow.schema(
        [
            pyarrow.field("symbol", pyarrow.string(), nullable=False),
            pyarrow.field("date", pyarrow.date32(), nullable=False),
            pyarrow.field("close", pyarrow.float64(), nullable=False),
        ]
    )
    frame = pd.DataFrame(
        {"symbol": ["NEW"] * 500, "date": pd.to_datetime(["2024-03-04"] * 500), "close": 1.0}
    )
    ParquetLake(root=sys.argv[1]).write_partition("bars", frame, schema, "2024-03-04")
    print("the write returned", flush=True)
    """
)


@pytest.mark.slow
def test_a_writer_killed_mid_upload_leaves_the_previous_object(
    s3_lake: ParquetLake, s3_bucket: Bucket
):
    s3_lake.write_partition("bars", bars(DAYS[0], ["AAPL", "MSFT"]), SCHEMA, DAYS[0])
    before = s3_bucket.fs.cat_file(f"{s3_bucket.name}/lake/bars/{DAYS[0]}.parquet")

    with StallingProxy(s3_bucket.endpoint) as proxy:
        env = {**aws_environment(proxy.endpoint), "HOME": os.environ.get("HOME", "/tmp")}
        writer = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, s3_bucket.url("lake")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            # The PUT's headers and half its body have reached the server: in flight.
            assert proxy.stalled.wait(120), "the writer's PUT never reached the proxy"
            writer.send_signal(signal.SIGKILL)
            out, err = writer.communicate(timeout=60)
        finally:
            if writer.poll() is None:
                writer.kill()
        assert writer.returncode == -signal.SIGKILL, err.decode()[-2000:]
        assert b"returned" not in out
        assert proxy.request_line.startswith(f"PUT /{s3_bucket.name}/lake/bars/{DAYS[0]}.parquet")
        assert 0 < proxy.forwarded_body < proxy.content_length
        assert proxy.finished.wait(60)

    # The server refused the torn upload; the previous object is intact and reads as before.
    assert proxy.final_status == 400
    (torn,) = s3_bucket.puts("lake/bars/")[1:]
    assert torn.status == 400
    assert s3_bucket.fs.cat_file(f"{s3_bucket.name}/lake/bars/{DAYS[0]}.parquet") == before
    assert s3_lake.read("bars")["symbol"].tolist() == ["AAPL", "MSFT"]
    assert s3_bucket.keys() == [f"lake/bars/{DAYS[0]}.parquet"]
    assert s3_bucket.pending_multipart_uploads() == []
