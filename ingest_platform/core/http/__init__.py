"""The one HTTP layer every source uses: timeouts, bounded retries with full jitter that
honour Retry-After, shared rate limits, persisted call budgets, and API-key redaction in every
URL, message and log line. No source re-implements any of it."""

from ingest_platform.core.http.budget import BudgetReport, CallBudget
from ingest_platform.core.http.client import ClientStats, HttpClient
from ingest_platform.core.http.errors import (
    AuthenticationFailed,
    BudgetExhausted,
    BudgetUnavailable,
    MalformedPayload,
    PremiumOnly,
    QuotaExhausted,
    RateLimited,
    SourceError,
    SourceUnavailable,
    UnknownSymbol,
)
from ingest_platform.core.http.limits import (
    RateLimiter,
    SharedRateLimiter,
    SlidingWindowLimiter,
    shared_rate_limiter,
)
from ingest_platform.core.http.redaction import REDACTED, Redactor, redact_url
from ingest_platform.core.http.retry import RetryPolicy, parse_retry_after, retry_call

__all__ = [
    "REDACTED",
    "AuthenticationFailed",
    "BudgetExhausted",
    "BudgetReport",
    "BudgetUnavailable",
    "CallBudget",
    "ClientStats",
    "HttpClient",
    "MalformedPayload",
    "PremiumOnly",
    "QuotaExhausted",
    "RateLimited",
    "RateLimiter",
    "Redactor",
    "RetryPolicy",
    "SharedRateLimiter",
    "SlidingWindowLimiter",
    "SourceError",
    "SourceUnavailable",
    "UnknownSymbol",
    "parse_retry_after",
    "redact_url",
    "retry_call",
    "shared_rate_limiter",
]
