"""The economic series the platform ingests, from ``data/reference/economic_series.csv``.

One row per FRED series or World Bank indicator/country pair: its id, frequency, whether FRED
keeps its vintages (ALFRED), and a name. The economic assets ingest exactly these, and the
variable registry may only map to them, so "does this series exist?" has one answer offline.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

CATALOGUE_FILE = "economic_series.csv"
COLUMNS = ["source", "series_id", "frequency", "vintages", "name"]
SOURCES = ("fred", "worldbank")
FREQUENCIES = ("daily", "weekly", "monthly", "quarterly", "annual")


class CatalogueError(ValueError):
    """The series catalogue is missing or malformed; the message names the file and line."""


def load_series_catalogue(directory: Path) -> pd.DataFrame:
    """The catalogue as a frame (``vintages`` as bool), validated row by row."""
    path = Path(directory) / CATALOGUE_FILE
    if not path.is_file():
        raise CatalogueError(f"series catalogue {path} does not exist")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise CatalogueError(f"{path}: missing column(s) {missing}")
    problems = []
    for number, row in enumerate(frame.itertuples(index=False), start=2):
        where = f"{path}:{number} ({row.source}:{row.series_id})"
        if row.source not in SOURCES:
            problems.append(f"{where}: source must be one of {SOURCES}")
        if not row.series_id.strip():
            problems.append(f"{where}: blank series_id")
        if row.source == "worldbank" and row.series_id.count("/") != 1:
            problems.append(f"{where}: a World Bank series is INDICATOR/COUNTRY")
        if row.frequency not in FREQUENCIES:
            problems.append(f"{where}: frequency must be one of {FREQUENCIES}")
        if row.vintages not in ("true", "false"):
            problems.append(f"{where}: vintages must be true or false")
        elif row.vintages == "true" and row.source != "fred":
            problems.append(f"{where}: only FRED keeps vintages")
    duplicated = frame[frame.duplicated(["source", "series_id"], keep=False)]
    if len(duplicated):
        problems.append(f"{path}: listed twice: {sorted(set(duplicated['series_id']))}")
    if problems:
        raise CatalogueError("; ".join(problems))
    frame["vintages"] = frame["vintages"] == "true"
    return frame[COLUMNS].sort_values(["source", "series_id"], ignore_index=True)


def fred_series(catalogue: pd.DataFrame) -> dict[str, bool]:
    """FRED series id -> whether FRED keeps its vintages."""
    fred = catalogue[catalogue["source"] == "fred"]
    return dict(zip(fred["series_id"], fred["vintages"].astype(bool), strict=True))


def worldbank_series(catalogue: pd.DataFrame) -> list[tuple[str, str]]:
    """(indicator, country) pairs, in catalogue order."""
    pairs = []
    for series_id in catalogue.loc[catalogue["source"] == "worldbank", "series_id"]:
        indicator, country = series_id.split("/")
        pairs.append((indicator, country))
    return pairs
