"""The heartbeat file: replaced atomically, and read defensively by the sensor."""

from __future__ import annotations

import pytest

from ingest_platform.streaming.kraken.heartbeat import (
    HeartbeatUnreadable,
    load_heartbeat,
    parse_heartbeat,
    write_heartbeat,
)
from ingest_platform.streaming.kraken.log.segments import temporary_files


def test_the_heartbeat_file_is_replaced_atomically(tmp_path):
    assert load_heartbeat(tmp_path) is None
    write_heartbeat(tmp_path, {"state": "streaming", "updated_at": 1.5, "run_id": "a"})
    write_heartbeat(tmp_path, {"state": "stopped", "updated_at": 2.5, "run_id": "a"})
    beat = load_heartbeat(tmp_path)
    assert (beat.state, beat.updated_at, beat.run_id) == ("stopped", 2.5, "a")
    assert temporary_files(tmp_path) == []


def test_a_halt_time_defaults_to_the_last_update():
    halted = {"state": "halted", "updated_at": 9.0, "halt": {"reason": "unknown_pairs"}}
    assert parse_heartbeat(halted).halted_at == 9.0
    assert parse_heartbeat({**halted, "halt": {"reason": "x", "at": 7}}).halted_at == 7.0
    assert parse_heartbeat({**halted, "state": "stopped"}).halted_at is None


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"state": "streaming"}', "updated_at: Field required"),
        ('{"updated_at": "soon"}', "updated_at: Input should be a valid number"),
        ('{"updated_at": true}', "updated_at: Input should be a valid number"),
        ('{"updated_at": 1, "halt": "boom"}', "halt: Input should be a valid dictionary"),
        ('{"updated_at": 1, "halt": {"at": "yesterday"}}', "halt.at: Input should be a valid"),
        ('{"updated_at": 1, "run_id": 42}', "run_id: Input should be a valid string"),
    ],
)
def test_an_unreadable_file_says_which_field_and_why(tmp_path, content, why):
    (tmp_path / "heartbeat.json").write_text(content)
    with pytest.raises(HeartbeatUnreadable) as excinfo:
        load_heartbeat(tmp_path)
    assert why in str(excinfo.value) and "heartbeat.json" in str(excinfo.value)
