"""The code location: each domain's Definitions, merged. Nothing else lives here.

`Definitions.merge` rather than `dagster.components.load_defs`: every domain already builds
its Definitions with plain Python (factories over `Dataset` descriptions), and merge keeps the
assembly explicit and type-checked; components would add YAML scaffolding for no gain here.
"""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.core.definitions import core_definitions
from ingest_platform.economic.definitions import economic_definitions
from ingest_platform.market.definitions import market_definitions
from ingest_platform.operations.definitions import operations_definitions
from ingest_platform.publish.definitions import publish_definitions
from ingest_platform.reference.definitions import reference_definitions
from ingest_platform.registry.definitions import registry_definitions
from ingest_platform.streaming.kraken.definitions import stream_definitions
from ingest_platform.variables.definitions import variables_definitions


def build_definitions() -> Definitions:
    """The whole code location, resolved against the environment at call time.

    Endpoints and data folders come from the environment (see `core.settings`), so the same
    code serves production, the sandbox (``INGEST_PLATFORM_SANDBOX_URL``) and tests.
    """
    domains = Definitions.merge(
        core_definitions(),
        reference_definitions(),
        market_definitions(),
        registry_definitions(),
        economic_definitions(),
        variables_definitions(),
        stream_definitions(),
    )
    # Publishing describes the other domains, their checks included: it is assembled last.
    checks = domains.resolve_asset_graph().asset_check_keys
    return Definitions.merge(domains, publish_definitions(sorted(checks)), operations_definitions())


defs = build_definitions()
