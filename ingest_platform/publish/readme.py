"""The lake's README.md: `metadata.json` rendered for people (also shown in the Dagster UI)."""

from __future__ import annotations

from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def render(metadata: dict[str, Any]) -> str:
    """Markdown: a table of datasets, then each dataset's gaps, coverage and checks."""
    lines = [
        "# The ingest_platform lake",
        "",
        f"Generated {metadata['generated_at']} from `{metadata['lake_root']}`; the same figures "
        "are in `metadata.json` (schema version "
        f"{metadata['schema_version']}).",
        "",
        "## Datasets",
        "",
    ]
    rows = []
    for name, d in metadata["datasets"].items():
        parts = d["partitions"]
        span = d["date_range"]
        failing = [c["check"] for c in d["checks"] if c["passed"] is False]
        rows.append(
            [
                f"`{name}`",
                f"{d['rows']:,}",
                f"{span['min']} .. {span['max']}" if span else None,
                f"{parts['present']:,} (missing {parts['missing_count']:,})" if parts else "single",
                ", ".join(f"{k} {v:,}" for k, v in (d["source_mix"] or {}).items()) or None,
                (d["last_materialization"] or {}).get("at"),
                ", ".join(failing) or "all pass" if d["checks"] else "not run",
            ]
        )
    lines += _table(
        ["dataset", "rows", "dates", "partitions", "sources", "last materialized", "checks"],
        rows,
    )
    for name, d in metadata["datasets"].items():
        details: list[str] = []
        parts = d["partitions"]
        if parts and parts["missing_count"]:
            shown = ", ".join(parts["missing"][:20])
            more = parts["missing_count"] - min(20, len(parts["missing"]))
            details.append(f"Missing partitions ({parts['missing_count']}): {shown}"
                           + (f" and {more} more" if more > 0 else ""))  # fmt: skip
        coverage = d["coverage"]
        if coverage:
            details.append(
                f"Coverage by {coverage['key']}: min {coverage['min']}, median "
                f"{coverage['median']}, {coverage['below_0_9']} of {coverage['keys']} below 0.9"
                + (
                    f"; {coverage['absent']} expected {coverage['key']}s have no row at all"
                    if coverage["absent"]
                    else ""
                )
                + "."
            )
            low = [c for c in coverage["lowest"] if c["ratio"] is not None and c["ratio"] < 1][:10]
            if low:
                details += _table(
                    [coverage["key"], "coverage", "present", "expected"],
                    [[c[coverage["key"]], c["ratio"], c["present"], c["expected"]] for c in low],
                )
        if d["checks"]:
            details += _table(
                ["check", "result", "severity", "description"],
                [
                    [c["check"], "pass" if c["passed"] else "FAIL", c["severity"],
                     c["description"][:160]]
                    for c in d["checks"]
                ],
            )  # fmt: skip
        if details:
            lines += ["", f"### `{name}`", "", d["description"], "", *details]
    if metadata["sources"]:
        lines += ["", "## Sources: call budgets today", ""]
        lines += _table(
            ["source", "calls", "limit", "remaining", "cost"],
            [[k, v["calls"], v["limit"], v["remaining"], v["cost"]]
             for k, v in metadata["sources"].items()],
        )  # fmt: skip
    registry = metadata["registry"]
    if registry:
        lines += [
            "",
            "## Variable registry",
            "",
            f"{registry['mapped']} of {registry['variables']} variables mapped ("
            + ", ".join(f"{k} {v}" for k, v in registry["by_source"].items())
            + ").",
        ]
        if registry["unmapped"]:
            unmapped = [[u["variable"], u["reason"]] for u in registry["unmapped"]]
            lines += ["", *_table(["unmapped variable", "why"], unmapped)]
    return "\n".join(lines) + "\n"
