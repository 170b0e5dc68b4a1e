"""Dagster assets, one module per domain. Thin: business rules live in plain functions."""
