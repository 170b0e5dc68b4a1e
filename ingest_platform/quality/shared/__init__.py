"""What every quality check uses and no check judges: findings, thresholds, wording, frame
helpers, the freshness grade and the score over other checks' tables, the asset-check
factory and the CI runner.

A subpackage rather than the top level of `quality`, so that the rule "shared machinery
imports no check group" is a contract on one package name (pyproject.toml) that a new module
here falls under without anyone listing it.
"""
