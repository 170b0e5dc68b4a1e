"""constraints.txt still covers pyproject.toml, so both README commands install what it pins.

Every requirement of the package and of its extras (but `bench`, which the lock leaves out) must
be pinned in constraints.txt, at a version inside the range pyproject.toml allows. A dependency
added or a range moved without refreshing the lock fails here with the command that refreshes it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

CHECKOUT = Path(__file__).resolve().parent.parent
REFRESH = "run .ci/lock and commit constraints.txt"
#: Extras the lock does not resolve: benchmark baselines, never installed by the README.
UNLOCKED_EXTRAS = {"bench"}


def pins(text: str) -> dict[str, Version]:
    """``name==version`` lines of a constraints file, by canonical name."""
    out: dict[str, Version] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise ValueError(f"constraints.txt: {raw!r} is not an exact pin (name==version)")
        out[canonicalize_name(requirement.name)] = Version(specifiers[0].version)
    return out


def locked_requirements(pyproject: dict) -> list[Requirement]:
    project = pyproject["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra, listed in project.get("optional-dependencies", {}).items():
        if extra not in UNLOCKED_EXTRAS:
            requirements += [Requirement(r) for r in listed]
    return [r for r in requirements if r.marker is None or r.marker.evaluate()]


def uncovered(requirements: list[Requirement], pinned: dict[str, Version]) -> list[str]:
    """Each requirement that constraints.txt does not pin, or pins outside its range."""
    problems = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name not in pinned:
            problems.append(f"{requirement} is not pinned")
        elif not requirement.specifier.contains(pinned[name], prereleases=True):
            problems.append(f"{requirement} but constraints.txt pins {name}=={pinned[name]}")
    return problems


def test_constraints_pin_every_requirement_inside_its_range():
    pyproject = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    pinned = pins((CHECKOUT / "constraints.txt").read_text())
    problems = uncovered(locked_requirements(pyproject), pinned)
    assert not problems, (
        "constraints.txt no longer covers pyproject.toml (" + "; ".join(problems) + f"): {REFRESH}"
    )


def test_a_requirement_missing_or_out_of_range_is_named():
    pinned = pins("pandas==2.3.1\nsyrupy==7.0.3\n")
    requirements = [Requirement(r) for r in ("pandas>=2.2,<3", "syrupy>=4.8,<7", "nats-py>=2")]
    assert uncovered(requirements, pinned) == [
        "syrupy<7,>=4.8 but constraints.txt pins syrupy==7.0.3",
        "nats-py>=2 is not pinned",
    ]


def test_the_readme_commands_install_with_the_constraints():
    readme = (CHECKOUT / "README.md").read_text()
    for marker in ("demo-command", "test-command"):
        block = readme.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
        assert "pip install -c constraints.txt -e " in block, (marker, block)
