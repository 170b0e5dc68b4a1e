"""`ingest-platform` commands refuse bad input with one clear line and exit code 2."""

from __future__ import annotations

import socket

import pytest

from ingest_platform.cli import main


def test_sandbox_with_a_port_in_use_says_so(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["sandbox", "--http-port", str(port), "--kraken-port", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"HTTP port {port}" in err[0] and "Address already in use" in err[0]


def test_sandbox_with_a_bad_faults_file_names_the_file_and_the_field(tmp_path, capsys):
    plan = tmp_path / "faults.json"
    plan.write_text('{"faults": [{"kind": "meteor_strike", "endpoint": "yahoo.chart"}]}')
    assert main(["sandbox", "--faults", str(plan), "--http-port", "0", "--kraken-port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "meteor_strike" in err[0]
    missing = tmp_path / "nope.json"
    assert main(["sandbox", "--faults", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_sandbox_with_a_bad_as_of_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sandbox", "--as-of", "2026-13-01"])
    assert exit_.value.code == 2
    assert "'2026-13-01' is not a YYYY-MM-DD date" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ('{"faults": [1]}', "fault rule 1: a fault rule must be an object, got 1"),
        (
            '{"faults": [{"kind": "slow"}, {"kind": "slow", "times": "x"}]}',
            "fault rule 2: fault 'slow': times must be an integer >= 1 or null, got 'x'",
        ),
        ('{"faults": [{"kind": ["slow"]}]}', "fault kind must be a string"),
        (b"\xff\xfe{}", "cannot read fault plan"),
    ],
)
def test_sandbox_with_a_malformed_fault_rule_is_one_line_naming_the_file(
    tmp_path, capsys, body, said
):
    plan = tmp_path / "faults.json"
    plan.write_bytes(body if isinstance(body, bytes) else body.encode())
    assert main(["sandbox", "--faults", str(plan), "--http-port", "0", "--kraken-port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(plan) in err[0] and said in err[0], err
