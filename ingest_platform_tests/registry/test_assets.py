"""`variable_mappings` through Dagster: the shipped registry maps, a broken one fails the asset
naming the entry and the file, and the code location still loads."""

from __future__ import annotations

import shutil

import pytest
from dagster import materialize

from ingest_platform.core import settings
from ingest_platform.definitions import build_definitions
from ingest_platform.reference.assets import instruments
from ingest_platform.registry.assets import variable_mappings
from ingest_platform.registry.checks import registry_checks

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture
def reference(tmp_path, monkeypatch):
    folder = tmp_path / "reference"
    shutil.copytree(settings.reference_dir(), folder)
    monkeypatch.setenv("INGEST_PLATFORM_REFERENCE_DIR", str(folder))
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("INGEST_PLATFORM_LAKE_ROOT", raising=False)
    return folder


def resources():
    defs = build_definitions()
    return {k: v for k, v in (defs.resources or {}).items()
            if k in ("lake", "reference_files", "kraken_stream")}  # fmt: skip


def failure_text(result) -> str:
    parts = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                parts.append(error.message)
                error = error.cause
    return "\n".join(parts)


@pytest.mark.slow
def test_the_shipped_registry_maps_and_reports_the_unmapped(reference):
    res = resources()
    result = materialize([instruments, variable_mappings, registry_checks], resources=res,
                         run_config=QUIET)  # fmt: skip
    assert result.success
    mappings = res["lake"].read("variable_mappings")
    assert len(mappings) >= 60 and mappings["source"].notna().sum() >= 55
    meta = result.asset_materializations_for_node("variable_mappings")[0].metadata
    assert "msci_world_index" in meta["unmapped_variables"].value
    (check,) = [
        e.event_specific_data for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]  # fmt: skip
    assert not check.passed and check.severity.value == "WARN"
    unmapped = int(mappings["source"].isna().sum())
    assert f"{unmapped} of {len(mappings)} variables unmapped" in check.description


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (("source: market:^GSPC", "source: market:^NOPE"), "sp500_index"),
        (("- name: nasdaq100_index", "- name: sp500_index"), "sp500_index"),
        (("source: market:^GSPC", "source: bloomberg:SPX"), "bloomberg"),
    ],
    ids=["unknown symbol", "duplicate name", "unknown source"],
)
@pytest.mark.slow
def test_a_broken_registry_fails_naming_the_entry_and_the_file(reference, edit, fragment):
    path = reference / "variables.yaml"
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    defs = build_definitions()  # the code location still loads
    assert defs.resolve_asset_graph().has(variable_mappings.key)
    res = resources()
    assert materialize([instruments], resources=res, run_config=QUIET).success
    result = materialize([variable_mappings], resources=res, run_config=QUIET,
                         raise_on_error=False)  # fmt: skip
    assert not result.success
    text = failure_text(result)
    assert "variables.yaml" in text and fragment in text, text
    assert res["lake"].partition_keys("variable_mappings") == []


def test_an_invalid_regex_rule_names_the_rules_file(reference):
    path = reference / "variable_rules.yaml"
    path.write_text(path.read_text().replace("'breakeven'", "'breakeven('", 1))
    res = resources()
    assert materialize([instruments], resources=res, run_config=QUIET).success
    result = materialize([variable_mappings], resources=res, run_config=QUIET,
                         raise_on_error=False)  # fmt: skip
    assert not result.success
    assert "variable_rules.yaml" in failure_text(result)
