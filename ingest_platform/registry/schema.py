"""Pandera model of the registry's dataset: where each model variable is read from."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from ingest_platform.core.dataset import Dataset
from ingest_platform.core.schema import DatasetModel
from ingest_platform.registry.load import FREQUENCIES, KNOWLEDGE
from ingest_platform.registry.tags import SOURCE_KINDS


class VariableMappings(DatasetModel):
    """One row per registry variable: its source and series, or why it has none."""

    variable: Series[str] = pa.Field(
        unique=True, str_matches=r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$", description="Variable name."
    )
    source: Series[str] = pa.Field(
        nullable=True, isin=list(SOURCE_KINDS), description="fred, worldbank, market or kraken."
    )
    series_id: Series[str] = pa.Field(
        nullable=True,
        description="FRED series, World Bank INDICATOR/COUNTRY, instrument symbol or Kraken pair.",
    )
    rule: Series[str] = pa.Field(
        nullable=True,
        str_matches=r"^(explicit|regex:.+|type:[a-z_]+)$",
        description="What decided: explicit, regex:<pattern> or type:<type>; null if unmapped.",
    )
    frequency: Series[str] = pa.Field(isin=list(FREQUENCIES), description="Native frequency.")
    knowledge_basis: Series[str] = pa.Field(
        isin=list(KNOWLEDGE),
        description="How a value's known-at time is set: vintages (FRED real-time periods), "
        "publication_lag (period end + lag_days) or market_close (the session's close).",
    )
    lag_days: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, ge=0, description="Days from period end to publication (publication_lag)."
    )
    reason: Series[str] = pa.Field(nullable=True, description="Why unmapped; null if mapped.")

    @pa.dataframe_check(description="a mapped row has a series and a rule and no reason")
    def mapped_or_explained(cls, df: pd.DataFrame) -> Series[bool]:
        mapped = df["source"].notna()
        complete = df["series_id"].notna() & df["rule"].notna() & df["reason"].isna()
        explained = df["series_id"].isna() & df["rule"].isna() & df["reason"].notna()
        return (mapped & complete) | (~mapped & explained)

    @pa.dataframe_check(description="lag_days is set exactly for publication_lag")
    def lag_with_publication_lag(cls, df: pd.DataFrame) -> Series[bool]:
        return df["lag_days"].notna() == (df["knowledge_basis"] == "publication_lag")


GROUP = "registry"

VARIABLE_MAPPINGS = Dataset(
    name="variable_mappings",
    model=VariableMappings,
    group=GROUP,
    key=("variable",),
    description="Each model variable of data/reference/variables.yaml mapped to the series it "
    "is read from (FRED, World Bank, a market symbol or a Kraken pair) by an explicit tag, a "
    "regex rule or a type fallback from variable_rules.yaml, with how its values become known; "
    "unmapped variables carry the reason.",
)
