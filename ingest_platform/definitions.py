"""The code location: each domain's Definitions, merged. Nothing else lives here.

`Definitions.merge` rather than `dagster.components.load_defs`: every domain already builds
its Definitions with plain Python (factories over `Dataset` descriptions), and merge keeps the
assembly explicit and type-checked; components would add YAML scaffolding for no gain here.
The domains and their assembly order are in `domains.py`, which commands that need only some
of them use without building this module's `defs`.
"""

from __future__ import annotations

from ingest_platform.domains import build_definitions

__all__ = ["build_definitions", "defs"]

defs = build_definitions()
