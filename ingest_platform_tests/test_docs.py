"""The docs cannot drift: the generated reference pages match the code, the README stays short
and keeps the set-up commands `.ci/run` reads, and the site builds with every link resolving."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MARKERS = ("demo-command", "test-command")
#: The hand-written pages, which name threshold classes and fields but never their numbers.
NARRATIVE = (*sorted((DOCS / "pages").glob("*.md")), README)


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    """docs/generate.py, loaded from the checkout (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages(generate: ModuleType) -> dict[str, str]:
    return generate.render()


def test_checked_in_reference_pages_match_the_code(
    generate: ModuleType, pages: dict[str, str]
) -> None:
    stale = generate.stale_pages(pages)
    assert not stale, (
        f"stale generated docs: {', '.join(f'docs/pages/reference/{n}' for n in stale)}; "
        "refresh them with `.venv/bin/python docs/generate.py`"
    )


def test_stale_pages_names_a_changed_a_missing_and_a_leftover_page(
    generate: ModuleType, pages: dict[str, str], tmp_path: Path
) -> None:
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
    assert generate.stale_pages(pages, tmp_path) == []
    (tmp_path / "checks.md").write_text(pages["checks.md"].replace("blocking", "blokking", 1))
    (tmp_path / "cli.md").unlink()
    (tmp_path / "old.md").write_text("# gone from the code\n")
    assert generate.stale_pages(pages, tmp_path) == ["checks.md", "cli.md", "old.md"]


def test_pages_describe_the_code(pages: dict[str, str]) -> None:
    """Spot facts the code defines, so an empty or truncated page cannot pass."""
    from ingest_platform.publish.catalogue import DATASETS

    datasets = pages["datasets.md"]
    for dataset in DATASETS:
        assert f"\n## {dataset.name}\n" in datasets
    assert "| `close` | `float64` | `double` |" in datasets
    assert "| first key | `2023-01-02` |" in datasets
    checks = pages["checks.md"]
    market_bars = checks[checks.index("\n## market_bars\n") :]
    assert "| `cross_source_drift` | yes | WARN, ERROR |" in market_bars.split("\n## ")[1]
    assert "WARN above 0.5%, ERROR above 1%" in checks
    automation = pages["automation.md"]
    assert re.search(r"\| `market_bars_daily` \| `[^`]+` \| America/New_York \|", automation)
    assert re.search(r"\| `kraken_stream_sensor` \| standard \| stopped \|", automation)
    cli = pages["cli.md"]
    for command in ("check", "status", "audit", "kraken-replay", "demo", "sandbox"):
        assert f"\n## ingest-platform {command}\n\n```\nusage: ingest-platform {command}" in cli


def test_thresholds_page_reads_every_default_and_the_checks_from_the_code(
    generate: ModuleType, pages: dict[str, str]
) -> None:
    """Each threshold class has its section with every field's default as the class holds it,
    and the checks found to judge by it, including a domain's own limits."""
    import dataclasses

    from ingest_platform.quality.shared.thresholds import (
        AnomalyThresholds,
        CoverageThresholds,
        ScoreThresholds,
        UniverseCoverageThresholds,
    )

    page = pages["thresholds.md"]
    classes = generate.threshold_classes()
    assert {AnomalyThresholds, CoverageThresholds, ScoreThresholds} <= set(classes)
    for cls in classes:
        section = page[page.index(f"\n## {cls.__name__}\n") :].split("\n## ")[1]
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` | `{f.type}` | {generate._default(getattr(cls(), f.name))} |" in (
                section
            ), f"{cls.__name__}.{f.name}"
    coverage = page[page.index("\n## CoverageThresholds\n") :].split("\n## ")[1]
    assert f"| `warn_below` | `float` | {CoverageThresholds().warn_below:g} |" in coverage
    assert "`indicator_coverage` on [`economic_indicators`]" in coverage
    assert "(set to `on_extra=Status.PASS`)" in coverage
    assert "`stream_coverage` on [`kraken_book_minute_bars`]" in coverage
    universe = page[page.index("\n## UniverseCoverageThresholds\n") :].split("\n## ")[1]
    assert "`universe_coverage` on [`market_bars`]" in universe
    assert UniverseCoverageThresholds().bands() in universe
    ticks = page[page.index("\n## FalseTickThresholds\n") :].split("\n## ")[1]
    assert (
        "`bar_anomalies` on [`market_bars`](checks.md#market_bars), [`yahoo_daily_bars`]" in ticks
    )
    assert "a MAD of almost nothing" in ticks  # the field's `#:` comment


def _numeric_defaults() -> tuple[dict[str, set[float]], dict[str, set[float]]]:
    """The numeric defaults of the threshold classes, by field name and by class name."""
    import dataclasses

    from ingest_platform.quality.shared import thresholds

    by_field: dict[str, set[float]] = {}
    by_class: dict[str, set[float]] = {}
    for name, cls in vars(thresholds).items():
        if name.startswith("_") or not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            continue
        for f in dataclasses.fields(cls):
            value = getattr(cls(), f.name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                by_field.setdefault(f.name, set()).add(float(value))
                by_class.setdefault(cls.__name__, set()).add(float(value))
    return by_field, by_class


def retyped_thresholds(text: str) -> list[str]:
    """Where `text` states a threshold default instead of naming it: a field followed by its
    default (`tolerance=0.05`, `settle_hours (12)`, `warn_z: 8`), or a table cell holding a
    threshold class's name and one of that class's defaults."""
    by_field, by_class = _numeric_defaults()
    found = []
    for name, values in by_field.items():
        pattern = rf"\b{name}\b`?\s*(?:=|:|\()\s*`?(\d+(?:\.\d+)?)"
        found += [m.group(0) for m in re.finditer(pattern, text) if float(m.group(1)) in values]
    cells = (
        cell
        for line in text.splitlines()
        if line.lstrip().startswith("|")
        for cell in re.split(r"(?<!\\)\|", line)
    )
    for cell in cells:
        numbers = {float(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", cell)}
        for name, values in by_class.items():
            if re.search(rf"\b{name}\b", cell) and numbers & values:
                found.append(f"{name} with {sorted(numbers & values)} in cell: {cell.strip()}")
    return found


def test_the_retyped_threshold_finder_finds_the_forms_it_forbids() -> None:
    from ingest_platform.quality.shared.thresholds import (
        CoverageThresholds,
        SplitThresholds,
        StuckThresholds,
    )

    coverage, split = CoverageThresholds(), SplitThresholds()
    cell = f"| `CoverageThresholds`: WARN below `{coverage.warn_below}`. |"
    assert retyped_thresholds(cell)
    assert retyped_thresholds(f"within `tolerance={split.tolerance}` of a ratio")
    assert retyped_thresholds(f"| `StuckThresholds`: from {StuckThresholds().warn_run_sessions} |")
    assert not retyped_thresholds("| [`CoverageThresholds`](x.md): WARN below `warn_below`. |")
    assert not retyped_thresholds("`DriftThresholds(warn_above=0.03, error_above=0.02)`")


@pytest.mark.parametrize("page", NARRATIVE, ids=lambda p: p.name)
def test_narrative_pages_name_thresholds_instead_of_retyping_them(page: Path) -> None:
    """The numbers live in `quality/shared/thresholds.py` and the generated Thresholds page; a
    hand-written page that restates one drifts the day the class changes."""
    found = retyped_thresholds(page.read_text())
    assert not found, (
        f"{page.relative_to(ROOT)} retypes threshold defaults: {found}; name the field and link "
        "reference/thresholds.md instead"
    )


def test_pages_hold_nothing_from_the_machine(pages: dict[str, str]) -> None:
    text = "".join(pages.values())
    for local in (str(ROOT), "/tmp", "ingest_platform_docs_", sys.prefix):
        assert local not in text
    assert not re.search(r"20\d\d-\d\d-\d\dT\d\d:\d\d", text)


def test_check_mode_fails_naming_the_stale_page_and_the_command(tmp_path: Path) -> None:
    """`generate.py --check` against a copy of the docs with one page edited: exit 1, the page
    and the refreshing command named, nothing rewritten."""
    copy = tmp_path / "docs"
    shutil.copytree(DOCS, copy, ignore=shutil.ignore_patterns("site"))
    page = copy / "pages" / "reference" / "automation.md"
    page.write_text(page.read_text() + "\nedited by hand\n")
    result = subprocess.run(
        [sys.executable, str(copy / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "stale: docs/pages/reference/automation.md" in result.stderr
    assert "python docs/generate.py" in result.stderr
    assert page.read_text().endswith("\nedited by hand\n")


def test_readme_is_short_and_keeps_the_set_up_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for marker in MARKERS:
        block = re.search(rf"<!-- {marker} -->\n```\n(.+)\n```\n<!-- /{marker} -->", text)
        assert block, f"README lost the {marker} markers that .ci/run reads"


def test_getting_started_shows_the_readme_commands() -> None:
    """The docs site repeats the two set-up commands; they must be the README's, verbatim."""
    readme = README.read_text()
    page = (DOCS / "pages" / "getting-started.md").read_text()
    for marker in MARKERS:
        found = re.search(rf"<!-- {marker} -->\n```\n(.+)\n```\n<!-- /{marker} -->", readme)
        assert found
        # Indented inside the page's numbered list; the command itself verbatim.
        shown = rf"\n *```\n *{re.escape(found.group(1))}\n *```\n"
        assert re.search(shown, page), f"getting-started.md lost the {marker}"


def test_every_readme_link_to_the_docs_resolves() -> None:
    for target in re.findall(r"\]\((docs/[^)#]+)", README.read_text()):
        assert (ROOT / target).is_file(), f"README links to missing {target}"


def test_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`: a broken link or anchor, or a page left out of the nav, fails."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(DOCS / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "reference" / "checks.html").is_file()
