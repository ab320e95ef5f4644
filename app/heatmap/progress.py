"""Progress reporting of a precompute run: a tqdm bar, log lines, or nothing."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.heatmap.runs import WindowOutcome

logger = logging.getLogger("app.heatmap.job")


class ProgressReporter(Protocol):
    """Receives progress of a run (a tqdm bar, log lines, or a test probe)."""

    def start(self, window: int, mode: str, *, total: int, done: int) -> None:
        """A (window, mode) begins; ``done`` tickers are already done (resume)."""
        ...

    def advance(self, n: int) -> None:
        """``n`` more tickers were processed."""
        ...

    def finish(self, outcome: WindowOutcome) -> None:
        """The (window, mode) ended."""
        ...


class NullProgress:
    """Reports nothing."""

    def start(self, window: int, mode: str, *, total: int, done: int) -> None:
        """Ignore."""

    def advance(self, n: int) -> None:
        """Ignore."""

    def finish(self, outcome: WindowOutcome) -> None:
        """Ignore."""


class LogProgress:
    """Plain log lines (for logs and non-TTY output): one at start, every chunk, one at end."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logger
        self._label = ""
        self._total = 0
        self._done = 0

    def start(self, window: int, mode: str, *, total: int, done: int) -> None:
        """Log the start."""
        self._label, self._total, self._done = f"window={window} mode={mode}", total, done
        resumed = f" (resuming, {done} already done)" if done else ""
        self.log.info("heatmap %s: %d tickers%s", self._label, total, resumed)

    def advance(self, n: int) -> None:
        """Log the progress."""
        self._done += n
        pct = 100.0 * self._done / self._total if self._total else 100.0
        self.log.info("heatmap %s: %d/%d (%.0f%%)", self._label, self._done, self._total, pct)

    def finish(self, outcome: WindowOutcome) -> None:
        """Log the outcome."""
        self.log.info("heatmap %s: %s", self._label, outcome.summary())


class TqdmProgress:
    """A tqdm progress bar per (window, mode), on stderr."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, window: int, mode: str, *, total: int, done: int) -> None:
        """Open a bar."""
        from tqdm import tqdm

        self._bar = tqdm(
            total=total, initial=done, desc=f"{window}d {mode}", unit="ticker", leave=True
        )

    def advance(self, n: int) -> None:
        """Move the bar."""
        if self._bar is not None:
            self._bar.update(n)

    def finish(self, outcome: WindowOutcome) -> None:
        """Close the bar with the outcome."""
        if self._bar is not None:
            self._bar.set_postfix_str(outcome.state)
            self._bar.close()
            self._bar = None
