"""Mapping variables to series: explicit tag, then regex rules in order, then type fallbacks."""

from __future__ import annotations

import re

import pytest

from ingest_platform.registry.load import Fallback, RegistryError, Rule, Rules, Variable
from ingest_platform.registry.mapping import COLUMNS, map_variables, resolve
from ingest_platform.registry.tags import KnownSources, SourceTag

KNOWN = KnownSources(
    fred={"CPIAUCSL": True, "CPILFESL": True, "BAMLH0A0HYM2": False, "DGS10": True},
    worldbank=frozenset({"FP.CPI.TOTL.ZG/JPN"}),
    market=frozenset({"XLK", "^GSPC", "EURUSD"}),
    kraken=frozenset({"BTC/USD"}),
)


def variable(name, description="", type="inflation", knowledge="vintages", **extra) -> Variable:
    fields = {
        "frequency": "monthly",
        "lag_days": None,
        "source": None,
        "symbol": None,
        "unmapped": None,
        "origin": f"variables.yaml:{len(name)}",
        **extra,
    }
    return Variable(name, description or name, type, knowledge=knowledge, **fields)


def rule(pattern: str, target: str, field: str = "both") -> Rule:
    return Rule(re.compile(pattern, re.IGNORECASE), field, SourceTag.parse(target, "t"), "rules")


RULES = Rules(
    rules=(
        rule("^cpi_core|core consumer price", "fred:CPILFESL"),
        rule("^cpi_|consumer price", "fred:CPIAUCSL"),
        rule("^ust_10y_", "fred:DGS10", field="name"),
        rule("high[- ]yield", "fred:BAMLH0A0HYM2"),
    ),
    fallbacks={
        "sector_etf": Fallback("sector_etf", "market:{symbol}", "rules:40"),
        "fx": Fallback("fx", "market:{symbol}", "rules:41"),
        "crypto": Fallback("crypto", "kraken:{symbol}", "rules:42"),
    },
)


def test_an_explicit_tag_wins_over_a_matching_rule():
    cpi = variable(
        "cpi_japan",
        "Japan consumer price inflation",
        knowledge="publication_lag",
        lag_days=180,
        source=SourceTag("worldbank", "FP.CPI.TOTL.ZG/JPN"),
    )
    assert resolve(cpi, RULES, KNOWN) == (
        SourceTag("worldbank", "FP.CPI.TOTL.ZG/JPN"),
        "explicit",
        None,
    )


def test_regex_rules_apply_in_file_order_on_name_or_description():
    by_name = variable("cpi_core")
    by_description = variable("prices_ex_food", "Core consumer price index")
    headline = variable("cpi_headline")
    assert resolve(by_name, RULES, KNOWN)[:2] == (
        SourceTag("fred", "CPILFESL"),
        "regex:^cpi_core|core consumer price",
    )
    assert resolve(by_description, RULES, KNOWN)[0] == SourceTag("fred", "CPILFESL")
    assert resolve(headline, RULES, KNOWN)[:2] == (
        SourceTag("fred", "CPIAUCSL"),
        "regex:^cpi_|consumer price",
    )


def test_a_name_only_rule_ignores_the_description():
    assert resolve(variable("ust_10y_yield", type="rate"), RULES, KNOWN)[0] == SourceTag(
        "fred", "DGS10"
    )
    described = variable("long_bond", "ust_10y_ yield, spelled in the description", type="rate")
    assert resolve(described, RULES, KNOWN) == (
        None,
        None,
        "no rule matched its name or description, and type rate has no fallback",
    )


def test_type_fallbacks_fill_in_the_symbol_hint():
    tech = variable("sector_technology", type="sector_etf", knowledge="market_close", symbol="XLK")
    assert resolve(tech, RULES, KNOWN) == (SourceTag("market", "XLK"), "type:sector_etf", None)
    btc = variable("bitcoin", type="crypto", knowledge="market_close", symbol="BTC/USD")
    assert resolve(btc, RULES, KNOWN)[:2] == (SourceTag("kraken", "BTC/USD"), "type:crypto")


def test_fallbacks_that_cannot_map_leave_a_reason():
    no_hint = variable("sector_mystery", type="sector_etf", knowledge="market_close")
    assert resolve(no_hint, RULES, KNOWN)[2] == (
        "type sector_etf maps through the symbol hint (market:{symbol}), and the variable has none"
    )
    not_streamed = variable("ether", type="crypto", knowledge="market_close", symbol="ETH/USD")
    assert resolve(not_streamed, RULES, KNOWN)[2] == (
        "type fallback kraken:{symbol}: kraken:ETH/USD is not a streamed Kraken pair"
    )
    not_listed = variable("yen", type="fx", knowledge="market_close", symbol="USDJPY")
    assert (
        "market:USDJPY is not in the instruments universe" in resolve(not_listed, RULES, KNOWN)[2]
    )


def test_a_declared_reason_wins_even_when_a_rule_would_match():
    pmi = variable("cpi_proprietary", unmapped="licensed data")
    assert resolve(pmi, RULES, KNOWN) == (None, None, "licensed data")


def test_the_frame_has_one_row_per_variable_in_registry_order():
    variables = [
        variable("cpi_headline"),
        variable("high_yield_oas", "US high-yield OAS", "spread", "publication_lag", lag_days=1),
        variable("sector_mystery", type="sector_etf", knowledge="market_close"),
    ]
    frame = map_variables(variables, RULES, KNOWN)
    assert frame.columns.tolist() == COLUMNS and str(frame["lag_days"].dtype) == "Int64"
    lag_days = frame["lag_days"].astype(object)
    frame["lag_days"] = lag_days.where(lag_days.notna(), None)
    assert frame.to_dict("records") == [
        {
            "variable": "cpi_headline",
            "source": "fred",
            "series_id": "CPIAUCSL",
            "rule": "regex:^cpi_|consumer price",
            "frequency": "monthly",
            "knowledge_basis": "vintages",
            "lag_days": None,
            "reason": None,
        },
        {
            "variable": "high_yield_oas",
            "source": "fred",
            "series_id": "BAMLH0A0HYM2",
            "rule": "regex:high[- ]yield",
            "frequency": "monthly",
            "knowledge_basis": "publication_lag",
            "lag_days": 1,
            "reason": None,
        },
        {
            "variable": "sector_mystery",
            "source": None,
            "series_id": None,
            "rule": None,
            "frequency": "monthly",
            "knowledge_basis": "market_close",
            "lag_days": None,
            "reason": "type sector_etf maps through the symbol hint (market:{symbol}), and the "
            "variable has none",
        },
    ]


def test_a_rule_that_maps_to_a_source_unfit_for_the_knowledge_basis_is_refused():
    wrong = variable("high_yield_spread", "High-yield spread", type="spread")  # says vintages
    with pytest.raises(RegistryError) as raised:
        map_variables([wrong], RULES, KNOWN)
    message = str(raised.value)
    assert message.startswith("variables.yaml:17 (variable high_yield_spread)")
    assert "knowledge vintages does not fit fred:BAMLH0A0HYM2, mapped by regex:high[- ]yield" in (
        message
    )
