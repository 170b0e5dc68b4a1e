"""The code location's domains, each built on demand: the whole location, or only the domains
an asset selection reaches.

`definitions.py` builds all of them for Dagster's workspace. A command that touches a few
assets (``ingest-platform check --select group:market``) builds only the domains holding those
groups: importing and building the other seven (yfinance, SQLAlchemy, the economic sources, the
stream, the operations sensors) was a third of a check run's time above Dagster's own floor.
Each domain module is imported inside its builder, so a domain not built is not imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from dagster import Definitions


def _core() -> Definitions:
    from ingest_platform.core.definitions import core_definitions

    return core_definitions()


def _reference() -> Definitions:
    from ingest_platform.reference.definitions import reference_definitions

    return reference_definitions()


def _market() -> Definitions:
    from ingest_platform.market.definitions import market_definitions

    return market_definitions()


def _registry() -> Definitions:
    from ingest_platform.registry.definitions import registry_definitions

    return registry_definitions()


def _economic() -> Definitions:
    from ingest_platform.economic.definitions import economic_definitions

    return economic_definitions()


def _variables() -> Definitions:
    from ingest_platform.variables.definitions import variables_definitions

    return variables_definitions()


def _stream() -> Definitions:
    from ingest_platform.streaming.kraken.definitions import stream_definitions

    return stream_definitions()


@dataclass(frozen=True)
class Domain:
    """A domain's Definitions builder, the asset groups it holds, and the domains whose
    resources its assets need (built with it)."""

    name: str
    build: Callable[[], Definitions]
    groups: tuple[str, ...]
    needs: tuple[str, ...] = ()


# In assembly order. `publish` (which describes every other domain, checks included) and
# `operations` (whose sensors watch the whole location) are built only with everything.
DOMAINS: tuple[Domain, ...] = (
    Domain("core", _core, ()),
    Domain("reference", _reference, ("reference",)),
    Domain("market", _market, ("market",)),
    # The registry maps variables to Kraken pairs and reference files: it reads both resources.
    Domain("registry", _registry, ("registry",), needs=("reference", "stream")),
    Domain("economic", _economic, ("economic",)),
    Domain("variables", _variables, ("registry",)),
    Domain("stream", _stream, ("kraken_stream",)),
)
NAMES = frozenset(d.name for d in DOMAINS)
_GROUPS = re.compile(r"^\s*group:(\w+)(\s+or\s+group:(\w+))*\s*$")


def build_definitions(domains: Collection[str] | None = None) -> Definitions:
    """The code location (all domains), or the named domains plus `core`, resolved against the
    environment at call time.

    Endpoints and data folders come from the environment (see `core.settings`), so the same
    code serves production, the sandbox (``INGEST_PLATFORM_SANDBOX_URL``) and tests.
    """
    if domains is not None:
        unknown = sorted(set(domains) - NAMES)
        if unknown:
            raise ValueError(f"unknown domain(s) {unknown}; known: {sorted(NAMES)}")
        wanted = _with_needs({"core", *domains})
        return Definitions.merge(*(d.build() for d in DOMAINS if d.name in wanted))
    from ingest_platform.operations.definitions import operations_definitions
    from ingest_platform.publish.definitions import publish_definitions

    merged = Definitions.merge(*(d.build() for d in DOMAINS))
    # Publishing describes the other domains, their checks included: it is assembled last.
    checks = merged.resolve_asset_graph().asset_check_keys
    return Definitions.merge(merged, publish_definitions(sorted(checks)), operations_definitions())


def _with_needs(names: set[str]) -> set[str]:
    """`names` and every domain they need, transitively."""
    needs = {d.name: d.needs for d in DOMAINS}
    found, todo = set(names), list(names)
    while todo:
        for need in needs[todo.pop()]:
            if need not in found:
                found.add(need)
                todo.append(need)
    return found


def domains_for(selection: str | None) -> frozenset[str] | None:
    """The domains that hold every asset of `selection` when it names asset groups only
    (``group:market``, ``group:market or group:economic``) and each group is a domain's; None
    (build everything) for any other selection: asset keys and the published groups
    (warehouse, metadata) can reach across the location."""
    if not selection or not _GROUPS.match(selection):
        return None
    groups = set(re.findall(r"group:(\w+)", selection))
    found = {d.name for d in DOMAINS if groups & set(d.groups)}
    covered = {g for d in DOMAINS if d.name in found for g in d.groups}
    return frozenset(found) if groups <= covered else None
