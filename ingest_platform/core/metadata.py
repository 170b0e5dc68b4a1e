"""Metadata values people read in the Dagster UI: tables of offending rows, not truncated JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from dagster import MetadataValue


def _cell(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, float):
        return f"{value:.6g}"
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    limit: int = 50,
    empty: str = "_none_",
) -> MetadataValue:
    """Rows as a Markdown table (the first `limit`, then a line saying how many were left out)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        return MetadataValue.md(empty)
    shown = frame.head(limit)
    header = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "---|" * len(shown.columns)
    body = [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in shown.itertuples(index=False)
    ]
    more = [f"\n_{len(frame) - limit} more not shown_"] if len(frame) > limit else []
    return MetadataValue.md("\n".join([header, rule, *body, *more]))


def mapping_table(
    values: Mapping[str, Any], key: str, value: str, limit: int = 50
) -> MetadataValue:
    """A two-column Markdown table from a mapping (symbol -> reason, say), sorted by key."""
    return markdown_table([{key: k, value: v} for k, v in sorted(values.items())], limit)


def shortlist(items: Sequence[object], shown: int = 5) -> str:
    """The first few items and how many more: an error line stays one line for 10,000 items."""
    head = ", ".join(str(item) for item in items[:shown])
    return head + (
        f" (+{len(items) - shown} more, {len(items)} in all)" if len(items) > shown else ""
    )
