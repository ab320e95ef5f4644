"""Helpers shared by test modules."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with ``reason`` on a laptop; fail on CI (``CI=true``), where nothing may be missing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required on CI: {reason}", pytrace=False)
    pytest.skip(reason)
