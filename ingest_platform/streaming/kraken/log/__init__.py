"""The stream's replayable log: its Parquet segments (`segments`), their writer (`writer`),
the replay that re-verifies every checksum (`replay`) and the minute bars built from a
replayed day (`minute_bars`)."""
