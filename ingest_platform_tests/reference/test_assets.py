"""Reference assets materialize, validate and describe themselves."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from dagster import materialize

from ingest_platform.core import settings
from ingest_platform.reference.assets import exchange_holidays, instruments, trading_sessions
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.reference.universe import ReferenceDataError


def _resources(lake, directory=None):
    return {
        "lake": lake,
        "reference_files": ReferenceFiles(directory=str(directory or settings.reference_dir())),
    }


def test_reference_assets_land_in_the_lake_with_metadata(lake):
    result = materialize(
        [instruments, trading_sessions, exchange_holidays], resources=_resources(lake)
    )
    assert result.success

    universe = lake.read("instruments")
    counts = universe["asset_class"].value_counts().to_dict()
    assert counts["equity"] >= 500
    assert counts["etf"] >= 20 and counts["fx"] >= 8
    assert universe.loc[universe.symbol == "BRK.B", "yahoo_symbol"].item() == "BRK-B"
    assert universe.loc[universe.symbol == "EURUSD", "calendar"].item() == "24/5"
    assert counts["index"] >= 5 and counts["commodity"] >= 5
    assert universe.loc[universe.symbol == "^GSPC", "calendar"].item() == "XNYS"
    assert universe.loc[universe.symbol == "CL=F", "calendar"].item() == "CMES"

    sessions = lake.read("trading_sessions")
    nyse_2024 = sessions[(sessions.calendar == "XNYS") & (sessions.date.dt.year == 2024)]
    assert len(nyse_2024) == 252
    assert nyse_2024.loc[nyse_2024.date == "2024-11-29", "early_close"].item()
    cme = sessions[sessions.calendar == "CMES"].set_index("date")
    assert cme.loc["2024-07-04", "early_close"]  # Globex halts early on Independence Day

    holidays = lake.read("exchange_holidays")
    carter = holidays[(holidays.calendar == "XNYS") & (holidays.date == "2025-01-09")]
    assert carter["kind"].item() == "ad_hoc"

    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        assert metadata["dagster/row_count"].value > 0
        assert metadata["dagster/uri"].value.startswith(lake.root)


def test_definitions_carry_descriptions_owners_and_column_schema():
    for assets_def in (instruments, trading_sessions, exchange_holidays):
        spec = next(iter(assets_def.specs))
        assert spec.description and spec.owners == ["team:data-platform"]
        assert {"pandas", "parquet"} <= set(spec.kinds)
        assert spec.metadata["dagster/column_schema"].value.columns


def test_a_broken_snapshot_fails_with_the_file_named_and_writes_nothing(lake, tmp_path):
    broken = tmp_path / "reference"
    shutil.copytree(settings.reference_dir(), broken)
    frame = pd.read_csv(broken / "etfs.csv")
    frame.loc[0, "symbol"] = "AAPL"  # collides with the equity AAPL
    frame.to_csv(broken / "etfs.csv", index=False)

    with pytest.raises(ReferenceDataError, match=r"more than one reference file: \['AAPL'\]"):
        materialize([instruments], resources=_resources(lake, broken))
    assert lake.partition_keys("instruments") == []
