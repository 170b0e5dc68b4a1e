"""Checks of day-grain series: daily bars against their calendars' sessions, and the economic
indicators, which the same day-grid coverage and staleness code judges (``indicator_*``
beside ``bar_*``, one grid and one calendar logic rather than two copies).

Coverage (`coverage`, `expected`, `membership`), staleness (`staleness`), cross-source
`drift` (with `adjustment`), and the anomaly pass (`anomalies`) over its detectors (`ticks`,
`stuck`, `volume`, `integrity`) with their support (`bar_series`, `flags`). Imports only
`quality.shared` and `ingest_platform.core`.
"""
