"""Dagster resources for the market sources: configuration in, a ready source client out.

API keys arrive as `EnvVar`s and are handed to the HTTP layer as secrets to redact. Endpoints
are not configuration: the environment decides them (`core.settings.endpoint`), so a launchpad
override of a resource, even ``{}``, cannot switch a sandbox deployment to production. Limits
left unset take the profile's defaults: the providers' free tiers in production, none in the
sandbox (which has no quota), whose calls are counted in a budget file of their own.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from ingest_platform.core import settings
from ingest_platform.core.http import CallBudget, HttpClient
from ingest_platform.core.source_resources import RetrySettings, budget_store, rate_limits
from ingest_platform.market.sources.alpha_vantage import AlphaVantageSource
from ingest_platform.market.sources.polygon import PolygonSource
from ingest_platform.market.sources.yahoo import YahooSource
from ingest_platform.market.sources.yahoo_session import routed_session


class YahooFinance(RetrySettings):
    """Yahoo Finance through yfinance: the primary source of daily bars and corporate actions."""

    cache_dir: str | None = Field(
        default=None,
        description="yfinance's tz/cookie cache folder (default <data dir>/cache/yfinance; "
        "never the user-wide default).",
    )
    threads: int = Field(default=8, ge=1, description="Concurrent chart requests.")

    def source(self) -> YahooSource:
        sandbox = settings.sandbox_url()
        return YahooSource(
            cache_dir=Path(self.cache_dir or settings.data_dir() / "cache" / "yfinance"),
            # Production: yfinance's recommended curl_cffi session, guarded (yahoo_session).
            session=routed_session(f"{sandbox.rstrip('/')}/yahoo") if sandbox else None,
            threads=self.threads,
            timeout=self.timeout_seconds,
            retry=self.retry_policy(),
        )


class AlphaVantage(RetrySettings):
    """Alpha Vantage TIME_SERIES_DAILY, a budget-limited second source for reconciliation."""

    api_key: str = Field(description="API key; configured as EnvVar('ALPHA_VANTAGE_API_KEY').")
    outputsize: str | None = Field(
        default=None,
        description="compact (100 sessions, free) or full (premium). Default: compact against "
        "Alpha Vantage, full against the sandbox, so a backfill has something to reconcile.",
    )
    calls_per_minute: int | None = Field(
        default=None, ge=1, description="Default: 5 (free tier); unlimited in the sandbox."
    )
    calls_per_second: int | None = Field(
        default=None,
        ge=1,
        description="Burst limit, on top of calls_per_minute (Alpha Vantage allows about 1 "
        "request a second on paid plans). Default: none.",
    )
    daily_call_limit: int | None = Field(
        default=None, ge=0, description="Default: 25 (free tier); none in the sandbox."
    )
    cost_per_call: float = Field(
        default=0.0, ge=0, description="Currency units per call, for budget reports."
    )
    sample_size: int = Field(default=20, ge=0, description="Symbols reconciled per run (rotating).")
    note_retry_after_seconds: float = Field(
        default=60.0, ge=0, description="Wait after a throttling Note."
    )

    def effective_sample_size(self) -> int:
        return self.sample_size

    def _daily_limit(self) -> int | None:
        if self.daily_call_limit is not None:
            return self.daily_call_limit
        return None if settings.using_sandbox() else 25

    def budget(self) -> CallBudget:
        return CallBudget(
            "alpha_vantage", budget_store(self._instance), self._daily_limit(), self.cost_per_call
        )

    def source(self) -> AlphaVantageSource:
        sandbox = settings.using_sandbox()
        per_minute = self.calls_per_minute or (None if sandbox else 5)
        http = HttpClient(
            "alpha_vantage",
            retry=self.retry_policy(),
            limiter=self.rate_limiter(
                "alpha_vantage", rate_limits(per_minute, self.calls_per_second)
            ),
            budget=self.budget(),
            secrets=[self.api_key],
        )
        return AlphaVantageSource(
            http,
            api_key=self.api_key,
            base_url=settings.endpoint("https://www.alphavantage.co", "/alphavantage"),
            outputsize=self.outputsize or ("full" if sandbox else "compact"),
            note_retry_after=self.note_retry_after_seconds,
        )


class Polygon(RetrySettings):
    """Polygon aggregates, a rate-limited second source for reconciliation."""

    api_key: str = Field(description="API key; configured as EnvVar('POLYGON_API_KEY').")
    calls_per_minute: int | None = Field(
        default=None, ge=1, description="Default: 5 (free tier); unlimited in the sandbox."
    )
    calls_per_second: int | None = Field(
        default=None,
        ge=1,
        description="Burst limit, on top of calls_per_minute (paid plans are limited per "
        "second rather than per minute). Default: none.",
    )
    daily_call_limit: int | None = Field(default=None, ge=0, description="None: no daily cap.")
    cost_per_call: float = Field(default=0.0, ge=0)
    sample_size: int | None = Field(
        default=None,
        ge=0,
        description="Symbols reconciled per run (rotating); default 5, 25 in the sandbox.",
    )
    threads: int = Field(default=2, ge=1)

    def effective_sample_size(self) -> int:
        if self.sample_size is not None:
            return self.sample_size
        return 25 if settings.using_sandbox() else 5

    def budget(self) -> CallBudget:
        return CallBudget(
            "polygon", budget_store(self._instance), self.daily_call_limit, self.cost_per_call
        )

    def source(self) -> PolygonSource:
        per_minute = self.calls_per_minute or (None if settings.using_sandbox() else 5)
        http = HttpClient(
            "polygon",
            retry=self.retry_policy(),
            limiter=self.rate_limiter("polygon", rate_limits(per_minute, self.calls_per_second)),
            budget=self.budget(),
            secrets=[self.api_key],
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        return PolygonSource(
            http,
            base_url=settings.endpoint("https://api.polygon.io", "/polygon"),
            threads=self.threads,
        )


def market_resources() -> dict[str, ConfigurableResource]:
    """The market sources, keys from the environment (also against the sandbox, which accepts
    any non-empty key, so the demo exercises the production path)."""
    return {
        "yahoo": YahooFinance(),
        "alpha_vantage": AlphaVantage(api_key=EnvVar("ALPHA_VANTAGE_API_KEY")),
        "polygon": Polygon(api_key=EnvVar("POLYGON_API_KEY")),
    }
