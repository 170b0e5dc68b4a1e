"""API-key redaction for every string that leaves a source: URLs, messages, log lines.

Keys travel in query strings (Alpha Vantage, FRED) and providers echo them back in their error
text ("We have detected your API key as …"). So redaction is two rules applied everywhere:
secret query parameters lose their values, and every known secret value (also in its
URL-encoded spellings) is replaced, wherever it appears.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

#: Query-string parameters whose values are secrets, compared case-insensitively.
SECRET_PARAMS = frozenset(
    {"apikey", "api_key", "token", "access_token", "key", "secret", "crumb", "password"}
)
REDACTED = "***"
#: Shorter "secrets" would redact innocent text; real keys are long.
MIN_SECRET_LENGTH = 4

_SECRET_NAMES = "|".join(sorted(SECRET_PARAMS))
_URL_IN_TEXT = re.compile(rf"(?i)([?&](?:{_SECRET_NAMES})=)[^&\s'\")]+")


def redact_url(url: str) -> str:
    """`url` with every secret query-parameter value replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, REDACTED if k.lower() in SECRET_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*:,;/")))


def redact_query_values(text: str) -> str:
    """Secret query-parameter values inside free text (a URL quoted in an error message)."""
    return _URL_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, text)


class Redactor:
    """Removes known secret values and secret query parameters from arbitrary text.

    Each secret is also matched in its percent-encoded forms, because a key with ``+`` or ``/``
    appears as ``%2B`` or ``%2F`` once it has been through a URL.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        spellings: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                spellings |= {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
        self._secrets = sorted(spellings, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = redact_query_values(text)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


class _RedactingFilter(logging.Filter):
    """urllib3 logs request lines (with query strings) at DEBUG: scrub them too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = redact_query_values(str(record.msg))
        return True


_filter_installed = threading.Lock()


def install_urllib3_filter() -> None:
    """Scrub urllib3's DEBUG request lines (idempotent, process-wide)."""
    with _filter_installed:
        logger = logging.getLogger("urllib3.connectionpool")
        if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
            logger.addFilter(_RedactingFilter())
