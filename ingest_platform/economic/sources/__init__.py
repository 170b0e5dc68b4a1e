"""Economic source clients, one module per provider (FRED, World Bank). They know HTTP and
payload formats, not Dagster: each returns frames in the canonical schema and raises typed
errors that name the source and the series, with API keys redacted."""
