"""Nifty 500 factor-beta heatmap: store port and adapters, batch job, read service."""
