"""Typed source errors. Each names the source and, where there is one, the symbol.

Messages are built from already-redacted text: an API key never reaches an exception, so it
cannot leak into a log line, a Dagster failure event or run metadata.
"""

from __future__ import annotations


class SourceError(Exception):
    """A source could not deliver data for a symbol (or for the whole request)."""

    #: Whether trying again later could succeed (throttling, outages) as opposed to bad input.
    transient = False

    def __init__(self, source: str, message: str, symbol: str | None = None) -> None:
        self.source = source
        self.symbol = symbol
        self.detail = message
        where = f"{source} {symbol}" if symbol else source
        super().__init__(f"{where}: {message}")


class RateLimited(SourceError):
    """The provider throttled us (HTTP 429, or an in-body note such as Alpha Vantage's)."""

    transient = True

    def __init__(
        self, source: str, message: str, symbol: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(source, message, symbol)
        self.retry_after = retry_after


class SourceUnavailable(SourceError):
    """5xx answers, timeouts or dropped connections that outlasted the retries."""

    transient = True


class MalformedPayload(SourceError):
    """The answer was not the documented shape (truncated JSON, missing fields)."""

    transient = True  # a truncated body is usually a network hiccup: worth one more try


class UnknownSymbol(SourceError):
    """The provider does not know the symbol (delisted, mistyped, not covered)."""


class AuthenticationFailed(SourceError):
    """The API key is missing, invalid or revoked."""


class BudgetExhausted(SourceError):
    """Our own call budget for the source is spent; calling would cost money or a ban."""


class BudgetUnavailable(SourceError):
    """The call-budget store cannot be reached or written; the message names it."""
