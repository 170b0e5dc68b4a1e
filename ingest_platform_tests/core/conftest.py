"""Core fixtures: a local S3 server (moto on loopback) and a bucket per test (`s3_server`)."""

from ingest_platform_tests.core.s3_server import s3_bucket, s3_server

__all__ = ["s3_bucket", "s3_server"]
