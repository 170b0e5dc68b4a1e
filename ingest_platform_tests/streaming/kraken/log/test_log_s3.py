"""The stream log on S3 (moto on loopback, through s3fs): segments roll into one whole-object PUT
each, replay and the minute bars read them back, a writer killed mid-upload leaves no segment,
and the heartbeat stays on a local disk."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    SkipReason,
    build_sensor_context,
    materialize,
)

from ingest_platform.core.lake import ParquetLake
from ingest_platform.core.settings import STREAM_ROOT_ENV
from ingest_platform.streaming.kraken.assets import (
    kraken_book_minute_bars,
    kraken_order_book_stream,
)
from ingest_platform.streaming.kraken.heartbeat import write_heartbeat
from ingest_platform.streaming.kraken.job import kraken_stream_job
from ingest_platform.streaming.kraken.log import replay as replay_module
from ingest_platform.streaming.kraken.log.replay import missing_days, replay
from ingest_platform.streaming.kraken.log.segments import list_segments, read_kind, temporary_files
from ingest_platform.streaming.kraken.log.writer import StreamLog
from ingest_platform.streaming.kraken.resources import KrakenStream
from ingest_platform.streaming.kraken.sensor import kraken_stream_sensor
from ingest_platform_tests.core.s3_server import Bucket, StallingProxy, aws_environment
from ingest_platform_tests.streaming.kraken.fanout_off import FANOUT_OFF

MIDNIGHT = int(dt.datetime(2026, 11, 3, tzinfo=dt.UTC).timestamp() * 1_000_000)
SECOND = 1_000_000


def test_segments_roll_into_one_put_each_and_replay_verifies_them(
    s3_bucket: Bucket, market_feed, book_log_writer, tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # anything written locally by mistake would land here
    root = s3_bucket.url("stream", "kraken")
    feed = market_feed("BTC/USD")
    frames = [feed.snapshot()] + [feed.update() for _ in range(44)]
    times = [MIDNIGHT - 20 * SECOND + i * SECOND for i in range(len(frames))]
    # Rolled by rows (10) on the background writer thread, and at midnight.
    assert all(book_log_writer(root, frames, times, max_rows=10, background=True))

    segments = list_segments(root, "book")
    assert [(s.day, s.first_seq) for s in segments] == [
        ("2026-11-02", 0),
        ("2026-11-02", 10),
        ("2026-11-03", 20),
        ("2026-11-03", 30),
        ("2026-11-03", 40),
    ]
    assert all(str(s.path).startswith(f"{root}/book/") for s in segments)
    # One PUT per segment, each to its final key; nothing else in the bucket: no temporary
    # objects, no multipart upload left open, no heartbeat.
    puts = s3_bucket.puts("stream/")
    assert sorted(p.path for p in puts) == sorted(
        f"/{s3_bucket.name}/{str(s.path).removeprefix('s3://' + s3_bucket.name + '/')}"
        for s in segments
    )
    assert all(p.status == 200 for p in puts)
    assert s3_bucket.keys() == sorted(str(s.path).split("/", 3)[3] for s in segments)
    assert s3_bucket.pending_multipart_uploads() == []
    assert temporary_files(root) == []
    assert list(tmp_path.iterdir()) == []

    report = replay(root)
    assert report.ok and report.verified == 45 and report.segments == 5
    assert replay(root, days=["2026-11-02"]).verified == 20
    assert missing_days(root, ["2026-11-02", "2026-11-03", "2026-11-04"]) == ["2026-11-04"]
    seqs = read_kind(root, "book", ["2026-11-03"], columns=["seq"]).column("seq").to_pylist()
    assert seqs == list(range(20, 45))


def test_a_segment_rolls_by_age_on_s3(s3_bucket: Bucket, clock):
    root = s3_bucket.url("stream")
    with StreamLog(root, session="s1", max_seconds=5, clock=clock) as log:
        assert log.swept == 0  # an object store holds no temporary files to sweep
        log.gap(MIDNIGHT, "BTC/USD", "book", "reconnect", MIDNIGHT - SECOND, MIDNIGHT, 1, 2)
        log.tick()
        assert s3_bucket.puts() == []
        clock.advance(6)
        log.tick()
        log.flush(wait=True)
        (segment,) = list_segments(root, "gap")
        assert log.stats.files[-1] == str(segment.path)
    (gap,) = read_kind(root, "gap").to_pylist()
    assert gap["reason"] == "reconnect" and gap["resume_book_seq"] == 2
    assert len(s3_bucket.puts()) == 1


@pytest.mark.slow
def test_minute_bars_read_the_log_from_s3_and_write_the_lake_to_s3(
    s3_bucket: Bucket, market_feed, book_log_writer
):
    """The asset, as Dagster runs it, with the stream log and the lake both in the bucket."""
    log_root, lake = s3_bucket.url("stream"), ParquetLake(root=s3_bucket.url("lake"))
    feed = market_feed("BTC/USD")
    frames = [feed.snapshot()] + [feed.update() for _ in range(30)]
    assert all(book_log_writer(log_root, frames, [MIDNIGHT + i * SECOND for i in range(31)]))
    result = materialize(
        [kraken_order_book_stream, kraken_book_minute_bars],
        selection=[kraken_book_minute_bars],
        partition_key="2026-11-03",
        resources={"lake": lake, "kraken_stream": KrakenStream(log_root=log_root)},
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("kraken_book_minute_bars")
    assert mat.metadata["book_rows_verified"].value == 31
    assert mat.metadata["log_root"].value == log_root
    bars = lake.read("kraken_book_minute_bars", ["2026-11-03"])
    assert bars["book_updates"].sum() == 31
    assert [p.path for p in s3_bucket.puts("lake/")] == [
        f"/{s3_bucket.name}/lake/kraken_book_minute_bars/2026-11-03.parquet"
    ]


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from ingest_platform.streaming.kraken.log.writer import StreamLog

    with StreamLog(sys.argv[1], session="doomed", background=False) as log:
        for i in range(2000):
            log.trade(
                int(sys.argv[2]) + i,
                "update",
                {"symbol": "BTC/USD", "side": "buy", "price": "64123.5", "qty": "0.1",
                 "ord_type": "market", "trade_id": i, "timestamp": "2026-11-03T00:00:00Z"},
            )
    print("the segment was written", flush=True)
    """
)


@pytest.mark.slow
def test_a_writer_killed_mid_upload_leaves_no_segment(s3_bucket: Bucket, tmp_path: Path):
    root = s3_bucket.url("stream")
    with StallingProxy(s3_bucket.endpoint) as proxy:
        env = {**aws_environment(proxy.endpoint), "HOME": os.environ.get("HOME", str(tmp_path))}
        writer = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, root, str(MIDNIGHT)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            while not proxy.stalled.wait(0.2):  # the PUT is half-way to the server
                assert writer.poll() is None, writer.communicate()[1].decode()[-2000:]
            writer.send_signal(signal.SIGKILL)
            out, err = writer.communicate(timeout=60)
        finally:
            if writer.poll() is None:
                writer.kill()
        assert writer.returncode == -signal.SIGKILL, err.decode()[-2000:]
        assert b"written" not in out
        assert proxy.request_line.startswith(f"PUT /{s3_bucket.name}/stream/trade/2026-11-03/")
        assert 0 < proxy.forwarded_body < proxy.content_length
        assert proxy.finished.wait(60)

    assert proxy.final_status == 400  # the server refused the torn upload
    assert list_segments(root, "trade") == [] and s3_bucket.keys() == []
    assert s3_bucket.pending_multipart_uploads() == []
    assert read_kind(root, "trade").num_rows == 0
    assert list(tmp_path.iterdir()) == []


def test_an_s3_log_root_from_the_environment_keeps_the_heartbeat_local(monkeypatch, tmp_path: Path):
    """The sensor reads the heartbeat every 30 s and the stream rewrites it every second: it
    stays on the local disk even when the segments go to a bucket."""
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(STREAM_ROOT_ENV, "s3://bucket/stream/kraken")
    stream = KrakenStream()
    assert stream.log_path() == "s3://bucket/stream/kraken"
    assert stream.heartbeat_path() == tmp_path / "stream" / "kraken"
    assert replay_module.default_log_root() == "s3://bucket/stream/kraken"
    assert KrakenStream(log_root="s3://other/log").log_path() == "s3://other/log"

    # Local roots behave as they always did: a Path, the heartbeat beside the segments.
    local = KrakenStream(log_root=str(tmp_path / "log"))
    assert local.log_path() == local.heartbeat_path() == tmp_path / "log"
    monkeypatch.delenv(STREAM_ROOT_ENV)
    assert KrakenStream().log_path() == tmp_path / "stream" / "kraken"
    assert replay_module.default_log_root() == tmp_path / "stream" / "kraken"
    assert KrakenStream(log_root="file:///srv/log").log_path() == Path("/srv/log")


@pytest.mark.slow
def test_a_stream_run_on_s3_beats_locally_and_the_sensor_keeps_it(
    s3_bucket: Bucket, sandbox, stream_resource, run_config, heartbeat, monkeypatch, tmp_path
):
    """A run that streams to a bucket writes its heartbeat to the local folder the sensor reads:
    otherwise the sensor would see no heartbeat and replace a healthy stream every few minutes."""
    monkeypatch.chdir(tmp_path)  # a heartbeat written under a relative "s3:/..." would land here
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path / "data"))
    server = sandbox()
    stream = stream_resource(server.url, s3_bucket.url("stream", "kraken"))
    with DagsterInstance.ephemeral() as instance:
        result = kraken_stream_job.execute_in_process(
            run_config=run_config(1.5),
            resources={"kraken_stream": stream, **FANOUT_OFF},
            instance=instance,
        )
        assert result.success
        beat = heartbeat(stream.heartbeat_path())
        assert beat is not None and beat["run_id"] == result.run_id
        assert not (tmp_path / "s3:").exists()
        stored = s3_bucket.keys()  # the bucket's object keys (a list, not a mapping)
        assert stored and not [k for k in stored if k.endswith("heartbeat.json")]
        assert replay(stream.log_path()).ok

        # the run still looks alive to the sensor: it is kept, not replaced
        running = instance.create_run_for_job(kraken_stream_job, status=DagsterRunStatus.STARTED)
        write_heartbeat(stream.heartbeat_path(), {**beat, "run_id": running.run_id})
        context = build_sensor_context(instance=instance, resources={"kraken_stream": stream})
        assert isinstance(kraken_stream_sensor(context), SkipReason)
