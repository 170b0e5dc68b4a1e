"""The deployment files say what the platform needs, and the tools that read them accept them.

- deploy/helm/values.yaml: the structure the Dagster chart reads (user deployment, K8sRunLauncher,
  external PostgreSQL, secrets as env vars, object storage, event batching, the stream pinned),
  and the instance config the chart renders from it validates against dagster-k8s's
  K8sRunLauncher and dagster-postgres (the class is loaded from the values' launcher config).
- deploy/dagster-postgres.yaml: parses, and its limits name the tags the stream job carries.
- deploy/Dockerfile: its build and install RUN lines, executed in a fresh venv (offline), give an
  environment where the code location imports from the wheel, not from the checkout.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import class_from_code_pointer

from ingest_platform.operations.resources import ALERT_SECRET_ENV_VARS
from ingest_platform.streaming.kraken.job import RUN_TAGS, kraken_stream_job

CHECKOUT = Path(__file__).resolve().parents[2]
DEPLOY = CHECKOUT / "deploy"
API_KEY_ENV_VARS = {"ALPHA_VANTAGE_API_KEY", "POLYGON_API_KEY", "FRED_API_KEY"}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def _env_names(entries: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in entries}


def _env_var_names_read_by_the_package() -> set[str]:
    """Every ``EnvVar("NAME")`` in the package: the secrets its resources read at run time."""
    names: set[str] = set()
    for path in (CHECKOUT / "ingest_platform").rglob("*.py"):
        names |= set(re.findall(r'EnvVar\("([A-Z0-9_]+)"\)', path.read_text()))
    return names


def test_the_api_keys_the_values_document_are_the_ones_the_resources_read():
    assert _env_var_names_read_by_the_package() == API_KEY_ENV_VARS


def test_helm_values_have_the_structure_the_chart_reads(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert values["dagster-user-deployments"]["enabled"] is True
    assert deployment["port"] == 4000
    assert deployment["replicaCount"] == 1  # one code server: one stream sensor deciding
    assert "ingest_platform.definitions" in deployment["codeServerArgs"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    assert {s["name"] for s in deployment["envSecrets"]} >= {"ingest-platform-api-keys"}
    env = _env_names(deployment["env"])
    assert env["DAGSTER_EVENT_BATCH_SIZE"] == "500"
    assert env["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] == "true"
    assert env["INGEST_PLATFORM_LAKE_ROOT"].startswith("s3://")
    assert env["INGEST_PLATFORM_STREAM_ROOT"].startswith("s3://")

    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert {s["name"] for s in launcher["envSecrets"]} >= {"ingest-platform-api-keys"}
    assert "DAGSTER_EVENT_BATCH_SIZE=500" in launcher["envVars"]
    assert "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true" in launcher["envVars"]
    # The heartbeat volume is mounted where the code server (sensor) and run pods both look.
    mounts = {m["name"]: m["mountPath"] for m in launcher["volumeMounts"]}
    assert mounts == {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]}
    assert mounts["ingest-platform-state"] == env["INGEST_PLATFORM_DATA_DIR"]

    postgres = values["postgresql"]
    assert postgres["enabled"] is False and postgres["postgresqlHost"]
    assert "postgresqlPassword" not in postgres  # the password lives in a secret
    assert values["global"]["postgresqlSecretName"]
    assert values["generatePostgresqlPasswordSecret"] is False

    daemon = values["dagsterDaemon"]
    assert _env_names(daemon["env"])["DAGSTER_EVENT_BATCH_SIZE"] == "500"
    # runs are created by the webserver (Materialize) and the daemon (schedules, backfills)
    subset_events = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
    for creator in (daemon, values["dagsterWebserver"]):
        assert _env_names(creator["env"])[subset_events] == "true"
    assert daemon["runMonitoring"]["enabled"] and daemon["runRetries"]["enabled"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    limits = values["concurrency"]["runs"]["tagConcurrencyLimits"]
    assert {"key": "dagster/backfill", "limit": 2} in limits
    assert {"key": "ingest_platform/stream", "value": "kraken", "limit": 1} in limits


def _walk(node: Any):
    """Every mapping and string in a parsed YAML document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, str):
        yield node


def test_helm_values_hold_no_secret_values(values):
    secrets = (
        API_KEY_ENV_VARS
        | set(ALERT_SECRET_ENV_VARS)
        | {
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "DAGSTER_PG_PASSWORD",
        }
    )
    for node in _walk(values):
        if isinstance(node, str):
            assert node.split("=", 1)[0] not in secrets, node  # envVars "NAME=value"
        else:
            assert not (node.get("name") in secrets and "value" in node), node
            # A password key may only name a secret, never hold one (postgresqlPassword etc.).
            assert not any(
                "password" in str(key).lower() and isinstance(value, str)
                for key, value in node.items()
                if key != "generatePostgresqlPasswordSecret"
            ), node


def _instance_config_from_values(values: dict[str, Any]) -> dict[str, Any]:
    """The dagster.yaml the chart renders from these values (its instance ConfigMap template),
    with the fields the chart fills in itself given plausible values."""
    pg = values["postgresql"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    runs = values["concurrency"]["runs"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    retries = values["dagsterDaemon"]["runRetries"]
    return {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": pg["postgresqlHost"],
                    "port": pg["service"]["port"],
                    "db_name": pg["postgresqlDatabase"],
                    "username": pg["postgresqlUsername"],
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "params": pg["postgresqlParams"],
                }
            }
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": {
                "dagster_home": "/opt/dagster/dagster_home",
                "instance_config_map": "dagster-instance",
                "postgres_password_secret": values["global"]["postgresqlSecretName"],
                "service_account_name": values["global"]["serviceAccountName"],
                "load_incluster_config": True,
                "image_pull_policy": launcher["imagePullPolicy"],
                "env_secrets": [s["name"] for s in launcher["envSecrets"]],
                "env_vars": launcher["envVars"],
                "volumes": launcher["volumes"],
                "volume_mounts": [
                    {"name": m["name"], "mount_path": m["mountPath"]}
                    for m in launcher["volumeMounts"]
                ],
                "fail_pod_on_run_failure": launcher["failPodOnRunFailure"],
                "labels": launcher["labels"],
                "run_k8s_config": {
                    "pod_spec_config": {
                        "security_context": launcher["runK8sConfig"]["podSpecConfig"][
                            "securityContext"
                        ]
                    },
                    "container_config": launcher["runK8sConfig"]["containerConfig"],
                },
            },
        },
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": values["dagsterDaemon"]["runCoordinator"]["type"],
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "cancel_timeout_seconds": monitoring["cancelTimeoutSeconds"],
            "max_runtime_seconds": monitoring["maxRuntimeSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
        },
        "run_retries": {
            "enabled": retries["enabled"],
            "max_retries": retries["maxRetries"],
            "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"],
        },
        "concurrency": {
            "runs": {
                "max_concurrent_runs": runs["maxConcurrentRuns"],
                "tag_concurrency_limits": runs["tagConcurrencyLimits"],
            },
            "pools": {"default_limit": values["concurrency"]["pools"]["defaultLimit"]},
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }


@pytest.mark.slow
def test_the_instance_config_rendered_from_the_values_validates(values, tmp_path, monkeypatch):
    # The chart sets DAGSTER_PG_PASSWORD from the secret; config processing requires it set.
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "placeholder")
    config = _instance_config_from_values(values)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    parsed, _ = dagster_instance_config(str(tmp_path))  # raises on an invalid instance config
    assert parsed["run_launcher"]["class"] == "K8sRunLauncher"

    launcher_class = class_from_code_pointer(
        parsed["run_launcher"]["module"], parsed["run_launcher"]["class"]
    )
    assert launcher_class.__name__ == "K8sRunLauncher"
    result = process_config(launcher_class.config_type(), parsed["run_launcher"]["config"])
    assert result.success, result.errors
    storage_class = class_from_code_pointer("dagster_postgres", "PostgresRunStorage")
    storage = process_config(storage_class.config_type(), parsed["storage"]["postgres"])
    assert storage.success, storage.errors


def test_the_postgres_instance_config_parses_and_pins_the_stream(tmp_path):
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster-postgres.yaml").read_text())
    parsed, _ = dagster_instance_config(str(tmp_path))
    assert parsed["storage"]["postgres"]["postgres_db"]["password"] == {
        "env": "DAGSTER_PG_PASSWORD"
    }
    limits = parsed["concurrency"]["runs"]["tag_concurrency_limits"]
    stream_key, stream_value = "ingest_platform/stream", RUN_TAGS["ingest_platform/stream"]
    assert {"key": stream_key, "value": stream_value, "limit": 1} in limits
    assert {"key": "dagster/backfill", "limit": 2} in limits
    assert parsed["run_monitoring"]["enabled"] and parsed["run_retries"]["enabled"]
    # The exemptions the instance relies on travel with the job itself, not with one launcher.
    assert kraken_stream_job.tags["dagster/max_retries"] == "0"
    assert kraken_stream_job.tags["dagster/max_runtime"] == "0"
    assert kraken_stream_job.tags[stream_key] == stream_value
    # A killed run worker must take the stream with it (no orphaned step process streaming on).
    assert kraken_stream_job.executor_def.name == "in_process"


def _run_steps(dockerfile: Path) -> list[str]:
    """The Dockerfile's RUN commands in order, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    return [line.strip()[4:].strip() for line in text.splitlines() if line.startswith("RUN ")]


def test_the_dockerfile_is_slim_non_root_and_serves_port_4000():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0"))
    assert "EXPOSE 4000" in text and '"code-server", "start"' in text
    assert "DAGSTER_EVENT_BATCH_SIZE=500" in text
    assert "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true" in text
    for secret in [*API_KEY_ENV_VARS, "AWS_SECRET_ACCESS_KEY", "DAGSTER_PG_PASSWORD"]:
        assert secret not in text


@pytest.mark.slow
def test_the_dockerfile_install_steps_give_an_importable_code_location(tmp_path):
    """Run the Dockerfile's pip and venv RUN lines with its paths mapped into tmp_path.

    Offline: the builder's ``python`` is this interpreter (hatchling already installed, so
    installing it again is a no-op), and the fresh venv borrows this environment's packages
    through a ``.pth`` line, so ``pip install wheel[s3,k8s]`` finds every requirement satisfied
    and installs only the wheel. The probe must import the package from that venv.
    """
    paths = {
        "/src": str(CHECKOUT),
        "/dist": str(tmp_path / "dist"),
        "/opt/venv": str(tmp_path / "venv"),
    }
    steps = [s for s in _run_steps(DEPLOY / "Dockerfile") if "pip" in s or "venv" in s]
    assert len(steps) == 4, steps  # hatchling, wheel, venv, install
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_PLATFORM_", "DAGSTER"))}
    env["PIP_NO_INPUT"] = "1"
    for step in steps:
        command = step
        for container, local in paths.items():
            command = command.replace(container, local)
        if command.startswith("python -m venv "):
            # Create it as the Dockerfile does, then lend it this environment's packages.
            (target,) = shlex.split(command)[3:]
            venv.EnvBuilder(with_pip=True).create(target)
            site = Path(sysconfig.get_path("purelib", vars={"base": target}))
            (site / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
            continue
        command = re.sub(r"^python ", f"{shlex.quote(sys.executable)} ", command)
        subprocess.run(["bash", "-c", command], check=True, env=env, timeout=300, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("ingest_platform-*.whl")
    assert wheel.stat().st_size > 0

    probe = subprocess.run(
        [
            str(tmp_path / "venv" / "bin" / "python"),
            "-c",
            "import ingest_platform, ingest_platform.definitions as d, dagster_k8s, s3fs; "
            "print(ingest_platform.__file__); print(len(list(d.defs.resolve_all_job_defs())))",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    module_file, jobs = probe.stdout.split()[-2:]
    assert module_file.startswith(str(tmp_path / "venv")), module_file  # the wheel's copy
    assert int(jobs) > 0
