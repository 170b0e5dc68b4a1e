"""The shipped registry: it loads, maps every variable it can, fits its schema, and every series
it maps exists in the platform's tables and in the sandbox."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest_platform.core import settings
from ingest_platform.reference.universe import load_instruments
from ingest_platform.registry.catalogue import load_series_catalogue
from ingest_platform.registry.load import TYPES, load_registry
from ingest_platform.registry.mapping import map_variables
from ingest_platform.registry.schema import VARIABLE_MAPPINGS
from ingest_platform.registry.tags import KnownSources
from ingest_platform.sandbox.data import FRED_SERIES, WORLDBANK_INDICATORS, MarketSimulator
from ingest_platform.sandbox.kraken_market import PAIRS_BY_SYMBOL

REFERENCE = settings.reference_dir()
STREAMED = ("BTC/USD", "ETH/USD")


@pytest.fixture(scope="module")
def known() -> KnownSources:
    return KnownSources.from_tables(
        load_instruments(REFERENCE), load_series_catalogue(REFERENCE), STREAMED
    )


@pytest.fixture(scope="module")
def mappings(known) -> pd.DataFrame:
    registry = load_registry(REFERENCE, known)
    return map_variables(registry.variables, registry.rules, known)


def test_the_registry_covers_every_type_with_about_sixty_variables(known):
    registry = load_registry(REFERENCE, known)
    assert 55 <= len(registry.variables) <= 70
    assert {v.type for v in registry.variables} == set(TYPES)


def test_every_rule_kind_maps_and_the_unmapped_say_why(mappings):
    kinds = mappings["rule"].str.split(":").str[0].value_counts(dropna=False).to_dict()
    assert kinds["explicit"] >= 5 and kinds["regex"] >= 25 and kinds["type"] >= 20
    unmapped = mappings[mappings["source"].isna()].set_index("variable")["reason"]
    assert set(unmapped.index) == {
        "msci_world_index",
        "ism_manufacturing_pmi",
        "existing_home_sales",
        "move_index",
    }
    assert unmapped.str.contains("licens|proprietary").all()
    row = mappings.set_index("variable")
    assert row.loc["cpi_core", "series_id"] == "CPILFESL"  # not the headline rule after it
    assert row.loc["cpi_headline", "series_id"] == "CPIAUCSL"
    assert row.loc["curve_10y2y", "series_id"] == "T10Y2Y"  # not a yield rule
    assert row.loc["fed_funds_monthly", "series_id"] == "FEDFUNDS"
    assert row.loc["fed_funds_rate", "series_id"] == "DFF"
    assert row.loc["sp500_index", "rule"] == "explicit"
    assert tuple(row.loc["sector_energy", ["source", "series_id"]]) == ("market", "XLE")
    assert tuple(row.loc["bitcoin_usd", ["source", "series_id"]]) == ("kraken", "BTC/USD")


def test_a_pair_that_is_not_streamed_leaves_its_variable_unmapped():
    only_btc = KnownSources.from_tables(
        load_instruments(REFERENCE), load_series_catalogue(REFERENCE), ("BTC/USD",)
    )
    registry = load_registry(REFERENCE, only_btc)
    frame = map_variables(registry.variables, registry.rules, only_btc).set_index("variable")
    assert frame.loc["ether_usd", "reason"] == (
        "type fallback kraken:{symbol}: kraken:ETH/USD is not a streamed Kraken pair"
    )


def test_the_mapping_fits_its_schema_and_round_trips_through_the_lake(mappings, lake):
    validated = VARIABLE_MAPPINGS.validate(mappings)
    VARIABLE_MAPPINGS.write_all(lake, validated)
    back = lake.read("variable_mappings")  # stored in natural-key order
    pd.testing.assert_frame_equal(back, validated.sort_values("variable", ignore_index=True))
    assert str(back["lag_days"].dtype) == "Int64"  # nullable integers survive Parquet
    assert VARIABLE_MAPPINGS.partitioned is False and VARIABLE_MAPPINGS.group == "registry"


@pytest.mark.parametrize(
    ("change", "failure"),
    [
        ({"reason": "but why"}, "mapped_or_explained"),
        ({"lag_days": 3}, "lag_with_publication_lag"),
        ({"source": "bloomberg"}, "isin"),
        ({"rule": "guess"}, "str_matches"),
    ],
)
def test_the_schema_refuses_inconsistent_rows(mappings, change, failure):
    broken = mappings.copy()
    row = broken.index[broken["variable"] == "cpi_headline"][0]
    for column, value in change.items():
        broken.loc[row, column] = value
    with pytest.raises(ValueError, match=failure):
        VARIABLE_MAPPINGS.validate(broken)


def test_every_mapped_series_exists_in_the_sandbox(mappings):
    market = MarketSimulator(seed=7, as_of="2026-11-20")
    mapped = mappings.dropna(subset=["source"])
    for source, series_id in mapped[["source", "series_id"]].itertuples(index=False):
        if source == "fred":
            assert series_id in FRED_SERIES, series_id
            assert market.fred_frame(series_id)["value"].notna().any(), series_id
        elif source == "worldbank":
            indicator, country = series_id.split("/")
            assert indicator in WORLDBANK_INDICATORS
            assert any(v is not None for _, v in market.worldbank_series(indicator, country))
        elif source == "market":
            instrument = market.instrument(series_id)
            assert market.resolve("yahoo", instrument.yahoo_symbol) == instrument
        else:
            assert series_id in PAIRS_BY_SYMBOL, series_id


def test_the_catalogue_and_the_sandbox_agree_on_vintages():
    catalogue = load_series_catalogue(REFERENCE)
    fred = catalogue[catalogue["source"] == "fred"]
    assert set(fred["series_id"]) == set(FRED_SERIES)
    for series_id, vintages in fred[["series_id", "vintages"]].itertuples(index=False):
        assert FRED_SERIES[series_id].alfred is vintages, series_id
