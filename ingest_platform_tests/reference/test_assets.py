"""Reference assets materialize, validate and describe themselves."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from dagster import materialize

from ingest_platform.core import settings
from ingest_platform.reference.assets import exchange_holidays, instruments, trading_sessions
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.reference.universe import ReferenceDataError, load_instruments, select


def _resources(lake, directory=None):
    return {
        "lake": lake,
        "reference_files": ReferenceFiles(directory=str(directory or settings.reference_dir())),
    }


@pytest.mark.slow
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

    with pytest.raises(
        ReferenceDataError,
        match=r"listed more than once .*AAPL \(sp500_constituents\.csv:\d+, etfs\.csv:2\)",
    ):
        materialize([instruments], resources=_resources(lake, broken))
    assert lake.partition_keys("instruments") == []


def _snapshot(tmp_path):
    folder = tmp_path / "reference"
    shutil.copytree(settings.reference_dir(), folder)
    return folder


def test_a_duplicate_row_names_the_file_and_both_lines(tmp_path):
    folder = _snapshot(tmp_path)
    path = folder / "sp500_constituents.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[5]]) + "\n")  # line 6 repeated at the end
    symbol = lines[5].split(",")[0]
    with pytest.raises(ReferenceDataError) as info:
        load_instruments(folder)
    assert f"{symbol} (sp500_constituents.csv:6, sp500_constituents.csv:{len(lines) + 1})" in str(
        info.value
    )


def test_a_symbol_with_a_slash_is_refused_at_the_door(tmp_path):
    folder = _snapshot(tmp_path)
    path = folder / "etfs.csv"
    lines = path.read_text().splitlines()
    lines[1] = "BRK/B," + lines[1].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ReferenceDataError, match=r"etfs\.csv: invalid symbol\(s\) 'BRK/B' \(etfs\.csv:2\)"
    ):
        load_instruments(folder)


def test_ten_thousand_unknown_symbols_make_a_short_error():
    universe = load_instruments(settings.reference_dir())
    unknown = tuple(f"ZZ{i:05d}" for i in range(10_000))
    with pytest.raises(ReferenceDataError) as info:
        select(universe, symbols=("AAPL", *unknown))
    message = str(info.value)
    assert message.startswith("10000 symbol(s) not in the instrument universe: ZZ00000, ZZ00001")
    assert "(+9995 more, 10000 in all)" in message and len(message) < 300
