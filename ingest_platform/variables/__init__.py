"""`variable_series`: every mapped registry variable as one long, point-in-time table, economic
and market alike. What a model trains on (read it with `ingest_platform.asof`)."""
