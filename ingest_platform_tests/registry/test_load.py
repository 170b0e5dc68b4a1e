"""Loading the registry: every broken file is one RegistryError naming entry, file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ingest_platform.registry.load import (
    RULES_FILE,
    VARIABLES_FILE,
    RegistryError,
    load_registry,
    load_rules,
    load_variables,
)
from ingest_platform.registry.tags import KnownSources, SourceTag

KNOWN = KnownSources(
    fred={"CPIAUCSL": True, "UNRATE": True, "BAMLH0A0HYM2": False},
    worldbank=frozenset({"NY.GDP.MKTP.KD.ZG/USA"}),
    market=frozenset({"^GSPC", "XLK"}),
    kraken=frozenset({"BTC/USD"}),
)

GOOD_VARIABLE = """\
  - name: cpi_headline
    description: Consumer price index, all items.
    type: inflation
    frequency: monthly
    knowledge: vintages
"""


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def variables_file(tmp_path: Path, *entries: str) -> Path:
    return write(tmp_path, VARIABLES_FILE, "version: 1\nvariables:\n" + "".join(entries))


def rules_file(tmp_path: Path, rules: str = "", fallbacks: str = "  sector_etf: market:{symbol}\n"):
    body = "version: 1\nrules:\n" + (rules or "  []\n") + "fallbacks:\n" + fallbacks
    if not rules:
        body = body.replace("rules:\n  []\n", "rules: []\n")
    return write(tmp_path, RULES_FILE, body)


def test_a_good_registry_loads_with_origins(tmp_path):
    variables_file(
        tmp_path,
        GOOD_VARIABLE,
        """\
  - name: gdp_growth_usa
    description: US real GDP growth.
    type: growth
    frequency: annual
    knowledge: publication_lag
    lag_days: 180
    source: worldbank:NY.GDP.MKTP.KD.ZG/USA
""",
    )
    rules_file(tmp_path, "  - pattern: 'consumer price'\n    source: fred:CPIAUCSL\n")
    registry = load_registry(tmp_path, KNOWN)
    cpi, growth = registry.variables
    assert cpi.origin == f"{tmp_path / VARIABLES_FILE}:3" and cpi.source is None
    assert growth.source == SourceTag("worldbank", "NY.GDP.MKTP.KD.ZG/USA")
    assert growth.lag_days == 180 and growth.origin.endswith(":8")
    (rule,) = registry.rules.rules
    assert rule.target == SourceTag("fred", "CPIAUCSL") and rule.field == "both"
    assert registry.rules.fallbacks["sector_etf"].render("XLK") == "market:XLK"


def broken(tmp_path: Path, entry: str) -> str:
    path = variables_file(tmp_path, GOOD_VARIABLE, entry)
    with pytest.raises(RegistryError) as raised:
        load_variables(path, KNOWN)
    return str(raised.value)


def test_a_duplicate_name_names_both_places(tmp_path):
    message = broken(tmp_path, GOOD_VARIABLE)
    path = tmp_path / VARIABLES_FILE
    assert f"{path}:8: variable 'cpi_headline' is defined twice (first at {path}:3)" in message


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("    source: bloomberg:SPX Index\n", "unknown source 'bloomberg' in 'bloomberg:SPX"),
        ("    source: fred:NOPE\n", "explicit source fred:NOPE is not in the economic series"),
        ("    source: market:^FTSE\n", "market:^FTSE is not in the instruments universe"),
        ("    source: worldbank:NY.GDP.MKTP.KD.ZG\n", "must be 'worldbank:INDICATOR/COUNTRY'"),
        ("    source: CPIAUCSL\n", "source 'CPIAUCSL' is not '<kind>:<series>'"),
        ("    frequncy: monthly\n", "unknown field(s) ['frequncy']"),
        ("    lag_days: 30\n", "lag_days only goes with knowledge publication_lag"),
        ("    source: worldbank:NY.GDP.MKTP.KD.ZG/USA\n",
         "knowledge vintages does not fit worldbank:NY.GDP.MKTP.KD.ZG/USA"),
        ("    source: fred:BAMLH0A0HYM2\n", "knowledge vintages does not fit fred:BAMLH0A0HYM2"),
        ("    source: fred:UNRATE\n    unmapped: proprietary\n", "not both"),
    ],
)  # fmt: skip
def test_a_broken_entry_names_itself_the_file_and_the_line(tmp_path, extra, fragment):
    entry = GOOD_VARIABLE.replace("cpi_headline", "broken_one") + extra
    message = broken(tmp_path, entry)
    assert f"{tmp_path / VARIABLES_FILE}:8 (variable broken_one)" in message
    assert fragment in message


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("type", "equity", "type 'equity' is not one of"),
        ("frequency", "hourly", "frequency 'hourly' is not one of"),
        ("knowledge", "guess", "knowledge 'guess' is not one of"),
        ("name", "CPI-Headline", "name must be snake_case"),
        ("description", "''", "description is empty"),
    ],
)
def test_bad_values_are_refused(tmp_path, field, value, fragment):
    lines = [
        f"    {field}: {value}" if line.strip().startswith(f"{field}:") else line
        for line in GOOD_VARIABLE.replace("cpi_headline", "other_one").splitlines()
    ]
    if field == "name":
        lines[0] = f"  - name: {value}"
    message = broken(tmp_path, "\n".join(lines) + "\n")
    assert ":8 (variable" in message and fragment in message


def test_publication_lag_needs_whole_lag_days(tmp_path):
    entry = GOOD_VARIABLE.replace("cpi_headline", "lagged").replace("vintages", "publication_lag")
    assert "publication_lag needs lag_days" in broken(tmp_path, entry)
    assert "publication_lag needs lag_days" in broken(tmp_path, entry + "    lag_days: -3\n")


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    path = variables_file(
        tmp_path,
        GOOD_VARIABLE.replace("monthly", "hourly"),
        GOOD_VARIABLE.replace("cpi_headline", "second") + "    source: fred:NOPE\n",
    )
    with pytest.raises(RegistryError) as raised:
        load_variables(path, KNOWN)
    lines = str(raised.value).splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{path}:3") and lines[1].startswith(f"{path}:8")


def test_yaml_errors_and_repeated_keys_name_the_line(tmp_path):
    path = variables_file(tmp_path, GOOD_VARIABLE, "  - name: [unclosed\n")
    with pytest.raises(RegistryError, match=rf"{path}:\d+: not valid YAML"):
        load_variables(path, KNOWN)
    path = variables_file(tmp_path, GOOD_VARIABLE + "    type: growth\n")
    with pytest.raises(RegistryError, match=rf"{path}:8: key 'type' repeated \(first on line 5\)"):
        load_variables(path, KNOWN)
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(RegistryError, match="registry file does not exist"):
        load_variables(missing, KNOWN)
    path = write(tmp_path, VARIABLES_FILE, "version: 1\nvariable:\n  - name: x\n")
    with pytest.raises(RegistryError, match="expected a mapping with a 'variables' section"):
        load_variables(path, KNOWN)


# ---- rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("  - pattern: 'consumer (price'\n    source: fred:CPIAUCSL\n",
         "(rule 1: 'consumer (price'): invalid regex (missing ), unterminated subpattern"),
        ("  - pattern: 'jobs'\n    source: fred:PAYEMS\n",
         "(rule 1: 'jobs'): fred:PAYEMS is not in the economic series catalogue"),
        ("  - pattern: 'jobs'\n    source: quandl:JOBS\n", "unknown source 'quandl'"),
        ("  - pattern: 'jobs'\n    field: title\n    source: fred:UNRATE\n",
         "field 'title' is not one of"),
        ("  - pattern: 'jobs'\n", "a rule needs a source"),
        ("  - pattern: 'jobs'\n    source: fred:UNRATE\n    sourse: fred:UNRATE\n",
         "unknown field(s) ['sourse']"),
    ],
)  # fmt: skip
def test_a_broken_rule_names_itself_the_file_and_the_line(tmp_path, rule, fragment):
    path = rules_file(tmp_path, rule)
    with pytest.raises(RegistryError) as raised:
        load_rules(path, KNOWN)
    assert str(raised.value).startswith(f"{path}:3 (rule 1")
    assert fragment in str(raised.value)


def test_a_broken_fallback_names_its_type_and_line(tmp_path):
    path = rules_file(
        tmp_path, fallbacks="  sector_etf: market:{symbol}\n  stocks: market:{symbol}\n"
    )
    with pytest.raises(
        RegistryError, match=rf"{path}:5 \(fallback for type stocks\): unknown type"
    ):
        load_rules(path, KNOWN)
    path = rules_file(tmp_path, fallbacks="  crypto: coinbase:{symbol}\n")
    with pytest.raises(
        RegistryError, match=r"fallback for type crypto\): unknown source 'coinbase'"
    ):
        load_rules(path, KNOWN)
