"""Unmapped registry variables, named with the reason no source maps them."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest_platform.quality.registry.mappings import unmapped_variables
from ingest_platform.quality.shared.finding import Status
from ingest_platform.quality.shared.thresholds import MappingThresholds


def _mappings(*rows):
    return pd.DataFrame(rows, columns=["variable", "source", "series_id", "rule", "reason"])


MAPPED = [
    ("cpi_us", "fred", "CPIAUCSL", "exact", None),
    ("gdp_de", "worldbank", "NY.GDP.MKTP.CD", "country", None),
]


def test_every_variable_mapped_passes():
    found = unmapped_variables(_mappings(*MAPPED))  # exactly at the limit: 0 unmapped
    assert found.passed and found.offending.empty
    assert found.figures == {"variables": 2, "mapped": 2, "unmapped": 0, "unmapped_ratio": 0.0}
    assert found.summary == "all 2 variables mapped to a source"


@pytest.mark.parametrize("status", [Status.WARN, Status.ERROR])
def test_one_unmapped_variable_is_named_with_its_reason(status):
    mappings = _mappings(*MAPPED, ("vix_close", None, None, None, "no FRED or World Bank series"))
    found = unmapped_variables(mappings, thresholds=MappingThresholds(unmapped=status))
    assert found.status is status
    assert found.figures["unmapped"] == 1 and found.figures["unmapped_ratio"] == pytest.approx(
        1 / 3
    )
    assert found.offending[["variable", "reason", "status"]].values.tolist() == [
        ["vix_close", "no FRED or World Bank series", status.value]
    ]
    assert found.summary == "1 of 3 variables unmapped: vix_close (no FRED or World Bank series)"


def test_a_variable_is_mapped_when_any_of_its_rows_has_a_source():
    mappings = _mappings(
        *MAPPED,
        ("ppi_us", None, None, None, "superseded"),
        ("ppi_us", "fred", "PPIACO", "fallback", None),
        ("oil_brent", " ", None, None, None),  # blank is no source
    )
    found = unmapped_variables(mappings)
    assert found.offending["variable"].tolist() == ["oil_brent"]
    assert "oil_brent (no reason given)" in found.summary


def test_the_frame_needs_variable_and_source():
    with pytest.raises(ValueError, match=r"variable_mappings frame lacks column\(s\) \['source'\]"):
        unmapped_variables(pd.DataFrame({"variable": ["x"]}))
