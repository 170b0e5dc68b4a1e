"""Building only the domains a selection reaches gives the same checks as the whole location."""

from __future__ import annotations

import pytest
from dagster import AssetSelection

from ingest_platform.domains import DOMAINS, build_definitions, domains_for

GROUP_SELECTIONS = [
    "group:market",
    "group:economic",
    "group:reference",
    "group:registry",
    "group:kraken_stream",
    "group:market or group:economic",
]


@pytest.fixture(scope="module")
def whole(tmp_path_factory, monkeypatch_module):
    return build_definitions()


@pytest.fixture(scope="module")
def monkeypatch_module(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        yield mp


def _checks(defs, selection):
    graph = defs.resolve_asset_graph()
    assets = AssetSelection.from_string(selection).resolve(graph)
    return sorted(
        str(key)
        for checks_def in defs.asset_checks or []
        for key in checks_def.check_keys
        if key.asset_key in assets
    )


@pytest.mark.parametrize("selection", GROUP_SELECTIONS)
def test_a_group_selection_builds_its_domains_and_finds_the_same_checks(whole, selection):
    domains = domains_for(selection)
    assert domains is not None and "publish" not in domains
    part = build_definitions(domains)
    assert _checks(part, selection) == _checks(whole, selection)
    assert _checks(part, selection), f"{selection} selects no checks"
    # Fewer assets than the whole location: the point of building a part.
    assert len(part.resolve_asset_graph().get_all_asset_keys()) < len(
        whole.resolve_asset_graph().get_all_asset_keys()
    )


def test_every_group_of_the_location_is_either_a_domains_or_built_whole(whole):
    graph = whole.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    held = {group for domain in DOMAINS for group in domain.groups}
    # warehouse and metadata describe every domain: only the whole location holds them.
    assert groups - held == {"warehouse", "metadata"}
    for group in groups - held:
        assert domains_for(f"group:{group}") is None


@pytest.mark.parametrize(
    "selection",
    [None, "", "market_bars", "group:market or market_bars", "group:warehouse", "tag:x=y"],
)
def test_other_selections_build_the_whole_location(selection):
    assert domains_for(selection) is None


def test_an_unknown_domain_is_named():
    with pytest.raises(ValueError, match=r"unknown domain.*'marketz'"):
        build_definitions({"marketz"})
