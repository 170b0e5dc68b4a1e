"""The sandbox's generators: deterministic, calendar-true, realistic, with actions and vintages."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ingest_platform.core import calendars
from ingest_platform.sandbox.data import (
    DEFAULT_LARGE_DRIFTS,
    FRED_SERIES,
    GENESIS,
    WORLDBANK_COUNTRIES,
    WORLDBANK_INDICATORS,
    ConstituentChange,
    LargeDrift,
    MarketSimulator,
)

AS_OF = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def market() -> MarketSimulator:
    return MarketSimulator(seed=11, as_of=AS_OF)


# ---- determinism ---------------------------------------------------------------------------


def test_same_seed_same_bars_and_another_seed_other_bars():
    one, two = MarketSimulator(seed=3, as_of=AS_OF), MarketSimulator(seed=3, as_of=AS_OF)
    other = MarketSimulator(seed=4, as_of=AS_OF)
    for provider in ("yahoo", "alpha_vantage", "polygon"):
        pd.testing.assert_frame_equal(
            one.daily_bars("MSFT", provider=provider), two.daily_bars("MSFT", provider=provider)
        )
    assert not np.allclose(one.daily_bars("MSFT").close, other.daily_bars("MSFT").close)


def test_a_days_bar_does_not_depend_on_the_requested_range_or_a_later_as_of(market):
    whole = market.daily_bars("AAPL", "2023-01-01", "2024-12-31", provider="alpha_vantage")
    part = market.daily_bars("AAPL", "2024-03-01", "2024-03-31", provider="alpha_vantage")
    pd.testing.assert_frame_equal(part, whole.loc["2024-03-01":"2024-03-31"])
    earlier = MarketSimulator(seed=11, as_of="2024-04-30")
    raw_then = earlier.daily_bars("AAPL", "2024-03-01", "2024-03-31", provider="alpha_vantage")
    pd.testing.assert_frame_equal(raw_then, part)


def test_adjusted_history_moves_when_a_split_happens_after_it():
    before = MarketSimulator(seed=11, as_of="2024-06-07").daily_bars(
        "NVDA", "2024-06-03", "2024-06-07"
    )
    after = MarketSimulator(seed=11, as_of="2024-06-30").daily_bars(
        "NVDA", "2024-06-03", "2024-06-07"
    )
    np.testing.assert_allclose(before.close / after.close, 10.0)
    assert (after.volume == before.volume * 10).all()


# ---- calendars -----------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.B", "SPY"])
def test_exchange_listed_bars_fall_on_nyse_sessions_only(market, symbol):
    bars = market.daily_bars(symbol, "2024-01-01", "2024-12-31")
    expected = calendars.sessions("2024-01-01", "2024-12-31", "XNYS")
    assert [d.date() for d in bars.index] == expected
    assert pd.Timestamp("2024-07-04") not in bars.index
    assert (bars.index.dayofweek < 5).all()


def test_fx_trades_24_5_including_us_holidays(market):
    bars = market.daily_bars("EURUSD", "2024-07-01", "2024-07-31")
    assert [d.date() for d in bars.index] == calendars.sessions("2024-07-01", "2024-07-31", "24/5")
    assert pd.Timestamp("2024-07-04") in bars.index
    assert (bars.volume == 0).all()


def test_history_starts_at_genesis_and_stops_at_as_of(market):
    bars = market.daily_bars("KO")
    assert bars.index[0].date() == GENESIS
    assert bars.index[-1].date() == max(calendars.sessions("2025-06-01", AS_OF, "XNYS"))


# ---- realism -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["yahoo", "alpha_vantage", "polygon"])
def test_ohlc_is_consistent_positive_with_integer_volume(market, provider):
    for symbol in ("AAPL", "XOM", "QQQ", "NVDA", "CMG"):
        bars = market.daily_bars(symbol, provider=provider)
        assert (bars.high >= bars[["open", "close"]].max(axis=1)).all()
        assert (bars.low <= bars[["open", "close"]].min(axis=1)).all()
        assert (bars[["open", "high", "low", "close"]] > 0).all().all()
        assert bars.volume.dtype == np.int64 and (bars.volume > 0).all()


@pytest.mark.parametrize(
    ("symbols", "low", "high"),
    [
        (["AAPL", "JPM", "XOM", "KO", "MMM", "ABBV"], 0.012, 0.035),  # equities
        (["SPY", "TLT", "GLD", "XLE"], 0.004, 0.018),  # ETFs
        (["EURUSD", "USDJPY", "GBPUSD"], 0.003, 0.008),  # FX
    ],
)
def test_daily_volatility_is_realistic_per_asset_class(market, symbols, low, high):
    for symbol in symbols:
        returns = np.log(market.daily_bars(symbol).close).diff().dropna()
        assert low < returns.std() < high, symbol


def test_fx_levels_look_like_their_pairs(market):
    assert 0.85 < market.daily_bars("EURUSD").close.median() < 1.35
    assert 110 < market.daily_bars("USDJPY").close.median() < 200
    assert 5 < market.daily_bars("USDMXN").close.median() < 35


# ---- corporate actions ---------------------------------------------------------------------


def test_real_splits_are_scheduled_and_raw_prices_jump_on_them(market):
    splits = market.splits("NVDA")
    assert (pd.Timestamp("2024-06-10"), 10.0) in list(splits.itertuples(index=False, name=None))
    truth = MarketSimulator(seed=11, as_of=AS_OF, drift_bps=0.0, large_drifts=())
    raw = truth.daily_bars("NVDA", "2024-06-06", "2024-06-11", provider="polygon", adjusted=False)
    adjusted = truth.daily_bars("NVDA", "2024-06-06", "2024-06-11", provider="polygon")
    ratio = raw.close / adjusted.close
    np.testing.assert_allclose(ratio.loc[:"2024-06-07"], 10.0, rtol=1e-4)
    np.testing.assert_allclose(ratio.loc["2024-06-10":], 1.0)
    for symbol, day in (
        ("AVGO", "2024-07-15"),
        ("WMT", "2024-02-26"),
        ("CMG", "2024-06-26"),
        ("SMCI", "2024-10-01"),
    ):
        assert pd.Timestamp(day) in set(market.splits(symbol).date), symbol


def test_adj_close_is_the_multiplicative_dividend_back_adjustment(market):
    bars = market.daily_bars("JNJ", "2023-01-01", "2024-12-31")
    dividends = market.dividends("JNJ").set_index("date").amount
    factor = bars.adj_close / bars.close
    in_range = dividends.loc["2023-02-01":"2024-12-31"]
    assert len(in_range) >= 7  # quarterly
    for ex_date, amount in in_range.items():
        position = bars.index.get_loc(ex_date)
        step = factor.iloc[position - 1] / factor.iloc[position]
        assert step == pytest.approx(1 - amount / bars.close.iloc[position - 1], rel=1e-9)


def test_yahoo_dividends_are_split_adjusted_and_raw_ones_are_not(market):
    raw = market.dividends("WMT", adjusted=False).set_index("date").amount
    adjusted = market.dividends("WMT").set_index("date").amount
    np.testing.assert_allclose(raw.loc[:"2024-02-23"] / adjusted.loc[:"2024-02-23"], 3.0)
    np.testing.assert_allclose(raw.loc["2024-02-26":], adjusted.loc["2024-02-26":])


# ---- secondary sources ---------------------------------------------------------------------


def test_secondary_sources_drift_within_bps_except_the_injected_large_drifts():
    market = MarketSimulator(seed=11, as_of=AS_OF, drift_bps=3.0)
    yahoo = market.daily_bars("MSFT", "2024-01-01", "2024-12-31")
    polygon = market.daily_bars("MSFT", "2024-01-01", "2024-12-31", provider="polygon")
    relative = (polygon.close / yahoo.close - 1).abs()
    large = {d.day for d in DEFAULT_LARGE_DRIFTS if d.provider == "polygon" and d.symbol == "MSFT"}
    normal = relative[~relative.index.isin(pd.DatetimeIndex(sorted(large)))]
    assert normal.max() <= 3.0e-4 + 1e-4 / yahoo.close.min()  # drift + 4-decimal rounding
    assert normal.max() > 1e-4  # there is a drift
    for day in large:
        assert relative.loc[pd.Timestamp(day)] == pytest.approx(0.05, abs=5e-4)


def test_zero_drift_makes_alpha_vantage_the_raw_truth():
    market = MarketSimulator(seed=11, as_of=AS_OF, drift_bps=0.0, large_drifts=[])
    av = market.daily_bars("NVDA", "2024-06-01", "2024-06-30", provider="alpha_vantage")
    raw = market.daily_bars("NVDA", "2024-06-01", "2024-06-30", provider="polygon", adjusted=False)
    pd.testing.assert_frame_equal(av, raw[["open", "high", "low", "close", "volume"]])


def test_large_drifts_are_configurable_as_tuples():
    market = MarketSimulator(
        seed=11, as_of=AS_OF, large_drifts=[("alpha_vantage", "KO", "2024-05-01", 0.1)]
    )
    assert market.large_drifts == (LargeDrift("alpha_vantage", "KO", dt.date(2024, 5, 1), 0.1),)
    yahoo = market.daily_bars("KO", "2024-05-01", "2024-05-01")
    av = market.daily_bars("KO", "2024-05-01", "2024-05-01", provider="alpha_vantage")
    assert av.close.iloc[0] / yahoo.close.iloc[0] == pytest.approx(1.1, abs=1e-3)


def test_alpha_vantage_has_no_fx_and_unknown_symbols_are_named(market):
    with pytest.raises(ValueError, match="equities and ETFs"):
        market.daily_bars("EURUSD", provider="alpha_vantage")
    with pytest.raises(KeyError, match="NOPE"):
        market.daily_bars("NOPE")


def test_provider_tickers_resolve_to_the_instrument(market):
    assert market.resolve("yahoo", "BRK-B").symbol == "BRK.B"
    assert market.resolve("yahoo", "EURUSD=X").symbol == "EURUSD"
    assert market.resolve("polygon", "C:EURUSD").symbol == "EURUSD"
    assert market.resolve("polygon", "BRK.B").symbol == "BRK.B"
    assert market.resolve("alpha_vantage", "EURUSD") is None
    assert market.resolve("yahoo", "NOPE") is None
    # 503 equities, 31 ETFs, 11 FX, 5 indices, 5 futures, and 53 former S&P 500 members
    assert len(market.instruments) == 608


def test_indices_and_futures_trade_on_their_own_calendars(market):
    july = ("2024-07-01", "2024-07-08")
    gspc, vix, crude = (market.daily_bars(s, *july) for s in ("^GSPC", "^VIX", "CL=F"))
    independence_day = pd.Timestamp("2024-07-04")
    assert independence_day not in gspc.index  # NYSE closed
    assert independence_day in crude.index  # CME Globex trades an abbreviated session
    assert (vix.volume == 0).all() and (gspc.volume > 0).all()
    assert 5 < market.daily_bars("^VIX").close.median() < 60
    assert 1000 < market.daily_bars("^GSPC").close.median() < 10_000
    assert 20 < market.daily_bars("CL=F").close.median() < 200


def test_index_and_futures_tickers_per_provider(market):
    assert market.resolve("yahoo", "^GSPC").asset_class == "index"
    assert market.resolve("polygon", "I:SPX").symbol == "^GSPC"
    assert market.resolve("polygon", "I:VIX").symbol == "^VIX"
    assert market.resolve("polygon", "CL=F") is None  # no futures on Polygon aggregates
    assert market.resolve("alpha_vantage", "^GSPC") is None
    assert market.resolve("alpha_vantage", "GC=F") is None
    with pytest.raises(ValueError, match="equities and ETFs"):
        market.daily_bars("^GSPC", provider="alpha_vantage")


# ---- FRED ----------------------------------------------------------------------------------


@pytest.mark.parametrize("series_id", sorted(FRED_SERIES))
def test_every_fred_observation_is_revised_after_its_first_release(market, series_id):
    vintages = market.fred_vintages(series_id)
    released = [
        v for d, v in zip(vintages.dates, vintages.vintages, strict=True) if v[-1][0] <= AS_OF
    ]
    assert len(released) > 10
    for versions in released:
        starts = [s for s, _ in versions]
        assert len(versions) >= 2 and starts == sorted(starts)
        values = [v for _, v in versions]
        assert all(v is None for v in values) or len(set(values[-2:])) == 2


def test_fred_realtime_periods_return_the_vintage_then_known(market):
    vintages = market.fred_vintages("CPIAUCSL")
    index = vintages.dates.index(dt.date(2024, 1, 1))
    (first_day, first_value), (revised_day, revised_value) = vintages.vintages[index][:2]
    observation = {"observation_start": "2024-01-01", "observation_end": "2024-01-01"}
    before = market.fred_rows(
        "CPIAUCSL",
        first_day - dt.timedelta(days=1),
        first_day - dt.timedelta(days=1),
        **observation,
    )
    first = market.fred_rows("CPIAUCSL", first_day, first_day, **observation)
    later = market.fred_rows("CPIAUCSL", revised_day, revised_day, **observation)
    assert before == []
    assert [r.value for r in first] == [first_value]
    assert [r.value for r in later] == [revised_value] != [first_value]
    spanning = market.fred_rows("CPIAUCSL", first_day, revised_day, **observation)
    assert [(r.realtime_start, r.realtime_end) for r in spanning] == [
        (first_day, revised_day - dt.timedelta(days=1)),
        (revised_day, revised_day),
    ]


def test_dgs10_is_missing_on_bond_market_holidays_only(market):
    frame = market.fred_frame("DGS10").set_index("date")
    missing = frame.value[frame.value.isna()]
    assert pd.Timestamp("2024-11-11") in missing.index  # Veterans Day: NYSE open, bonds closed
    assert pd.Timestamp("2024-07-04") in missing.index
    assert len(missing) < 0.05 * len(frame)
    assert (frame.index.dayofweek < 5).all()


def test_fred_knows_nothing_published_after_as_of(market):
    latest = max(r.realtime_start for r in market.fred_rows("GDP", "2015-01-01", "9999-12-31"))
    assert latest <= AS_OF
    assert market.fred_frame("GDP").date.max() < pd.Timestamp(AS_OF)


def test_fred_levels_are_plausible(market):
    last = {s: market.fred_frame(s).value.dropna().iloc[-1] for s in FRED_SERIES}
    assert 0 < last["DGS10"] < 10 and 2 < last["UNRATE"] < 15
    assert 200 < last["CPIAUCSL"] < 600 and 100_000 < last["PAYEMS"] < 250_000
    assert 10_000 < last["GDPC1"] < last["GDP"] < 60_000


# ---- World Bank ----------------------------------------------------------------------------


def test_worldbank_latest_year_is_null_for_half_the_countries(market):
    for indicator in WORLDBANK_INDICATORS:
        latest = [market.worldbank_series(indicator, c)[-1] for c in WORLDBANK_COUNTRIES]
        assert {year for year, _ in latest} == {AS_OF.year - 1}
        assert sum(value is None for _, value in latest) == len(WORLDBANK_COUNTRIES) // 2


def test_worldbank_values_are_plausible(market):
    usa = dict(market.worldbank_series("NY.GDP.MKTP.CD", "USA"))
    assert 2e13 < usa[2023] < 4e13
    unemployment = dict(market.worldbank_series("SL.UEM.TOTL.ZS", "DEU"))
    assert unemployment[1990] is None and 1 < unemployment[2010] < 20


# ---- constituents --------------------------------------------------------------------------


def test_constituents_are_the_snapshot_until_changes_apply():
    changes = [
        ConstituentChange(
            dt.date(2025, 3, 24),
            added="ZZZZ",
            removed="AAPL",
            added_name="Zed Corp.",
            added_sector="Energy",
        ),
        ("2025-06-02", "YYYY", None, "Why Inc.", "Utilities"),
        ("2026-01-05", "XXXX", "MSFT"),  # after as_of: not applied yet
    ]
    market = MarketSimulator(seed=11, as_of=AS_OF, constituent_changes=changes)
    symbols = [c.symbol for c in market.constituents()]
    assert "ZZZZ" in symbols and "YYYY" in symbols and "AAPL" not in symbols
    assert "MSFT" in symbols and "XXXX" not in symbols
    assert len(symbols) == 503 + 1
    stale = [c.symbol for c in market.constituents(skip_latest_changes=1)]
    assert "ZZZZ" in stale and "YYYY" not in stale
    added = next(c for c in market.constituents() if c.symbol == "ZZZZ")
    assert (added.security, added.sector, added.date_added) == (
        "Zed Corp.",
        "Energy",
        dt.date(2025, 3, 24),
    )
    assert len(market.daily_bars("ZZZZ", "2025-06-02", "2025-06-06")) == 5  # added symbols trade


def test_as_of_before_genesis_is_refused():
    with pytest.raises(ValueError, match="genesis"):
        MarketSimulator(as_of="2014-12-31")
