"""Where the tests find the real NSE data, and the ``full_data`` marker (a pytest plugin).

The data folder is, in this order:

1. ``$SHARED_DATA_DIR`` when set;
2. the committed subset ``tests/data/shared_subset`` when ``TEST_DATA=subset`` (GitHub's CI);
3. ``<repo>/../shared/data`` (the full raw data, about 70 MB) when it exists;
4. the committed subset otherwise.

The subset (``scripts/build_test_data.py``) holds exactly the rows the tests read, under the
same relative paths, so most real-data tests run on either. A test that needs the whole raw data
carries ``@pytest.mark.full_data``: on a subset that was asked for (``TEST_DATA=subset``, or
``$SHARED_DATA_DIR`` pointing at one) it is skipped with the reason, which ``pytest -ra`` prints;
on the subset fallen back to because ``../shared/data`` is missing it skips on a laptop but
fails under ``CI=true`` (``skip_or_fail``), so a CI that should have the full data cannot pass
without it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support import skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[1]
SUBSET_DIR = REPO_ROOT / "tests" / "data" / "shared_subset"
FULL_DIR = REPO_ROOT.parent / "shared" / "data"
SUBSET_KIND = "shared-data-subset"


def subset_requested() -> bool:
    """True when ``TEST_DATA=subset`` asks for the committed subset."""
    return os.environ.get("TEST_DATA", "").strip().lower() == "subset"


def subset_chosen() -> bool:
    """True when the subset was asked for (``TEST_DATA=subset`` or ``$SHARED_DATA_DIR``), not
    fallen back to because ``../shared/data`` is missing."""
    return subset_requested() or bool(os.environ.get("SHARED_DATA_DIR"))


def resolve_shared_data_dir() -> Path:
    """The folder the real-data tests read (see the module docstring for the order)."""
    env = os.environ.get("SHARED_DATA_DIR")
    if env:
        return Path(env)
    if subset_requested():
        return SUBSET_DIR
    if FULL_DIR.is_dir():
        return FULL_DIR
    return SUBSET_DIR


def is_subset(path: Path) -> bool:
    """True when ``path`` is a subset built by ``scripts/build_test_data.py``."""
    manifest = path / "manifest.json"
    if not manifest.is_file():
        return False
    return bool(json.loads(manifest.read_text()).get("kind") == SUBSET_KIND)


SHARED_DATA_DIR = resolve_shared_data_dir()


def full_data_reason(path: Path = SHARED_DATA_DIR) -> str | None:
    """Why a ``full_data`` test cannot run on ``path`` (None when it can)."""
    if not path.is_dir():
        return f"needs the full shared data: {path} does not exist (set SHARED_DATA_DIR)"
    if is_subset(path):
        return (
            f"needs the full shared data (../shared/data or SHARED_DATA_DIR); {path} is the "
            "committed subset (scripts/build_test_data.py)"
        )
    return None


def pytest_report_header(config: pytest.Config) -> str:
    kind = "committed subset" if is_subset(SHARED_DATA_DIR) else "full"
    return f"shared data: {SHARED_DATA_DIR} ({kind})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a subset asked for, a full_data test is skipped, named with its reason by -ra."""
    reason = full_data_reason()
    if reason is None or not subset_chosen():
        return
    for item in items:
        if item.get_closest_marker("full_data") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """On a subset fallen back to, a full_data test skips on a laptop and fails on CI."""
    if item.get_closest_marker("full_data") is None:
        return
    reason = full_data_reason()
    if reason is not None:
        skip_or_fail(reason)
