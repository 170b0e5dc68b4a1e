"""Fault injection and request counters shared by the sandbox's HTTP and WebSocket servers.

A `FaultPlan` is a list of rules, each naming a fault kind, the endpoint and symbol it applies
to, and how many times it fires. Tests and benchmarks program it directly, through the HTTP
control endpoint (``/_sandbox/faults``) or from a JSON file, and read `RequestCounters` to prove
claims such as "exactly one history request per symbol per source".
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Fault kinds served over HTTP.
HTTP_FAULTS = frozenset(
    {
        "rate_limit",  # 429 with Retry-After (params: retry_after seconds, default 1)
        "server_error",  # 5xx (params: status, default 503)
        "slow",  # answer after params.delay seconds
        "timeout",  # hold the request without answering for params.delay seconds (default 30)
        "truncated_json",  # cut the JSON body short
        "throttle_note",  # Alpha Vantage HTTP 200 {"Note": ...}
        "throttle_information",  # Alpha Vantage HTTP 200 {"Information": ...}
        "empty",  # a well-formed answer with no rows
        "stale",  # the last params.sessions sessions are missing (default 1)
        "duplicate_rows",  # every row twice
        "echo_key",  # an error answer whose text repeats the caller's key
        "missing_days",  # Yahoo chart: no bars from params.start to params.end (events kept)
        "drift",  # Alpha Vantage / Polygon prices moved by params.relative on chosen days
        "unadjusted",  # Yahoo chart: prices as traded, split events dropped
        "xml_answer",  # an XML body (HTTP 200) to a JSON request, as the World Bank sometimes does
        "intraday",  # Yahoo / Alpha Vantage: an answer made mid-session (params.at, HH:MM:SS)
    }
)
#: Fault kinds served over the Kraken WebSocket.
WS_FAULTS = frozenset(
    {
        "drop_after",  # close the connection after params.messages messages (default 10)
        "stop_heartbeats",  # stop sending heartbeats (the connection stays open)
        "corrupt_checksum",  # send one book message with a wrong checksum
        "malformed_json",  # send one frame that is not JSON
        "maintenance",  # send status "maintenance", then stop publishing data
        "reject_subscription",  # answer a subscribe with success=false
        "restart",  # stop the server, then accept connections again after params.down seconds
    }
)
FAULT_KINDS = HTTP_FAULTS | WS_FAULTS
ANY = "*"


class FaultPlanError(ValueError):
    """A fault rule is malformed; the message names the offending field."""


@dataclass
class Fault:
    """One rule: `kind` fires on `endpoint` for `symbol` (``*`` matches any), `times` times."""

    kind: str
    endpoint: str = ANY
    symbol: str = ANY
    times: int | None = None  # None: until cleared
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    def __post_init__(self) -> None:
        # A plan comes from JSON a person wrote: wrong types must be one clear line, not a
        # TypeError deep in a comparison.
        for name in ("kind", "endpoint", "symbol"):
            if not isinstance(getattr(self, name), str):
                raise FaultPlanError(f"fault {name} must be a string, got {getattr(self, name)!r}")
        if self.times is not None and (
            isinstance(self.times, bool) or not isinstance(self.times, int)
        ):
            raise FaultPlanError(
                f"fault {self.kind!r}: times must be an integer >= 1 or null, got {self.times!r}"
            )
        if self.kind not in FAULT_KINDS:
            raise FaultPlanError(f"unknown fault kind {self.kind!r}; known: {sorted(FAULT_KINDS)}")
        if self.times is not None and self.times < 1:
            raise FaultPlanError(
                f"fault {self.kind!r}: times must be >= 1 or null, got {self.times}"
            )
        if not isinstance(self.params, dict):
            raise FaultPlanError(f"fault {self.kind!r}: params must be an object")

    def matches(self, endpoint: str, symbol: str | None) -> bool:
        if self.endpoint not in (ANY, endpoint) and not endpoint.startswith(self.endpoint + "."):
            return False
        return self.symbol in (ANY, symbol)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fault:
        # "fired" (GET output) is ignored so a listing posts back verbatim; a re-post starts fresh.
        if not isinstance(raw, dict):
            raise FaultPlanError(f"a fault rule must be an object, got {raw!r}")
        unknown = set(raw) - {"kind", "endpoint", "symbol", "times", "params", "fired"}
        if unknown:
            raise FaultPlanError(f"fault rule has unknown field(s) {sorted(unknown)}")
        if "kind" not in raw:
            raise FaultPlanError("fault rule needs a 'kind'")
        return cls(
            kind=raw["kind"],
            endpoint=raw.get("endpoint", ANY),
            symbol=raw.get("symbol", ANY),
            times=raw.get("times"),
            params=dict(raw.get("params") or {}),
        )


class FaultPlan:
    """Thread-safe fault rules; the first live matching rule wins and counts one firing."""

    def __init__(self, faults: list[Fault] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = list(faults or [])

    def add(
        self,
        kind: str,
        endpoint: str = ANY,
        symbol: str = ANY,
        times: int | None = None,
        **params: Any,
    ) -> Fault:
        fault = Fault(kind=kind, endpoint=endpoint, symbol=symbol, times=times, params=params)
        with self._lock:
            self._faults.append(fault)
        return fault

    def extend(self, raw: list[dict[str, Any]]) -> list[Fault]:
        faults = []
        for number, rule in enumerate(raw, 1):  # validate all before adding any
            try:
                faults.append(Fault.from_dict(rule))
            except FaultPlanError as exc:
                raise FaultPlanError(f"fault rule {number}: {exc}") from None
        with self._lock:
            self._faults.extend(faults)
        return faults

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(
        self, endpoint: str, symbol: str | None = None, kinds: frozenset[str] = FAULT_KINDS
    ) -> Fault | None:
        """The fault to apply to this request, if any, counting it as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and not fault.exhausted and fault.matches(endpoint, symbol):
                    fault.fired += 1
                    return fault
        return None

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults if not f.exhausted]

    @classmethod
    def from_file(cls, path: str | Path) -> FaultPlan:
        """Load ``{"faults": [{"kind": ..., "endpoint": ..., ...}]}`` from a JSON file."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: bad JSON, or not UTF-8 at all
            raise FaultPlanError(f"cannot read fault plan {path}: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("faults"), list):
            raise FaultPlanError(f"{path}: expected an object with a 'faults' list")
        plan = cls()
        try:
            plan.extend(raw["faults"])
        except FaultPlanError as exc:
            raise FaultPlanError(f"{path}: {exc}") from None
        return plan


#: HTTP request arrivals a sandbox remembers (the oldest are forgotten first): hours of a
#: backfill's traffic, a few megabytes at most.
MAX_ARRIVALS = 200_000


class RequestCounters:
    """Requests served, per endpoint and symbol (``-`` when a request has no symbol), and when
    each HTTP request arrived.

    Counts answer "how many requests"; arrivals answer "how fast": a provider that allows N
    requests a second counts them as they arrive, so tests prove a rate limit held from the
    arrival times (`busiest`, `per_second`), as the provider would see them.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._arrivals: deque[tuple[float, str]] = deque(maxlen=MAX_ARRIVALS)
        self._clock = clock

    def count(self, endpoint: str, symbol: str | None = None) -> None:
        with self._lock:
            self._counts[(endpoint, symbol or "-")] += 1

    def count_request(self, endpoint: str, symbol: str | None = None) -> None:
        """Count an HTTP request and note when it arrived (seconds since the epoch)."""
        now = self._clock()
        with self._lock:
            self._counts[(endpoint, symbol or "-")] += 1
            self._arrivals.append((now, endpoint))

    def arrivals(self, endpoint: str) -> list[float]:
        """When each request to `endpoint` arrived, oldest first; a provider's name (``polygon``)
        covers all its endpoints (``polygon.aggs``, ``polygon.other``)."""
        with self._lock:
            return [at for at, e in self._arrivals if e == endpoint or e.startswith(endpoint + ".")]

    def per_second(self, endpoint: str) -> dict[int, int]:
        """Requests to `endpoint` per whole second (epoch seconds) in which any arrived."""
        return dict(sorted(Counter(int(at) for at in self.arrivals(endpoint)).items()))

    def busiest(self, endpoint: str, seconds: float = 1.0) -> int:
        """The most requests to `endpoint` that arrived within any `seconds`-long window (a
        sliding window, stricter than whole seconds): what a limit of N a second must keep."""
        stamps = sorted(self.arrivals(endpoint))
        most = first = 0
        for last, stamp in enumerate(stamps):
            while stamp - stamps[first] >= seconds:
                first += 1
            most = max(most, last - first + 1)
        return most

    def get(self, endpoint: str, symbol: str | None = None) -> int:
        with self._lock:
            if symbol is None:
                return sum(n for (e, _), n in self._counts.items() if e == endpoint)
            return self._counts[(endpoint, symbol)]

    def by_symbol(self, endpoint: str) -> dict[str, int]:
        with self._lock:
            return {s: n for (e, s), n in self._counts.items() if e == endpoint}

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (endpoint, symbol), n in sorted(self._counts.items()):
                out.setdefault(endpoint, {})[symbol] = n
            return out

    def rates(self) -> dict[str, dict[str, Any]]:
        """Per HTTP endpoint: requests per whole second and the busiest sliding second."""
        with self._lock:
            endpoints = sorted({e for _, e in self._arrivals})
        return {
            e: {
                "per_second": {str(k): n for k, n in self.per_second(e).items()},
                "busiest_second": self.busiest(e),
            }
            for e in endpoints
        }

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._arrivals.clear()
