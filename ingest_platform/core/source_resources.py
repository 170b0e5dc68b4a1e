"""What every HTTP source resource shares: retry knobs, and where budgets and limits are kept.

The resources of each domain (market, economic) subclass `RetrySettings`: one set of retry and
timeout fields, validated by pydantic, turned into the HTTP layer's `RetryPolicy`; and one place
(`budget_store`) that decides where call budgets and rate-limit windows live, from the Dagster
instance the run uses. Deriving it from the instance, rather than from a setting of its own,
means a deployment cannot point its runs at one database and its budgets at another: every run
that shares an instance shares its budgets and limits, on whichever machine it runs.
"""

from __future__ import annotations

from dagster import ConfigurableResource, DagsterInstance, InitResourceContext
from pydantic import Field, PrivateAttr

from ingest_platform.core import settings
from ingest_platform.core.http import RetryPolicy, SlidingWindowLimiter
from ingest_platform.core.http import shared_rate_limiter as _shared_rate_limiter
from ingest_platform.core.instance import shared_store_url


def budget_store(instance: DagsterInstance | None) -> str:
    """Where call budgets and rate-limit windows are kept.

    The instance's PostgreSQL database when it has one, so every run on every machine shares
    them (a sandbox deployment on PostgreSQL counts in its own instance's database). Else a
    SQLite file under the data folder, shared by the processes of this machine; the sandbox's
    calls in a file of their own there, since a checkout's demo and its real runs share
    ``data/``, and a demo must never spend a real key's budget.
    """
    shared = shared_store_url(instance)
    if shared:
        return shared
    if settings.using_sandbox():
        return str(settings.data_dir() / "budgets" / "sandbox_call_budgets.sqlite")
    return str(settings.data_dir() / "budgets" / "call_budgets.sqlite")


def rate_limits(per_minute: int | None, per_second: int | None = None) -> list[tuple[int, float]]:
    """Sliding-window limits from a resource's per-minute and per-second fields (unset: none)."""
    limits = [(per_minute, 60.0)] if per_minute else []
    return limits + ([(per_second, 1.0)] if per_second else [])


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

    def rate_limiter(
        self, source: str, limits: list[tuple[int, float]]
    ) -> SlidingWindowLimiter | None:
        """The limiter for `source`, its window kept in `budget_store`, so every process and
        run sharing the store shares it; None when there is no limit (the sandbox's default)."""
        if not limits:
            return None
        return _shared_rate_limiter(source, limits, budget_store(self._instance))

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base_seconds,
            backoff_cap=self.backoff_cap_seconds,
            max_retry_after=self.max_retry_after_seconds,
            read_timeout=self.timeout_seconds,
        )
