"""Progress of a long command: a bar in a terminal, a plain line every few seconds in a log.

A bar redraws itself in place, which suits a terminal; written to a file or a pipe (CI, a
service's log) every redraw becomes a line of its own. So `ProgressReport` draws a tqdm bar
only when its stream is a terminal, and otherwise prints "name: done/total unit (pct%)" at most
every LOG_INTERVAL_S seconds, plus a last line when the work ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

ProgressCallback = Callable[[int, int], None]
"""How long work reports its progress: (items done, items in all) after some items."""

LOG_INTERVAL_S = 5.0
"""Outside a terminal, at most one progress line per this many seconds."""


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ProgressReport:
    """A progress display for one piece of work; call it with (done, total), then `close()`.

    Use it as a context manager. `total` may be 0 or None while it is not known yet.
    """

    def __init__(
        self,
        name: str,
        unit: str = "item",
        stream: IO[str] | None = None,
        interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.unit, self.interval_s, self.clock = name, unit, interval_s, clock
        self.stream = stream if stream is not None else sys.stderr
        self.done, self.total = 0, 0
        self._written: tuple[int, int] | None = None
        self._last = -float("inf")
        self._bar: Any = None
        if _is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(desc=name, unit=unit, file=self.stream, dynamic_ncols=True)

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done, self.total = done, total or 0
        if self._bar is not None:
            if self.total and self._bar.total != self.total:
                self._bar.total = self.total
            self._bar.n = done
            self._bar.refresh()
            return
        now = self.clock()
        if now - self._last >= self.interval_s:
            self._last = now
            self._write()

    def line(self) -> str:
        """The progress as one line of text."""
        if self.total:
            share = min(100.0, 100.0 * self.done / self.total)
            return f"{self.name}: {self.done}/{self.total} {self.unit}s ({share:.0f}%)"
        return f"{self.name}: {self.done} {self.unit}s"

    def _write(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._written = (self.done, self.total)

    def close(self) -> None:
        """End the display: close the bar, or write the last line if it is not written yet."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._written != (self.done, self.total) and (self.done or self._written):
            self._write()

    def __enter__(self) -> ProgressReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
