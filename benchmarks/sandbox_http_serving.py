"""How fast the sandbox serves a three-year backfill of the whole universe; prints figures.

Requests, one pass per provider over the universe (545 instruments by default):

* Yahoo: one ``/v8/finance/chart/{symbol}?period1&period2&interval=1d&events=div,splits`` per
  instrument (equities, ETFs, FX), as yfinance sends it;
* Alpha Vantage: one ``TIME_SERIES_DAILY&outputsize=full`` per equity and ETF (full history
  since the simulator's genesis, as the real API returns it);
* Polygon: one ``/v2/aggs/ticker/{T}/range/1/day/{start}/{end}`` per instrument, following
  ``next_url`` (with the key re-appended) until the last page.

Clients are a thread pool with one ``requests.Session`` per thread (keep-alive). Each pass is
timed cold (the series are generated on first use) and warm. The baseline builds the same
payloads in-process through `SandboxHTTPServer.handle` (no sockets, no HTTP parsing), in the same
run, so the HTTP overhead is the difference. ``--server-process`` runs the server in a child
process, so client threads do not share its GIL (closer to ``ingest-platform sandbox`` plus a
Dagster run). ``--with-yfinance`` also times yfinance's own download of the Yahoo pass through
the routed session (client-side parsing included).

    .venv/bin/python benchmarks/sandbox_http_serving.py
    .venv/bin/python benchmarks/sandbox_http_serving.py --server-process --with-yfinance
    .venv/bin/python benchmarks/sandbox_http_serving.py --quick        # 60 instruments
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import requests

from ingest_platform.sandbox.data import Instrument, MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

API_KEY = "benchmark-key"


@dataclass
class PassResult:
    provider: str
    requests: int
    bytes: int
    seconds: float

    def line(self, label: str) -> str:
        rate = self.requests / self.seconds if self.seconds else float("inf")
        mb = self.bytes / 1e6
        return (
            f"  {label:<26} {self.requests:6d} req  {self.seconds:7.2f} s  {rate:8.0f} req/s  "
            f"{mb:8.1f} MB  {mb / self.seconds if self.seconds else 0:7.1f} MB/s"
        )


def _epoch(day: dt.date, tz: str) -> int:
    return int(pd.Timestamp(day).tz_localize(tz).timestamp())


def yahoo_targets(instruments: list[Instrument], start: dt.date, end: dt.date) -> list[str]:
    """Chart paths as yfinance builds them: midnights in the exchange timezone, end exclusive."""
    out = []
    for inst in instruments:
        tz = "Europe/London" if inst.is_fx else "America/New_York"
        period1 = _epoch(start, tz)
        period2 = _epoch(end + dt.timedelta(days=1), tz)
        out.append(
            f"/yahoo/v8/finance/chart/{inst.yahoo_symbol}?period1={period1}&period2={period2}"
            "&interval=1d&includePrePost=False&events=div%2Csplits%2CcapitalGains"
        )
    return out


def av_targets(instruments: list[Instrument]) -> list[str]:
    return [
        f"/alphavantage/query?function=TIME_SERIES_DAILY&symbol={i.symbol}&outputsize=full"
        f"&apikey={API_KEY}"
        for i in instruments
        if not i.is_fx
    ]


def polygon_targets(instruments: list[Instrument], start: dt.date, end: dt.date) -> list[str]:
    return [
        f"/polygon/v2/aggs/ticker/{i.polygon_ticker}/range/1/day/{start}/{end}"
        f"?adjusted=true&sort=asc&limit=50000&apiKey={API_KEY}"
        for i in instruments
    ]


def run_http_pass(base: str, provider: str, targets: list[str], threads: int) -> PassResult:
    """GET every target from a pool of sessions; Polygon pages are followed via next_url."""
    local = threading.local()
    totals = {"requests": 0, "bytes": 0}
    lock = threading.Lock()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def fetch(target: str) -> None:
        url, count, size = base + target, 0, 0
        while url:
            response = session().get(url, timeout=60)
            response.raise_for_status()
            count, size = count + 1, size + len(response.content)
            url = None
            if provider == "polygon":
                following = response.json().get("next_url")
                url = f"{following}&apiKey={API_KEY}" if following else None
        with lock:
            totals["requests"] += count
            totals["bytes"] += size

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fetch, targets))
    return PassResult(provider, totals["requests"], totals["bytes"], time.perf_counter() - began)


def run_inprocess_pass(server: SandboxHTTPServer, provider: str, targets: list[str]) -> PassResult:
    """The same payloads built by the server's socket-free core, in one thread."""
    headers: dict[str, str] = {}
    count = size = 0
    began = time.perf_counter()
    for target in targets:
        path = target
        while path:
            response = server.handle("GET", path, headers)
            count, size = count + 1, size + len(response.body)
            path = None
            if provider == "polygon" and b'"next_url"' in response.body:
                following = json.loads(response.body)["next_url"]
                path = following[len(server.url) :] + f"&apiKey={API_KEY}"
    return PassResult(provider, count, size, time.perf_counter() - began)


def _serve_in_child(options: dict, queue) -> None:  # pragma: no cover - runs in the child
    market = MarketSimulator(**options)
    server = SandboxHTTPServer(market)
    server.start()
    queue.put(server.url)
    threading.Event().wait()


@contextmanager
def http_server(
    market_options: dict, in_process: SandboxHTTPServer, separate: bool
) -> Iterator[str]:
    if not separate:
        in_process.start()
        try:
            yield in_process.url
        finally:
            in_process.stop()
        return
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_serve_in_child, args=(market_options, queue), daemon=True)
    child.start()
    try:
        yield queue.get(timeout=120)
    finally:
        child.terminate()
        child.join()


def time_yfinance(base: str, instruments: list[Instrument], start: dt.date, end: dt.date) -> float:
    import tempfile

    import yfinance as yf

    from ingest_platform.market.sources.yahoo_session import routed_session

    yf.set_tz_cache_location(tempfile.mkdtemp(prefix="yf-bench-"))
    began = time.perf_counter()
    frame = yf.download(
        [i.yahoo_symbol for i in instruments],
        start=start.isoformat(),
        end=(end + dt.timedelta(days=1)).isoformat(),
        session=routed_session(base + "/yahoo"),
        auto_adjust=False,
        actions=True,
        progress=False,
        threads=8,
    )
    seconds = time.perf_counter() - began
    print(f"  yfinance download: {frame.shape[0]} sessions x {frame.shape[1]} columns")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2023-01-02")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--as-of", default="2025-12-31")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--polygon-page-size", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="60 instruments instead of all")
    parser.add_argument("--server-process", action="store_true", help="server in a child process")
    parser.add_argument("--with-yfinance", action="store_true", help="also time yf.download")
    args = parser.parse_args(argv)
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    options = {
        "seed": args.seed,
        "as_of": args.as_of,
        "polygon_page_size": args.polygon_page_size,
    }
    market = MarketSimulator(**options)
    instruments = sorted(market.instruments.values(), key=lambda i: i.symbol)
    if args.quick:
        instruments = instruments[:: max(len(instruments) // 60, 1)][:60]
    passes: dict[str, list[str]] = {
        "yahoo": yahoo_targets(instruments, start, end),
        "alpha_vantage": av_targets(instruments),
        "polygon": polygon_targets(instruments, start, end),
    }

    print("sandbox HTTP serving benchmark")
    print(f"  python {sys.version.split()[0]} on {platform.platform()}, {os.cpu_count()} CPUs")
    print(
        f"  {len(instruments)} instruments, {start}..{end}, as_of {args.as_of}, seed {args.seed}, "
        f"{args.threads} client threads, server "
        f"{'in a child process' if args.server_process else 'in this process (thread)'}"
    )

    baseline_server = SandboxHTTPServer(MarketSimulator(**options))
    baseline_server._url = "http://127.0.0.1:0"  # only used to build next_url offline
    warm = time.perf_counter()
    for inst in instruments:
        baseline_server.market.series(inst.symbol)
    print(f"\ngenerating every series once (cold cache): {time.perf_counter() - warm:.2f} s")

    print("\nin-process baseline (payloads built by SandboxHTTPServer.handle, no HTTP):")
    baseline: dict[str, PassResult] = {}
    for provider, targets in passes.items():
        baseline[provider] = run_inprocess_pass(baseline_server, provider, targets)
        print(baseline[provider].line(provider))

    server = SandboxHTTPServer(market)
    results: dict[str, list[PassResult]] = {}
    yfinance_seconds = None
    with http_server(options, server, args.server_process) as base:
        print(f"\nover HTTP ({base}):")
        for label in ("cold", "warm"):
            for provider, targets in passes.items():
                result = run_http_pass(base, provider, targets, args.threads)
                results.setdefault(provider, []).append(result)
                print(result.line(f"{provider} ({label})"))
        if args.with_yfinance:
            print("\nyfinance through the routed session (client-side parsing included):")
            yfinance_seconds = time_yfinance(base, instruments, start, end)
            print(f"  yf.download of {len(instruments)} tickers: {yfinance_seconds:.2f} s")

    print("\nsummary (warm):")
    total = PassResult("all", 0, 0, 0.0)
    for provider, (_, hot) in results.items():
        overhead = hot.seconds / baseline[provider].seconds if baseline[provider].seconds else 0
        print(f"{hot.line(provider)}  HTTP/in-process x{overhead:.1f}")
        total = PassResult("all", total.requests + hot.requests, total.bytes + hot.bytes,
                           total.seconds + hot.seconds)  # fmt: skip
    print(total.line("all providers"))
    print(
        "\nreproduce: .venv/bin/python benchmarks/sandbox_http_serving.py "
        + " ".join(a for a in (argv if argv is not None else sys.argv[1:]))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
