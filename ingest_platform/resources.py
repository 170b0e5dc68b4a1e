"""Dagster resources for the market sources: configuration in, a ready source client out.

API keys arrive as `EnvVar`s (see definitions.py) and are handed to the HTTP layer as secrets
to redact; base URLs default to the real services and point at the sandbox for demos and tests.
Free-tier limits are the defaults, so a fresh deployment cannot overspend a key by accident.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from ingest_platform import settings
from ingest_platform.sources.alpha_vantage import AlphaVantageSource
from ingest_platform.sources.http import CallBudget, HttpClient, RetryPolicy, shared_rate_limiter
from ingest_platform.sources.polygon import PolygonSource
from ingest_platform.sources.yahoo import YahooSource
from ingest_platform.sources.yahoo_session import routed_session


def _default_budget_path() -> str:
    return str(settings.data_dir() / "budgets" / "call_budgets.sqlite")


class _RetryKnobs(ConfigurableResource):
    max_attempts: int = Field(default=4, description="Attempts per request, first one included.")
    backoff_base_seconds: float = Field(
        default=0.5, description="Backoff base; jittered, doubled per attempt."
    )
    backoff_cap_seconds: float = Field(
        default=30.0, description="Longest backoff between attempts."
    )
    max_retry_after_seconds: float = Field(
        default=120.0, description="A Retry-After beyond this fails the symbol instead of waiting."
    )
    timeout_seconds: float = Field(default=30.0, description="Read timeout per request.")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base_seconds,
            backoff_cap=self.backoff_cap_seconds,
            max_retry_after=self.max_retry_after_seconds,
            read_timeout=self.timeout_seconds,
        )


class YahooFinance(_RetryKnobs):
    """Yahoo Finance through yfinance: the primary source of daily bars and corporate actions."""

    base_url: str | None = Field(
        default=None,
        description="None for Yahoo itself (yfinance's own session); a sandbox /yahoo URL "
        "otherwise.",
    )
    cache_dir: str = Field(
        default_factory=lambda: str(settings.data_dir() / "cache" / "yfinance"),
        description="yfinance's tz/cookie cache folder (never the user-wide default).",
    )
    threads: int = Field(default=8, description="Concurrent chart requests.")

    def source(self) -> YahooSource:
        session = routed_session(self.base_url) if self.base_url else None
        return YahooSource(
            cache_dir=Path(self.cache_dir),
            session=session,
            threads=self.threads,
            timeout=self.timeout_seconds,
            retry=self.retry_policy(),
        )


class AlphaVantage(_RetryKnobs):
    """Alpha Vantage TIME_SERIES_DAILY, a budget-limited second source for reconciliation."""

    api_key: str = Field(description="API key; configure as EnvVar('ALPHA_VANTAGE_API_KEY').")
    base_url: str = Field(default="https://www.alphavantage.co")
    outputsize: str = Field(
        default="compact", description="compact (100 sessions, free) or full (premium)."
    )
    calls_per_minute: int = Field(default=5)
    daily_call_limit: int | None = Field(default=25, description="Free tier: 25 calls a day.")
    cost_per_call: float = Field(
        default=0.0, description="Currency units per call, for budget reports."
    )
    sample_size: int = Field(default=20, description="Symbols reconciled per run (rotating).")
    budget_path: str = Field(default_factory=_default_budget_path)
    note_retry_after_seconds: float = Field(
        default=60.0, description="Wait after a throttling Note."
    )

    def budget(self) -> CallBudget:
        return CallBudget(
            "alpha_vantage", self.budget_path, self.daily_call_limit, self.cost_per_call
        )

    def source(self) -> AlphaVantageSource:
        http = HttpClient(
            "alpha_vantage",
            retry=self.retry_policy(),
            limiter=shared_rate_limiter("alpha_vantage", [(self.calls_per_minute, 60.0)]),
            budget=self.budget(),
            secrets=[self.api_key],
        )
        return AlphaVantageSource(
            http,
            api_key=self.api_key,
            base_url=self.base_url,
            outputsize=self.outputsize,
            note_retry_after=self.note_retry_after_seconds,
        )


class Polygon(_RetryKnobs):
    """Polygon aggregates, a rate-limited second source for reconciliation."""

    api_key: str = Field(description="API key; configure as EnvVar('POLYGON_API_KEY').")
    base_url: str = Field(default="https://api.polygon.io")
    calls_per_minute: int = Field(default=5, description="Free tier: 5 calls a minute.")
    daily_call_limit: int | None = Field(default=None, description="None: no daily cap.")
    cost_per_call: float = Field(default=0.0)
    sample_size: int = Field(default=5, description="Symbols reconciled per run (rotating).")
    budget_path: str = Field(default_factory=_default_budget_path)
    threads: int = Field(default=2)

    def budget(self) -> CallBudget:
        return CallBudget("polygon", self.budget_path, self.daily_call_limit, self.cost_per_call)

    def source(self) -> PolygonSource:
        http = HttpClient(
            "polygon",
            retry=self.retry_policy(),
            limiter=shared_rate_limiter("polygon", [(self.calls_per_minute, 60.0)]),
            budget=self.budget(),
            secrets=[self.api_key],
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        return PolygonSource(http, base_url=self.base_url, threads=self.threads)
