"""Market source clients, one module per provider. They know HTTP and payload formats, not
Dagster: each returns frames in the canonical schema and raises typed errors that name the
source and symbol, with API keys redacted."""
