"""Registry mappings: variables of the registry that no source is mapped to.

The registry lists every variable the dataset promises; the mapping rules pair each with a
source series or record why they could not (``reason``). An unmapped variable is data the
dataset says it has and never will, so it is reported by name with its reason: a WARN by
default, an ERROR where a deployment promises complete mappings.
"""

from __future__ import annotations

import pandas as pd

from ingest_platform.quality.shared import wording
from ingest_platform.quality.shared.finding import MAX_OFFENDING_ROWS, Finding, Status
from ingest_platform.quality.shared.frames import require_columns
from ingest_platform.quality.shared.thresholds import MappingThresholds

#: Columns shown beside an unmapped variable when the mappings frame has them.
CONTEXT_COLUMNS = ("series_id", "rule", "reason")


def unmapped_variables(
    mappings: pd.DataFrame,
    *,
    thresholds: MappingThresholds = MappingThresholds(),  # noqa: B008 - frozen, immutable
) -> Finding:
    """``thresholds.unmapped`` (WARN) when any variable has no row with a source.

    Args:
        mappings: the ``variable_mappings`` frame: ``variable``, ``source`` (null or blank =
            unmapped), and optionally ``series_id``, ``rule``, ``reason``. A variable with
            several rows is mapped when any of them has a source.
    """
    require_columns(mappings, ["variable", "source"], "variable_mappings")
    source = mappings["source"]
    has_source = source.notna().to_numpy() & (source.astype(str).str.strip() != "").to_numpy()
    mapped = pd.Series(has_source).groupby(mappings["variable"].to_numpy()).any()
    unmapped_names = mapped.index[~mapped.to_numpy()]
    rows = mappings[mappings["variable"].isin(unmapped_names)]
    rows = rows.drop_duplicates("variable", keep="first").sort_values("variable", kind="stable")
    context = [c for c in CONTEXT_COLUMNS if c in rows.columns]
    offending = rows[["variable", *context]].reset_index(drop=True)
    if "reason" not in offending:
        offending["reason"] = None
    offending = offending.assign(status=thresholds.unmapped.value).head(MAX_OFFENDING_ROWS)

    total, missing = len(mapped), len(unmapped_names)
    figures: dict[str, float | int] = {
        "variables": total,
        "mapped": total - missing,
        "unmapped": missing,
    }
    if total:
        figures["unmapped_ratio"] = missing / total
    if not missing:
        summary = f"all {wording.plural(total, 'variable')} mapped to a source"
        return Finding("unmapped_variables", Status.PASS, figures, offending, summary)
    named = [
        f"{v} ({r})" if isinstance(r, str) and r.strip() else f"{v} (no reason given)"
        for v, r in zip(offending["variable"], offending["reason"], strict=True)
    ]
    summary = (
        f"{missing} of {wording.plural(total, 'variable')} unmapped: "
        f"{wording.listing(named, missing)}"
    )
    return Finding("unmapped_variables", thresholds.unmapped, figures, offending, summary)
