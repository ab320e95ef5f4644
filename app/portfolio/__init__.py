"""Portfolio factor risk and stress tests on posted portfolios and on the margin book."""
