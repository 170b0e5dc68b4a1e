"""Daily market bars: Yahoo (primary), Alpha Vantage and Polygon (reconciliation samples),
corporate actions, and the conformed `market_bars`."""
