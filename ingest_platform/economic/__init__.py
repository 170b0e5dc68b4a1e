"""Economic indicators: FRED series with their vintages, World Bank annual indicators."""
