"""Reference sources (no Dagster): Wikipedia's S&P 500 constituents table."""
