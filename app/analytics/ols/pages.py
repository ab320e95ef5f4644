"""Allocate the rolling OLS's large arrays without transparent-huge-page advice.

NumPy advises the kernel to back every large allocation with 2 MB pages
(``madvise(MADV_HUGEPAGE)``). Where the kernel compacts memory synchronously for such regions
(``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, the default), first touching
fresh memory costs several times more than with 4 KB pages: on the benchmark machine 0.29 s
against 0.05 s for 120 MB, and a full rolling fit writes about 0.6 GB of fresh output.
:func:`plain_pages` turns the advice off for the duration of a call and restores it after.

Code under it should reuse its large work arrays: a temporary of tens of MB allocated and
freed again and again is a fresh mapping each time, faulted anew page by page (huge pages
come back cheaply there).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

try:  # private NumPy switch (documented in numpy._core._add_newdocs); absent: a no-op
    from numpy._core.multiarray import _set_madvise_hugepage  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other NumPy layouts
    _set_madvise_hugepage = None

__all__ = ["plain_pages"]

_LOCK = threading.Lock()
_depth = 0
_saved = True


@contextmanager
def plain_pages() -> Iterator[None]:
    """Within the block NumPy allocates without huge-page advice (nested and thread-safe).

    The switch is process-wide: the first block to enter turns the advice off, the last to
    leave restores the previous setting. It changes only how fast fresh memory is first
    touched, never a value.
    """
    global _depth, _saved
    if _set_madvise_hugepage is None:  # pragma: no cover - other NumPy layouts
        yield
        return
    with _LOCK:
        if _depth == 0:
            _saved = bool(_set_madvise_hugepage(False))
        _depth += 1
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            if _depth == 0:
                _set_madvise_hugepage(_saved)
