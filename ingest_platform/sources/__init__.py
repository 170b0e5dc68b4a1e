"""Source clients: one module per provider. They know HTTP and payload formats, not Dagster.

Each returns frames in the canonical schema of its dataset and raises typed errors that name
the source and symbol, with API keys redacted.
"""
