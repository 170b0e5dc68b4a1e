"""The FRED series and releases the sandbox simulates: metadata, release schedules, revisions.

Each series belongs to one release, as on FRED. A release has a schedule (every business day,
a weekday each week, a day of each month, the first Friday), and every vintage of every series
lands on a date of its release's schedule: the first release of an observation is the first
release date at least `lag_days` after the observation period ends, and each revision is the
first release date at least `revisions[k]` days after the first release. So the day a value
first appears in ``series/observations`` is always one of ``release/dates``.

Release ids and names follow FRED's where we know them (CPI 10, Employment Situation 50, GDP 53,
H.15 18); they are the sandbox's own otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FredRelease:
    """A FRED release and its schedule.

    `schedule` is one of ``business_days`` (US federal business days), ``weekly:<weekday>``
    (0 = Monday; moved to the next business day on a holiday), ``monthly:<day>`` (the first
    business day on or after that day of each month) or ``first_friday``.
    """

    id: int
    name: str
    link: str
    schedule: str
    press_release: bool = True


@dataclass(frozen=True)
class FredSeriesSpec:
    """A FRED series' metadata and how the sandbox generates and releases it."""

    id: str
    title: str
    frequency: str
    frequency_short: str
    units: str
    units_short: str
    seasonal_adjustment: str
    seasonal_adjustment_short: str
    decimals: int
    popularity: int
    notes: str
    release_id: int
    grid: str  # pandas frequency of the observation dates (B, D, W-SAT, MS, QS, ...)
    lag_days: int  # days after the observation period ends before a release may carry it
    revisions: tuple[int, ...]  # days after the first release each revision waits for
    revision_scale: float  # size of the first-release error, in units of the series
    alfred: bool = True  # False: FRED keeps no vintages (ALFRED does not have the series)

    @property
    def release(self) -> FredRelease:
        return FRED_RELEASES[self.release_id]


FRED_RELEASES: dict[int, FredRelease] = {
    r.id: r
    for r in (
        FredRelease(9, "Advance Monthly Sales for Retail and Food Services",
                    "https://www.census.gov/retail/", "monthly:15"),
        FredRelease(10, "Consumer Price Index", "https://www.bls.gov/cpi/", "monthly:12"),
        FredRelease(13, "G.17 Industrial Production and Capacity Utilization",
                    "https://www.federalreserve.gov/releases/g17/", "monthly:16"),
        FredRelease(17, "H.10 Foreign Exchange Rates",
                    "https://www.federalreserve.gov/releases/h10/", "weekly:0"),
        FredRelease(18, "H.15 Selected Interest Rates",
                    "https://www.federalreserve.gov/releases/h15/", "business_days"),
        FredRelease(20, "H.4.1 Factors Affecting Reserve Balances",
                    "https://www.federalreserve.gov/releases/h41/", "weekly:3"),
        FredRelease(21, "H.6 Money Stock Measures",
                    "https://www.federalreserve.gov/releases/h6/", "monthly:24"),
        FredRelease(27, "New Residential Construction",
                    "https://www.census.gov/construction/nrc/", "monthly:17"),
        FredRelease(50, "Employment Situation", "https://www.bls.gov/ces/", "first_friday"),
        FredRelease(53, "Gross Domestic Product", "https://www.bea.gov/data/gdp",
                    "monthly:27"),
        FredRelease(54, "Personal Income and Outlays",
                    "https://www.bea.gov/data/income-saving/personal-income", "monthly:28"),
        FredRelease(91, "Surveys of Consumers", "http://www.sca.isr.umich.edu/", "monthly:28"),
        FredRelease(180, "Unemployment Insurance Weekly Claims Report",
                    "https://www.dol.gov/ui/data.pdf", "weekly:3"),
        FredRelease(192, "Job Openings and Labor Turnover Survey", "https://www.bls.gov/jlt/",
                    "monthly:5"),
        FredRelease(199, "S&P CoreLogic Case-Shiller Home Price Indices",
                    "https://www.spglobal.com/spdji/", "monthly:25", press_release=False),
        FredRelease(209, "ICE BofA Indices", "https://indices.theice.com/", "business_days",
                    press_release=False),
        FredRelease(316, "Primary Mortgage Market Survey", "https://www.freddiemac.com/pmms",
                    "weekly:3"),
        FredRelease(325, "Interest Rate Spreads", "https://fred.stlouisfed.org/",
                    "business_days", press_release=False),
        FredRelease(330, "Treasury Breakeven Inflation", "https://fred.stlouisfed.org/",
                    "business_days", press_release=False),
    )
}  # fmt: skip

_SA, _NSA = ("Seasonally Adjusted", "SA"), ("Not Seasonally Adjusted", "NSA")
_SAAR = ("Seasonally Adjusted Annual Rate", "SAAR")
_DAILY = ("Daily", "D")
_MONTHLY = ("Monthly", "M")
_PERCENT = ("Percent", "%")


def _spec(
    id: str, title: str, frequency: tuple[str, str], units: tuple[str, str],
    seasonal: tuple[str, str], decimals: int, popularity: int, notes: str, release_id: int,
    grid: str, lag_days: int, revisions: tuple[int, ...], revision_scale: float,
    alfred: bool = True,
) -> FredSeriesSpec:  # fmt: skip
    return FredSeriesSpec(
        id, title, *frequency, *units, *seasonal, decimals, popularity, notes, release_id, grid,
        lag_days, revisions, revision_scale, alfred,
    )  # fmt: skip


_TREASURY = "Market Yield on U.S. Treasury Securities at {} Constant Maturity, Quoted on an " \
    "Investment Basis"  # fmt: skip

FRED_SERIES: dict[str, FredSeriesSpec] = {
    s.id: s
    for s in (
        # ---- rates and spreads (daily, H.15 and friends) ----
        _spec("DGS10", _TREASURY.format("10-Year"), _DAILY, _PERCENT, _NSA, 2, 97,
              "Missing values ('.') fall on U.S. bond-market holidays.", 18, "B", 1, (30,), 0.02),
        _spec("DGS2", _TREASURY.format("2-Year"), _DAILY, _PERCENT, _NSA, 2, 90,
              "Missing values ('.') fall on U.S. bond-market holidays.", 18, "B", 1, (30,), 0.02),
        _spec("DGS3MO", _TREASURY.format("3-Month"), _DAILY, _PERCENT, _NSA, 2, 85,
              "Missing values ('.') fall on U.S. bond-market holidays.", 18, "B", 1, (30,), 0.01),
        _spec("DGS30", _TREASURY.format("30-Year"), _DAILY, _PERCENT, _NSA, 2, 84,
              "Missing values ('.') fall on U.S. bond-market holidays.", 18, "B", 1, (30,), 0.02),
        _spec("DFF", "Federal Funds Effective Rate", ("Daily, 7-Day", "D"), _PERCENT, _NSA, 2,
              95, "Published for every calendar day.", 18, "D", 1, (30,), 0.01),
        _spec("FEDFUNDS", "Federal Funds Effective Rate", _MONTHLY, _PERCENT, _NSA, 2, 93,
              "Monthly average of DFF.", 18, "MS", 1, (30,), 0.01),
        _spec("T10Y2Y", "10-Year Treasury Constant Maturity Minus 2-Year Treasury Constant "
              "Maturity", _DAILY, _PERCENT, _NSA, 2, 92, "DGS10 minus DGS2.", 325, "B", 1,
              (30,), 0.01),
        _spec("T10Y3M", "10-Year Treasury Constant Maturity Minus 3-Month Treasury Constant "
              "Maturity", _DAILY, _PERCENT, _NSA, 2, 86, "DGS10 minus DGS3MO.", 325, "B", 1,
              (30,), 0.01),
        _spec("T10YIE", "10-Year Breakeven Inflation Rate", _DAILY, _PERCENT, _NSA, 2, 83,
              "Nominal 10-year yield minus the 10-year TIPS yield.", 330, "B", 1, (30,), 0.01),
        _spec("BAMLH0A0HYM2", "ICE BofA US High Yield Index Option-Adjusted Spread", _DAILY,
              _PERCENT, _NSA, 2, 82, "Licensed data: FRED keeps no vintages of it.", 209, "B",
              1, (2,), 0.02, alfred=False),
        _spec("MORTGAGE30US", "30-Year Fixed Rate Mortgage Average in the United States",
              ("Weekly, Ending Thursday", "W"), _PERCENT, _NSA, 2, 88,
              "Freddie Mac's Primary Mortgage Market Survey.", 316, "W-THU", 0, (6,), 0.02),
        _spec("DTWEXBGS", "Nominal Broad U.S. Dollar Index", _DAILY,
              ("Index Jan 2006=100", "Index Jan 2006=100"), _NSA, 4, 80,
              "Trade-weighted value of the dollar against a broad basket.", 17, "B", 1, (6,),
              0.05),
        _spec("WALCL", "Assets: Total Assets: Total Assets (Less Eliminations from "
              "Consolidation): Wednesday Level", ("Weekly, As of Wednesday", "W"),
              ("Millions of U.S. Dollars", "Mil. of U.S. $"), _NSA, 0, 88,
              "Federal Reserve balance sheet.", 20, "W-WED", 1, (6,), 2500.0),
        # ---- labour ----
        _spec("ICSA", "Initial Claims", ("Weekly, Ending Saturday", "W"), ("Number", "Number"),
              _SA, 0, 90, "Weekly initial claims for unemployment insurance.", 180, "W-SAT",
              5, (6,), 4000.0),
        _spec("UNRATE", "Unemployment Rate", _MONTHLY, _PERCENT, _SA, 1, 96,
              "Civilian unemployment rate.", 50, "MS", 1, (25,), 0.1),
        _spec("PAYEMS", "All Employees, Total Nonfarm", _MONTHLY,
              ("Thousands of Persons", "Thous. of Persons"), _SA, 0, 92,
              "Nonfarm payrolls, revised at the next two releases.", 50, "MS", 1, (25, 50),
              60.0),
        _spec("CIVPART", "Labor Force Participation Rate", _MONTHLY, _PERCENT, _SA, 1, 80,
              "Civilian labor force participation rate.", 50, "MS", 1, (25,), 0.1),
        _spec("CES0500000003", "Average Hourly Earnings of All Employees, Total Private",
              _MONTHLY, ("Dollars per Hour", "$ per Hour"), _SA, 2, 81,
              "Revised at the next two releases.", 50, "MS", 1, (25, 50), 0.03),
        _spec("JTSJOL", "Job Openings: Total Nonfarm", _MONTHLY, ("Level in Thousands",
              "Level in Thous."), _SA, 0, 79, "JOLTS job openings.", 192, "MS", 30, (25,),
              90.0),
        # ---- prices ----
        _spec("CPIAUCSL", "Consumer Price Index for All Urban Consumers: All Items in U.S. "
              "City Average", _MONTHLY, ("Index 1982-1984=100", "Index 1982-1984=100"), _SA,
              3, 95, "CPI-U, all items.", 10, "MS", 5, (25,), 0.08),
        _spec("CPILFESL", "Consumer Price Index for All Urban Consumers: All Items Less Food "
              "and Energy in U.S. City Average", _MONTHLY,
              ("Index 1982-1984=100", "Index 1982-1984=100"), _SA, 3, 90, "Core CPI-U.", 10,
              "MS", 5, (25,), 0.06),
        _spec("PCEPI", "Personal Consumption Expenditures: Chain-type Price Index", _MONTHLY,
              ("Index 2017=100", "Index 2017=100"), _SA, 3, 89, "PCE price index.", 54, "MS",
              20, (25, 50), 0.05),
        _spec("PCEPILFE", "Personal Consumption Expenditures Excluding Food and Energy "
              "(Chain-Type Price Index)", _MONTHLY, ("Index 2017=100", "Index 2017=100"), _SA,
              3, 87, "Core PCE price index.", 54, "MS", 20, (25, 50), 0.04),
        # ---- activity ----
        _spec("INDPRO", "Industrial Production: Total Index", _MONTHLY,
              ("Index 2017=100", "Index 2017=100"), _SA, 4, 85, "Industrial production index.",
              13, "MS", 10, (25,), 0.3),
        _spec("RSAFS", "Advance Retail Sales: Retail Trade and Food Services", _MONTHLY,
              ("Millions of Dollars", "Mil. of $"), _SA, 0, 84, "Advance estimate, revised.",
              9, "MS", 10, (25, 50), 1500.0),
        _spec("UMCSENT", "University of Michigan: Consumer Sentiment", _MONTHLY,
              ("Index 1966:Q1=100", "Index 1966:Q1=100"), _NSA, 1, 86,
              "Released on FRED a month after the survey.", 91, "MS", 20, (25,), 0.4),
        _spec("M2SL", "M2", _MONTHLY, ("Billions of Dollars", "Bil. of $"), _SA, 1, 85,
              "Money stock M2.", 21, "MS", 20, (25,), 15.0),
        _spec("GDP", "Gross Domestic Product", ("Quarterly", "Q"),
              ("Billions of Dollars", "Bil. of $"), _SAAR, 3, 98,
              "Advance, second and third estimates.", 53, "QS", 20, (25, 50), 60.0),
        _spec("GDPC1", "Real Gross Domestic Product", ("Quarterly", "Q"),
              ("Billions of Chained 2017 Dollars", "Bil. of Chn. 2017 $"), _SAAR, 3, 94,
              "Advance, second and third estimates.", 53, "QS", 20, (25, 50), 50.0),
        # ---- housing ----
        _spec("HOUST", "New Privately-Owned Housing Units Started: Total Units", _MONTHLY,
              ("Thousands of Units", "Thous. of Units"), _SAAR, 0, 86, "Housing starts.", 27,
              "MS", 10, (25, 50), 25.0),
        _spec("PERMIT", "New Privately-Owned Housing Units Authorized in Permit-Issuing "
              "Places: Total Units", _MONTHLY, ("Thousands of Units", "Thous. of Units"),
              _SAAR, 0, 80, "Building permits.", 27, "MS", 10, (25,), 12.0),
        _spec("CSUSHPINSA", "S&P CoreLogic Case-Shiller U.S. National Home Price Index",
              _MONTHLY, ("Index Jan 2000=100", "Index Jan 2000=100"), _NSA, 3, 87,
              "Published about two months after the month.", 199, "MS", 50, (25,), 0.3),
    )
}  # fmt: skip
