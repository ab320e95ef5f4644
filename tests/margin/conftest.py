"""Fixtures of the margin tests (shared with tests/auth through tests.margin.support)."""

from tests.margin.support import admin_headers, api, fast_hashing, margin_settings, probe

__all__ = ["admin_headers", "api", "fast_hashing", "margin_settings", "probe"]
