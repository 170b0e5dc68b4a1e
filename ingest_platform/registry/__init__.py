"""The variable registry: model variables (data/reference/variables.yaml), the rules that map
them to ingested series (data/reference/variable_rules.yaml), loading, validation and mapping.
Plain Python; the Dagster assets live beside it."""
