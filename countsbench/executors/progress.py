"""The sweep's progress line: done / running / failed / remaining, elapsed time and an estimate.

On a terminal the line is redrawn in place; otherwise a line is printed whenever a cell finishes
(so logs of a batch job show the history). The estimate is the cells still to finish (running and
remaining) times this session's wall time per finished cell, which already reflects the parallelism.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, already_done: int = 0, already_failed: int = 0):
        self.total = total
        self.stream = stream or sys.stderr
        self.done, self.failed, self.running = already_done, already_failed, 0
        self.finished_here = 0
        self.started = time.monotonic()
        self.live = self.stream.isatty()
        self._last = ""

    @property
    def remaining(self) -> int:
        return self.total - self.done - self.failed - self.running

    def eta(self) -> float | None:
        if not self.finished_here:
            return None
        return (time.monotonic() - self.started) / self.finished_here * (self.running + self.remaining)

    def line(self) -> str:
        eta = self.eta()
        return (
            f"sweep: {self.done}/{self.total} done, {self.running} running, {self.failed} failed, "
            f"{self.remaining} remaining | elapsed {format_duration(time.monotonic() - self.started)}"
            f" | ETA {'?' if eta is None else format_duration(eta)}"
        )

    def update(self) -> None:
        line = self.line()
        counts = f"{self.done}/{self.failed}"
        if self.live:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
        elif counts != self._last:
            print(line, file=self.stream, flush=True)
        self._last = counts

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
