"""A deterministic local simulator of every source the platform reads, with fault injection.

Yahoo (as yfinance calls it), FRED, World Bank, Alpha Vantage, Polygon and Wikipedia over HTTP;
Kraken spot WebSocket v2 over a real WebSocket. Used by the demo, the tests and the benchmarks,
so no part of the platform needs the internet to be exercised end to end.

`Sandbox` runs both servers with one `FaultPlan` and one set of `RequestCounters`, so the HTTP
control endpoint (``/_sandbox/faults``) programs WebSocket faults too.
"""

from __future__ import annotations

from ingest_platform.core.settings import SANDBOX_KRAKEN_URL_ENV, SANDBOX_URL_ENV
from ingest_platform.sandbox.control import FaultPlan, RequestCounters
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer
from ingest_platform.sandbox.kraken_ws import KrakenSandboxServer


class Sandbox:
    """Both sandbox servers on loopback, sharing faults and counters."""

    def __init__(
        self,
        seed: int = 7,
        as_of: str | None = None,
        host: str = "127.0.0.1",
        http_port: int = 0,
        kraken_port: int = 0,
        kraken_rate: float = 50.0,
        faults: FaultPlan | None = None,
    ) -> None:
        self.faults = faults if faults is not None else FaultPlan()
        self.counters = RequestCounters()
        # Clean by default: secondary sources agree with Yahoo within a few basis points, so a
        # fresh backfill passes every check; the `drift` fault injects disagreement on demand.
        self.market = MarketSimulator(seed=seed, as_of=as_of, large_drifts=())
        self.http = SandboxHTTPServer(self.market, self.faults, self.counters, host, http_port)
        self.kraken = KrakenSandboxServer(
            seed=seed,
            faults=self.faults,
            counters=self.counters,
            host=host,
            port=kraken_port,
            rate=kraken_rate,
        )

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def kraken_url(self) -> str:
        return self.kraken.url

    def env(self) -> dict[str, str]:
        """Environment that points the code location (UI, CLI, demo) at this sandbox."""
        return {SANDBOX_URL_ENV: self.url, SANDBOX_KRAKEN_URL_ENV: self.kraken_url}

    def start(self) -> None:
        self.http.start()
        try:
            self.kraken.start()
        except BaseException:
            self.http.stop()
            raise

    def stop(self) -> None:
        try:
            self.kraken.stop()
        finally:
            self.http.stop()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = [
    "FaultPlan",
    "KrakenSandboxServer",
    "MarketSimulator",
    "RequestCounters",
    "Sandbox",
    "SandboxHTTPServer",
]
