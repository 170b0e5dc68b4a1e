"""Quality checks as plain functions over frames, each returning a `shared.finding.Finding`,
grouped by what they judge.

- `shared`: the machinery every check uses and nothing it judges: `finding` (Finding, Status,
  combine), `thresholds` (the one source of every band: the check descriptions in the UI and
  the docs' tables are built from its ``bands()``), `wording` (summaries), `frames` (column
  contracts, integer encodings, runs of days), `freshness` (grading a lag), `score`
  (``quality_score`` over the other checks' per-key tables), and the Dagster side: `factory`
  (checks from these functions) and `runner` (``ingest-platform check``).
- `bars`: checks of day-grain series on calendars: daily bars, and the economic indicators
  judged on the same day grid (`coverage`, `expected`, `staleness`, `membership`), the
  cross-source `drift`, and the bar `anomalies` with their detectors (`ticks`, `stuck`,
  `volume`, `integrity`) and support (`bar_series`, `adjustment`, `flags`).
- `stream`: checks of the live Kraken stream at its own grain: minutes of each day
  (`coverage`) and hours since its heartbeat (`staleness`).
- `registry`: the registry's `mappings` (variables no source is mapped to).

The rule the layout encodes (an import-linter contract in pyproject.toml): `bars`, `stream`
and `registry` do not import each other, and `shared` imports none of them, so a helper two
groups need lives in `shared`. Only `shared.factory` and `shared.runner` import Dagster; the
check functions import `ingest_platform.core` (calendars), pandas and numpy, and frames come
in as arguments, never from a domain module.
"""
