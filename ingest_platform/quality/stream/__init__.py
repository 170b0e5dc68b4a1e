"""Checks of the live Kraken stream at its own grain: the share of each UTC day's minutes with
a verified minute bar (`coverage`), and hours since the recorder's heartbeat (`staleness`).
Imports only `quality.shared`.
"""
