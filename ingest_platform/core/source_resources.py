"""What every HTTP source resource shares: retry knobs, and where call budgets are counted.

The resources of each domain (market, economic) subclass `RetrySettings`: one set of retry and
timeout fields, validated by pydantic, turned into the HTTP layer's `RetryPolicy`.
"""

from __future__ import annotations

from dagster import ConfigurableResource, DagsterInstance, InitResourceContext
from pydantic import Field, PrivateAttr

from ingest_platform.core import settings
from ingest_platform.core.http import RetryPolicy
from ingest_platform.core.instance import shared_store_url

#: The sandbox serves any number of calls: local limits are lifted there so nobody waits.
UNLIMITED_PER_MINUTE = 100_000


def budget_store(instance: DagsterInstance | None) -> str:
    """Where call budgets are counted: the instance's PostgreSQL database when it has one
    (shared by every machine), else a SQLite file under the data folder; the sandbox's calls
    in a file of their own, never against a real key's budget."""
    if settings.using_sandbox():
        return str(settings.data_dir() / "budgets" / "sandbox_call_budgets.sqlite")
    return shared_store_url(instance) or str(
        settings.data_dir() / "budgets" / "call_budgets.sqlite"
    )


class RetrySettings(ConfigurableResource):
    """Retry and timeout knobs every HTTP source resource shares."""

    _instance: DagsterInstance | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._instance = context.instance

    max_attempts: int = Field(default=4, ge=1, description="Attempts per request, first included.")
    backoff_base_seconds: float = Field(
        default=0.5, ge=0, description="Backoff base; jittered, doubled per attempt."
    )
    backoff_cap_seconds: float = Field(
        default=30.0, ge=0, description="Longest backoff between attempts."
    )
    max_retry_after_seconds: float = Field(
        default=120.0,
        ge=0,
        description="A Retry-After beyond this fails the symbol instead of waiting.",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Read timeout per request.")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base_seconds,
            backoff_cap=self.backoff_cap_seconds,
            max_retry_after=self.max_retry_after_seconds,
            read_timeout=self.timeout_seconds,
        )
