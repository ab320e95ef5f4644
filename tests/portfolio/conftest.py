"""Fixtures of the portfolio tests: the margin API's app, first admin and fast hashing."""

from tests.margin.support import admin_headers, api, fast_hashing, margin_settings

__all__ = ["admin_headers", "api", "fast_hashing", "margin_settings"]
