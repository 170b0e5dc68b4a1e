"""Typed source errors. Each names the source and, where there is one, the symbol.

Messages reach logs, Dagster failure events and run metadata, so every error a source raises
passes through the HTTP layer's redactor (`SourceError.redacted`) on its way out: provider
text that echoes an API key ("We have detected your API key as …") loses the key there.
"""

from __future__ import annotations

from collections.abc import Callable


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

    def redacted(self, redact: Callable[[str], str]) -> SourceError:
        """The same error (type, symbol, retry hints) with its text passed through `redact`."""
        clean = type(self).__new__(type(self))  # no __init__: subclasses take other args
        clean.__dict__.update(self.__dict__)
        clean.detail = redact(self.detail)
        where = f"{self.source} {self.symbol}" if self.symbol else self.source
        clean.args = (f"{where}: {clean.detail}",)
        return clean


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


class NoHistory(UnknownSymbol):
    """The provider answered, and its answer holds no history for the symbol: Yahoo's 200 with
    an empty chart for some delisted tickers. Final, like a 404: asking again gives the same."""


class AuthenticationFailed(SourceError):
    """The API key is missing, invalid or revoked."""


class BudgetExhausted(SourceError):
    """Our own call budget for the source is spent; calling would cost money or a ban."""


class QuotaExhausted(BudgetExhausted):
    """The provider says the day's quota is spent: stop calling until the UTC day turns."""


class PremiumOnly(SourceError):
    """The request needs a paid plan (an endpoint or a parameter): a configuration error to
    fix, not a rate limit to wait out."""


class BudgetUnavailable(SourceError):
    """The call-budget store cannot be reached or written; the message names it."""


def redacted_failure(
    error: Exception, redact: Callable[[str], str], source: str, symbol: str | None = None
) -> Exception:
    """`error` with its text passed through `redact`, for a batch that collects or re-raises it.

    The HTTP layer scrubs what a provider's error body says, but a source's later stages
    (parsing rows, following links) raise from payload text too, and a bug's exception carries
    whatever value it tripped on. A `SourceError` keeps its type; anything else becomes a
    `RuntimeError` naming the original type, so an unexpected failure still fails loudly,
    without the key.
    """
    if isinstance(error, SourceError):
        return error.redacted(redact)
    where = f"{source} {symbol}" if symbol else source
    clean = RuntimeError(f"{where}: {type(error).__name__}: {redact(str(error))}")
    return clean.with_traceback(error.__traceback__)
