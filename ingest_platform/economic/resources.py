"""Dagster resources for the economic sources: FRED (key through EnvVar) and the World Bank.

As for the market sources, endpoints come from the environment (`core.settings.endpoint`) and
limits left unset take the profile's defaults: FRED's documented ~120 requests a minute in
production, none in the sandbox.
"""

from __future__ import annotations

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from ingest_platform.core import settings
from ingest_platform.core.http import CallBudget, HttpClient
from ingest_platform.core.source_resources import RetrySettings, budget_store, rate_limits
from ingest_platform.economic.sources.fred import FredSource
from ingest_platform.economic.sources.worldbank import WorldBankSource


class Fred(RetrySettings):
    """FRED and ALFRED (St. Louis Fed): observations by vintage, series, releases."""

    api_key: str = Field(description="API key; configured as EnvVar('FRED_API_KEY').")
    calls_per_minute: int | None = Field(
        default=None, ge=1, description="Default: 120 (FRED's limit); unlimited in the sandbox."
    )
    threads: int = Field(default=2, ge=1, description="Series fetched concurrently.")

    def budget(self) -> CallBudget:
        return CallBudget("fred", budget_store(self._instance))

    def source(self) -> FredSource:
        per_minute = self.calls_per_minute or (None if settings.using_sandbox() else 120)
        http = HttpClient(
            "fred",
            retry=self.retry_policy(),
            limiter=self.rate_limiter("fred", rate_limits(per_minute)),
            budget=self.budget(),
            secrets=[self.api_key],
        )
        return FredSource(
            http,
            api_key=self.api_key,
            base_url=settings.endpoint("https://api.stlouisfed.org/fred", "/fred"),
        )


class WorldBank(RetrySettings):
    """World Bank Indicators API v2 (no key)."""

    per_page: int = Field(default=1000, ge=1, le=32500, description="Rows per page.")
    threads: int = Field(default=2, ge=1)

    def budget(self) -> CallBudget:
        """Counted, never capped: the World Bank sets no daily limit, but calls are reported."""
        return CallBudget("worldbank", budget_store(self._instance))

    def source(self) -> WorldBankSource:
        http = HttpClient("worldbank", retry=self.retry_policy(), budget=self.budget())
        return WorldBankSource(
            http,
            base_url=settings.endpoint("https://api.worldbank.org/v2", "/worldbank/v2"),
            per_page=self.per_page,
        )


def economic_resources() -> dict[str, ConfigurableResource]:
    return {"fred": Fred(api_key=EnvVar("FRED_API_KEY")), "worldbank": WorldBank()}
