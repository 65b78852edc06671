"""Progress reporting for long steps: a tqdm bar on a terminal, plain lines with an ETA elsewhere.

A log file or a pipe gets a line when the step starts, then at most one line every ``interval`` seconds
(``desc: 40% (600/1500), 1m12s elapsed, ETA 1m48s, loss=0.61``), and one when it ends, so a job
that runs for an hour never looks stuck.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

#: Seconds between two plain-text progress lines.
TEXT_INTERVAL_S = 30.0


def duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3700`` -> ``1h01m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


class TextProgress:
    """The part of tqdm's interface that countsbench uses, writing plain lines to ``stream``."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        total: int | None = None,
        desc: str = "",
        stream: IO[str] | None = None,
        interval: float | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.iterable, self.desc, self.stream, self.clock = iterable, desc, stream, clock
        self.interval = TEXT_INTERVAL_S if interval is None else interval  # read now: a test may change it
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.n, self.postfix = total, 0, ""
        self.started = self.last = clock()
        self.closed = False
        self._write(f"{desc}: started" + (f" ({total} steps)" if total else ""))

    def _write(self, text: str) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        print(text, file=stream, flush=True)

    def line(self) -> str:
        elapsed = self.clock() - self.started
        parts = [f"{self.desc}: "]
        if self.total:
            parts.append(f"{100 * self.n / self.total:.0f}% ({self.n}/{self.total}), {duration(elapsed)} elapsed")
            if 0 < self.n < self.total:
                parts.append(f", ETA {duration(elapsed * (self.total - self.n) / self.n)}")
        else:
            parts.append(f"{self.n} done, {duration(elapsed)} elapsed")
        if self.postfix:
            parts.append(f", {self.postfix}")
        return "".join(parts)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.interval and (self.total is None or self.n < self.total):
            self.last = now
            self._write(self.line())

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._write(self.line().replace(": ", ": done, ", 1) if self.total is None else self.line())

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> TextProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(
    iterable: Iterable | None = None, total: int | None = None, desc: str = "", enabled: bool = True
) -> Iterator | TextProgress:
    """A tqdm bar when stderr is a terminal, `TextProgress` lines otherwise; silent when not ``enabled``."""
    from tqdm.auto import tqdm

    if enabled and not sys.stderr.isatty():
        return TextProgress(iterable, total, desc)
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)
