"""A deterministic local simulator of every source the platform reads, with fault injection.

Yahoo (as yfinance calls it), FRED, World Bank, Alpha Vantage, Polygon and Wikipedia over HTTP;
Kraken spot WebSocket v2 over a real WebSocket. Used by the demo, the tests and the benchmarks,
so no part of the platform needs the internet to be exercised end to end.
"""
