"""deploy/prometheus and deploy/grafana: valid for the tools that read them, and about metrics
that exist.

`promtool` (Debian's prometheus package, installed by the README's test command and .ci/run)
checks the rules' syntax, runs their unit tests (deploy/prometheus/alerts_test.yml: each alert
fires on its synthetic series and stays quiet otherwise), and checks every dashboard query's
PromQL (each written into a recording rule for `promtool check rules`). Every `ingest_platform_*`
name in a query must be one the platform exports (`operations.metrics`, `status_metrics`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ingest_platform.core.metrics import BUS_METRICS, STREAM_METRICS, known_metric_names
from ingest_platform.operations.status_metrics import STATUS_METRICS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "ingest_platform.json"
KNOWN = known_metric_names((*STATUS_METRICS, *STREAM_METRICS, *BUS_METRICS))
NAME = re.compile(r"\bingest_platform_[a-z0-9_]+")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: apt-get install prometheus (the README's test command does)"
    return path


def _promtool(promtool: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def test_the_alert_rules_pass_promtool_and_their_unit_tests(promtool):
    checked = _promtool(promtool, "check", "rules", RULES.name, cwd=RULES.parent)
    assert "SUCCESS: 4 rules found" in checked
    tested = _promtool(promtool, "test", "rules", "alerts_test.yml", cwd=RULES.parent)
    assert "SUCCESS" in tested


def test_the_rule_unit_tests_fail_when_a_rule_is_wrong(promtool, tmp_path):
    """The unit tests can fail: with the heartbeat threshold raised they do."""
    broken = RULES.read_text().replace("> 120", "> 1200")
    assert broken != RULES.read_text()
    (tmp_path / "alerts.yml").write_text(broken)
    shutil.copy(RULES.parent / "alerts_test.yml", tmp_path / "alerts_test.yml")
    done = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path, capture_output=True
    )
    assert (
        done.returncode != 0 and b"IngestPlatformStreamHeartbeatStale" in done.stdout + done.stderr
    )


def test_the_rules_name_only_exported_metrics_and_cover_the_three_stream_alerts():
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert {
        "IngestPlatformStreamDown",
        "IngestPlatformStreamChecksumFailures",
        "IngestPlatformStreamHeartbeatStale",
    } <= names
    for rule in rules:
        assert set(NAME.findall(rule["expr"])) <= KNOWN, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning")


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    queries = _dashboard_queries()
    assert len(queries) >= 20
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)
                ],
            }
        ]
    }
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump(rules))
    checked = _promtool(promtool, "check", "rules", "dashboard_rules.yml", cwd=tmp_path)
    assert f"SUCCESS: {len(queries)} rules found" in checked


def test_the_dashboard_shows_every_exported_metric_and_no_other():
    used = {name for q in _dashboard_queries() for name in NAME.findall(q)}
    assert used <= KNOWN, used - KNOWN
    for spec in (*STATUS_METRICS, *STREAM_METRICS, *BUS_METRICS):
        assert any(name in used for name in spec.series_names()), spec.name
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["__inputs"][0]["pluginId"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
