"""Progress outside a terminal: a start line, a line at most every interval with an ETA, an end line."""

from __future__ import annotations

import io
import re

from countsbench.context import RunContext
from countsbench.progress import TextProgress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_text_progress_reports_start_eta_and_end():
    stream, clock = io.StringIO(), Clock()
    with TextProgress(total=100, desc="train countsdiff", stream=stream, interval=30, clock=clock) as bar:
        for step in range(100):
            clock.now = step + 1.0  # one second per step
            bar.update(1)
            if step == 49:
                bar.set_postfix(loss="0.61")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "train countsdiff: started (100 steps)"
    # a line every 30 s: at 30, 60 and 90 steps, with the ETA of the remaining steps at that pace
    assert lines[1] == "train countsdiff: 30% (30/100), 30s elapsed, ETA 1m10s"
    assert lines[2] == "train countsdiff: 60% (60/100), 1m00s elapsed, ETA 40s, loss=0.61"
    assert lines[3].startswith("train countsdiff: 90% (90/100)")
    assert lines[-1] == "train countsdiff: 100% (100/100), 1m40s elapsed, loss=0.61"
    assert len(lines) == 5


def test_text_progress_over_an_iterable_and_durations():
    stream = io.StringIO()
    assert list(TextProgress(range(3), desc="impute", stream=stream)) == [0, 1, 2]
    assert stream.getvalue().splitlines() == ["impute: started (3 steps)", "impute: 100% (3/3), 0s elapsed"]
    assert (duration(59), duration(61), duration(3700)) == ("59s", "1m01s", "1h01m")


def test_a_run_context_reports_in_plain_text_when_stderr_is_not_a_terminal(capsys):
    with RunContext().progress(total=2, desc="sample") as bar:
        bar.update(2)
    err = capsys.readouterr().err.splitlines()
    assert err == ["sample: started (2 steps)", "sample: 100% (2/2), 0s elapsed"]
    with RunContext(show_progress=False).progress(total=2, desc="quiet") as bar:
        bar.update(2)
    assert capsys.readouterr().err == ""


def test_fit_on_a_pipe_prints_a_start_line_then_progress_with_an_eta(tmp_path, monkeypatch, capsys, one_thread):
    """`countsbench fit` outside a terminal (capsys is not a tty): the data shape, steps and device first,
    then training progress with steps done/total, elapsed time and an ETA."""
    import anndata
    import numpy as np
    import scipy.sparse as sp

    from countsbench import progress
    from countsbench.cli import main

    monkeypatch.setattr(progress, "TEXT_INTERVAL_S", 0.0)  # a line per step instead of every 30 s
    counts = np.random.default_rng(0).poisson(2.0, (30, 6))
    anndata.AnnData(X=sp.csr_matrix(counts)).write_h5ad(tmp_path / "mine.h5ad")
    tiny = ["--set", "steps=4", "--set", "dim=8", "--set", "n_layers=1", "--set", "n_heads=2"]
    argv = ["fit", "--input", str(tmp_path / "mine.h5ad"), "--output", str(tmp_path / "m"), "--device", "cpu"]
    assert main([*argv, *tiny]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "countsbench: fitting countsdiff (quick profile, 4 training steps) on all 30 cells x 6 genes, "
        "conditions: none, device cpu"
    )
    started = next(i for i, line in enumerate(err) if line.endswith(": started (4 steps)"))
    assert started > 0
    assert any(re.search(r": 50% \(2/4\), \d+s elapsed, ETA \d+s", line) for line in err[started:])
