"""Checks of the variable registry: variables no source series is mapped to (`mappings`).
Imports only `quality.shared`.
"""
