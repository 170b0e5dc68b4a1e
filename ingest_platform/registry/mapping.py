"""Map each registry variable to the series it is read from, and say which rule decided.

Order, first match wins:
1. the variable's own decision: an explicit ``source`` tag, or a declared ``unmapped`` reason
   (a proprietary series no ingested source carries);
2. the regex rules, in file order, on the name and/or description;
3. the fallback for the variable's type (e.g. ``sector_etf`` -> ``market:{symbol}``), filled
   with the variable's ``symbol`` hint.
A fallback that names nothing the platform ingests (a Kraken pair that is not streamed) leaves
the variable unmapped with that reason: the fallback is a best effort, whereas an explicit tag
or a regex target naming nothing is a broken registry (refused when loading). A mapped source
that cannot give the variable's declared knowledge basis is a broken registry too.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ingest_platform.registry.load import Rules, Variable, check_knowledge
from ingest_platform.registry.tags import KnownSources, SourceTag

COLUMNS = [
    "variable",
    "source",
    "series_id",
    "rule",
    "frequency",
    "knowledge_basis",
    "lag_days",
    "reason",
]


def resolve(
    variable: Variable, rules: Rules, known: KnownSources
) -> tuple[SourceTag | None, str | None, str | None]:
    """(tag, rule, reason): the tag and the rule that chose it, or None, None and why not."""
    if variable.unmapped is not None:
        return None, None, variable.unmapped
    if variable.source is not None:
        return variable.source, "explicit", None
    for rule in rules.rules:
        if rule.matches(variable):
            return rule.target, f"regex:{rule.pattern.pattern}", None
    fallback = rules.fallbacks.get(variable.type)
    if fallback is None:
        return (
            None,
            None,
            (f"no rule matched its name or description, and type {variable.type} has no fallback"),
        )
    rendered = fallback.render(variable.symbol)
    if rendered is None:
        return (
            None,
            None,
            (
                f"type {variable.type} maps through the symbol hint ({fallback.template}), "
                "and the variable has none"
            ),
        )
    tag = SourceTag.parse(rendered, fallback.origin)
    if not known.has(tag):
        return None, None, f"type fallback {fallback.template}: {known.missing(tag)}"
    return tag, f"type:{variable.type}", None


def map_variables(variables: Sequence[Variable], rules: Rules, known: KnownSources) -> pd.DataFrame:
    """One row per variable (in registry order), in the `VariableMappings` shape."""
    rows = []
    for variable in variables:
        tag, rule, reason = resolve(variable, rules, known)
        if tag is not None:
            check_knowledge(variable, tag, known, rule or "")
        rows.append(
            {
                "variable": variable.name,
                "source": tag.kind if tag else None,
                "series_id": tag.series_id if tag else None,
                "rule": rule,
                "frequency": variable.frequency,
                "knowledge_basis": variable.knowledge,
                "lag_days": variable.lag_days,
                "reason": reason,
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["lag_days"] = frame["lag_days"].astype("Int64")
    for column in ("source", "series_id", "rule", "reason"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame
