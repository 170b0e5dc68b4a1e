"""Quality checks as plain functions over frames: each returns a `finding.Finding`.

No Dagster here: the asset-check factory and the CI runner wrap these, and tests call them
directly. The package imports only `ingest_platform.core` (calendars), pandas and numpy;
frames come in as arguments, never from a domain module.

Checks (each ``(frames..., thresholds) -> Finding``):

- `coverage`: ``bar_coverage``, ``indicator_coverage``, ``stream_coverage`` (days),
  ``coverage``; `stream_coverage`: ``stream_minute_coverage`` (minutes of each day);
  ``coverage_by_key`` (the per-key table metadata.json reuses);
- `staleness`: ``bar_staleness``, ``indicator_staleness`` (and their ``*_by_*`` tables);
  `stream_staleness`: ``stream_staleness``;
- `drift`: ``cross_source_drift`` (``drift_rows``);
- `anomalies`: ``bar_anomalies`` (``bar_anomaly_rows``), one pass over the detectors in
  `ticks` (``false_ticks``, ``unadjusted_splits``), `stuck` (``stuck_prices``), `volume`
  (``volume_outliers``) and `integrity` (``ohlc_bounds``, ``duplicate_keys``);
- `mappings`: ``unmapped_variables``;
- `score`: ``quality_score`` (``score_by_key``).

Support: `finding` (Finding, Status, combine), `thresholds` (validated defaults), `expected`
(what a dataset should hold), `freshness` (grading a lag), `adjustment` (split-adjusting
as-traded bars), `bar_series` (sorted arrays and aligned corporate actions), `flags` (the
flagged-row shape), `frames` (column contracts, integer encodings), `wording` (summaries).
"""
