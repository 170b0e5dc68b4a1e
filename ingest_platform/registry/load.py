"""Load and validate the variable registry (``variables.yaml``) and its mapping rules
(``variable_rules.yaml``).

Every problem is a `RegistryError` whose message names the entry, the file and the line, so a
broken registry fails the run with something a person can fix: duplicate names, unknown fields,
types or frequencies, an unparseable tag, a tag naming a series the platform does not ingest
(checked against the `KnownSources` the caller passes), a knowledge basis the source cannot give,
an invalid regex, YAML that does not parse or repeats a key. All problems of a file are reported
together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ingest_platform.registry.tags import KnownSources, RegistryError, SourceTag

VARIABLES_FILE = "variables.yaml"
RULES_FILE = "variable_rules.yaml"
TYPES = (
    "equity_index", "sector_etf", "rate", "spread", "inflation", "employment", "growth",
    "housing", "fx", "commodity", "volatility", "crypto",
)  # fmt: skip
FREQUENCIES = ("daily", "weekly", "monthly", "quarterly", "annual")
KNOWLEDGE = ("vintages", "publication_lag", "market_close")
RULE_FIELDS = ("name", "description", "both")
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_VARIABLE_KEYS = {
    "name", "description", "type", "frequency", "knowledge", "lag_days", "source", "symbol",
    "unmapped",
}  # fmt: skip
_RULE_KEYS = {"pattern", "field", "source"}

__all__ = ["Registry", "RegistryError", "Rule", "Rules", "Variable", "load_registry"]


@dataclass(frozen=True)
class Variable:
    """One model variable. `origin` is ``file:line`` for messages."""

    name: str
    description: str
    type: str
    frequency: str
    knowledge: str
    lag_days: int | None
    source: SourceTag | None  # an explicit tag: wins over every rule
    symbol: str | None  # a hint the type fallbacks fill their template with
    unmapped: str | None  # a declared reason to map nothing (a proprietary series)
    origin: str


@dataclass(frozen=True)
class Rule:
    """A regex on a variable's name and/or description that maps it to `target`."""

    pattern: re.Pattern[str]
    field: str
    target: SourceTag
    origin: str

    def matches(self, variable: Variable) -> bool:
        texts = {"name": [variable.name], "description": [variable.description]}
        chosen = texts.get(self.field, [variable.name, variable.description])
        return any(self.pattern.search(text) for text in chosen)


@dataclass(frozen=True)
class Fallback:
    """What a variable of `type` maps to when no regex matched: a template such as
    ``market:{symbol}`` filled with the variable's symbol hint."""

    type: str
    template: str
    origin: str

    def render(self, symbol: str | None) -> str | None:
        if "{symbol}" in self.template:
            return None if not symbol else self.template.replace("{symbol}", symbol)
        return self.template


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]
    fallbacks: Mapping[str, Fallback]


@dataclass(frozen=True)
class Registry:
    variables: tuple[Variable, ...]
    rules: Rules


# ---- YAML with line numbers ------------------------------------------------------------------


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """The parsed document and its node tree (for line numbers); YAML errors name the line."""
    if not path.is_file():
        raise RegistryError(f"{path}: registry file does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise RegistryError(f"{path}{line}: not valid YAML ({exc})") from None
    if node is not None:
        _refuse_repeated_keys(node, path)
    return data, node


def _refuse_repeated_keys(node: yaml.Node, path: Path) -> None:
    """PyYAML keeps the last of two equal keys without a word; a registry must not."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            if key.value in seen:
                raise RegistryError(
                    f"{path}:{key.start_mark.line + 1}: key {key.value!r} repeated "
                    f"(first on line {seen[key.value]})"
                )
            seen[key.value] = key.start_mark.line + 1
            _refuse_repeated_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_repeated_keys(item, path)


def _section(data: Any, node: yaml.Node | None, key: str, path: Path) -> tuple[Any, Any]:
    """``data[key]`` and its node, or a RegistryError naming the file."""
    if not isinstance(data, dict) or key not in data:
        raise RegistryError(f"{path}: expected a mapping with a {key!r} section")
    assert isinstance(node, yaml.MappingNode)
    section = next(value for k, value in node.value if k.value == key)
    return data[key], section


def _lines(section: yaml.Node) -> list[int]:
    return [item.start_mark.line + 1 for item in getattr(section, "value", [])]


# ---- variables -------------------------------------------------------------------------------


def load_variables(path: Path, known: KnownSources) -> tuple[Variable, ...]:
    """The variables of `path`, each checked, explicit tags against `known`."""
    data, node = _read_yaml(path)
    entries, section = _section(data, node, "variables", path)
    if not isinstance(entries, list):
        raise RegistryError(f"{path}: 'variables' must be a list")
    problems: list[str] = []
    variables: list[Variable] = []
    first_seen: dict[str, str] = {}
    for entry, line in zip(entries, _lines(section), strict=True):
        try:
            variable = _variable(entry, f"{path}:{line}", known)
        except RegistryError as exc:
            problems.append(str(exc))
            continue
        if variable.name in first_seen:
            problems.append(
                f"{variable.origin}: variable {variable.name!r} is defined twice "
                f"(first at {first_seen[variable.name]})"
            )
            continue
        first_seen[variable.name] = variable.origin
        variables.append(variable)
    if problems:
        raise RegistryError("\n".join(problems))
    return tuple(variables)


def _variable(entry: Any, line: str, known: KnownSources) -> Variable:
    if not isinstance(entry, dict):
        raise RegistryError(f"{line}: a variable must be a mapping, got {entry!r}")
    name = str(entry.get("name", ""))
    where = f"{line} (variable {name or '?'})"
    unknown = sorted(set(entry) - _VARIABLE_KEYS)
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {unknown}")
    if not _NAME.match(name):
        raise RegistryError(f"{where}: name must be snake_case")
    for key, allowed in (("type", TYPES), ("frequency", FREQUENCIES), ("knowledge", KNOWLEDGE)):
        if entry.get(key) not in allowed:
            raise RegistryError(f"{where}: {key} {entry.get(key)!r} is not one of {allowed}")
    if not str(entry.get("description") or "").strip():
        raise RegistryError(f"{where}: description is empty")
    lag = entry.get("lag_days")
    if entry["knowledge"] == "publication_lag":
        if not isinstance(lag, int) or isinstance(lag, bool) or lag < 0:
            raise RegistryError(f"{where}: publication_lag needs lag_days, a whole number >= 0")
    elif lag is not None:
        raise RegistryError(f"{where}: lag_days only goes with knowledge publication_lag")
    source = SourceTag.parse(entry["source"], where) if entry.get("source") else None
    unmapped = str(entry["unmapped"]).strip() if entry.get("unmapped") else None
    if source is not None and unmapped is not None:
        raise RegistryError(f"{where}: a variable has a source or an unmapped reason, not both")
    variable = Variable(
        name=name,
        description=str(entry["description"]).strip(),
        type=entry["type"],
        frequency=entry["frequency"],
        knowledge=entry["knowledge"],
        lag_days=lag,
        source=source,
        symbol=str(entry["symbol"]) if entry.get("symbol") else None,
        unmapped=unmapped,
        origin=line,
    )
    if source is not None:
        if not known.has(source):
            raise RegistryError(f"{where}: explicit source {known.missing(source)}")
        check_knowledge(variable, source, known, "its explicit source")
    return variable


def check_knowledge(variable: Variable, tag: SourceTag, known: KnownSources, how: str) -> None:
    """Refuse a mapping whose source cannot tell when values became known the declared way."""
    basis = variable.knowledge
    fits = {
        "market_close": tag.kind in ("market", "kraken"),
        "vintages": known.keeps_vintages(tag),
        "publication_lag": tag.kind == "worldbank"
        or (tag.kind == "fred" and not known.keeps_vintages(tag)),
    }[basis]
    if not fits:
        raise RegistryError(
            f"{variable.origin} (variable {variable.name}): knowledge {basis} does not fit "
            f"{tag}, mapped by {how}"
            + (" (FRED keeps its vintages: use knowledge vintages)" * known.keeps_vintages(tag))
        )


# ---- rules -----------------------------------------------------------------------------------


def load_rules(path: Path, known: KnownSources) -> Rules:
    """Regex rules (in file order) and type fallbacks, each target checked against `known`."""
    data, node = _read_yaml(path)
    entries, section = _section(data, node, "rules", path)
    if not isinstance(entries, list):
        raise RegistryError(f"{path}: 'rules' must be a list")
    problems: list[str] = []
    rules: list[Rule] = []
    for number, (entry, line) in enumerate(zip(entries, _lines(section), strict=True), 1):
        try:
            rules.append(_rule(entry, f"{path}:{line}", number, known))
        except RegistryError as exc:
            problems.append(str(exc))
    fallbacks: dict[str, Fallback] = {}
    raw, fallback_node = _section(data, node, "fallbacks", path)
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: 'fallbacks' must map a type to a source template")
    assert isinstance(fallback_node, yaml.MappingNode)
    for key_node, _ in fallback_node.value:
        kind, template = key_node.value, raw[key_node.value]
        where = f"{path}:{key_node.start_mark.line + 1} (fallback for type {kind})"
        if kind not in TYPES:
            problems.append(f"{where}: unknown type {kind!r}; expected one of {TYPES}")
            continue
        placeholder = "BASE/QUOTE" if str(template).startswith("kraken:") else "SYMBOL"
        try:
            SourceTag.parse(str(template).replace("{symbol}", placeholder), where)
        except RegistryError as exc:
            problems.append(str(exc))
            continue
        fallbacks[kind] = Fallback(kind, str(template), where)
    if problems:
        raise RegistryError("\n".join(problems))
    return Rules(tuple(rules), fallbacks)


def _rule(entry: Any, line: str, number: int, known: KnownSources) -> Rule:
    if not isinstance(entry, dict):
        raise RegistryError(f"{line}: a rule must be a mapping, got {entry!r}")
    where = f"{line} (rule {number}: {entry.get('pattern')!r})"
    unknown = sorted(set(entry) - _RULE_KEYS)
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {unknown}")
    field = entry.get("field", "both")
    if field not in RULE_FIELDS:
        raise RegistryError(f"{where}: field {field!r} is not one of {RULE_FIELDS}")
    try:
        pattern = re.compile(str(entry.get("pattern") or ""), re.IGNORECASE)
    except re.error as exc:
        raise RegistryError(f"{where}: invalid regex ({exc})") from None
    if not pattern.pattern:
        raise RegistryError(f"{where}: empty pattern")
    if not entry.get("source"):
        raise RegistryError(f"{where}: a rule needs a source")
    target = SourceTag.parse(entry["source"], where)
    if not known.has(target):
        raise RegistryError(f"{where}: {known.missing(target)}")
    return Rule(pattern, field, target, where)


def load_registry(directory: Path, known: KnownSources) -> Registry:
    """Both files from `directory` (``data/reference``), validated against `known`."""
    folder = Path(directory)
    return Registry(
        load_variables(folder / VARIABLES_FILE, known), load_rules(folder / RULES_FILE, known)
    )
