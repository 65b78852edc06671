"""This process' resident memory: current, peak, and a reset of the peak, so that a cell run after
others in one process (the sequential executor) reports its own peak, not the process' high-water mark.

Linux keeps the peak as ``VmHWM`` in /proc/self/status, and writing ``5`` to /proc/self/clear_refs
(Linux >= 4.0) resets it to the current RSS. Elsewhere the peak is ``ru_maxrss``, which cannot be reset:
`reset_peak_rss` then returns False and the peak is the process' so far.
"""

from __future__ import annotations

import resource
from pathlib import Path


def reset_peak_rss() -> bool:
    """Reset this process' peak RSS to its current RSS; False where the system cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mb(field: str = "VmHWM") -> float:
    """``VmHWM`` (peak since the last reset) or ``VmRSS`` (current) of this process in MB, else the
    process' ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
