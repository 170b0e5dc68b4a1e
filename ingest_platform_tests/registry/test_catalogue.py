"""The economic series catalogue: what the platform ingests, validated with file and line."""

from __future__ import annotations

import shutil

import pytest

from ingest_platform.core import settings
from ingest_platform.registry.catalogue import (
    CATALOGUE_FILE,
    CatalogueError,
    fred_series,
    load_series_catalogue,
    worldbank_series,
)


def test_the_shipped_catalogue_lists_fred_series_and_world_bank_pairs():
    catalogue = load_series_catalogue(settings.reference_dir())
    fred = fred_series(catalogue)
    assert fred["CPIAUCSL"] is True and fred["BAMLH0A0HYM2"] is False
    assert ("NY.GDP.MKTP.KD.ZG", "USA") in worldbank_series(catalogue)
    assert catalogue["vintages"].dtype == bool


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("quandl,GOLD,daily,false,Gold", "source must be one of"),
        ("worldbank,NY.GDP.MKTP.KD.ZG,annual,false,GDP", "INDICATOR/COUNTRY"),
        ("fred,DGS10,hourly,true,Ten", "frequency must be one of"),
        ("worldbank,FP.CPI.TOTL.ZG/FRA,annual,true,CPI", "only FRED keeps vintages"),
        ("fred,GDP,quarterly,yes,GDP", "vintages must be true or false"),
    ],
)
def test_a_broken_row_names_the_file_and_line(tmp_path, row, fragment):
    shutil.copytree(settings.reference_dir(), tmp_path / "reference")
    path = tmp_path / "reference" / CATALOGUE_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, row]) + "\n")
    with pytest.raises(CatalogueError, match=fragment) as raised:
        load_series_catalogue(path.parent)
    assert f"{path}:{len(lines) + 1}" in str(raised.value)


def test_a_series_listed_twice_is_refused(tmp_path):
    shutil.copytree(settings.reference_dir(), tmp_path / "reference")
    path = tmp_path / "reference" / CATALOGUE_FILE
    path.write_text(path.read_text() + "fred,UNRATE,monthly,true,Again\n")
    with pytest.raises(CatalogueError, match=r"listed twice: \['UNRATE'\]"):
        load_series_catalogue(path.parent)
