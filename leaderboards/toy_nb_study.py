"""The simulated-counts study (paper section 4.1): run the toy_nb grid, then render its snapshot.

    python -m countsbench.leaderboards.toy_nb_study    # 5 methods and 2 controls x seeds 0 1 2, quick profile
    python -m countsbench.leaderboards.toy_nb_study --seeds 0 --methods countsdiff mdlm --set countsdiff:steps=8000

Cells run one after another through `run_cell` (``--resume``: finished cells are skipped), are logged to
MLflow under ``--results-dir``, and the snapshot is written to ``--out``: ``toy_nb.md`` (the leaderboard
tables of `countsbench.leaderboards.export.markdown`, headline metrics then all, and a per-dimension variance table
against the true variances),
``toy_nb_variances.png`` (per-dimension variances of every method beside the truth) and
``toy_nb_kde.png`` (KDEs of dimensions 0 and 1 for each method's first seed against the truth). A reading
written below `countsbench.leaderboards.export.NOTES_MARKER` in ``toy_nb.md`` is kept on regeneration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from countsbench.config import parse_assignments
from countsbench.leaderboards.export import kept_notes, markdown
from countsbench.leaderboards.table import Leaderboard, build_leaderboard
from countsbench.registry import REGISTRY
from countsbench.runner import CellRequest, run_cell
from countsbench.tasks.toy import (
    COMPARISON_ROWS,
    FEATURE_NAMES,
    TOY_HEADLINE,
    TOY_METRICS,
    ToyNegativeBinomialTask,
    true_variances,
)

TASK = "toy_nb"
#: The controls (memorise, independent_nb) give the leaderboard's scaled score its 0 and 1.
METHODS = ("countsdiff", "blackout", "gaussian_ddpm", "mdlm", "remdm", "memorise", "independent_nb")
#: The paper's Table 4 (variances per dimension), for comparison in the snapshot.
PAPER_VARIANCES = {
    "CountsDiff (paper)": (0.55, 1.99, 0.07, 0.08, 0.21, 1.10, 0.44, 4.50, 0.46, 0.96),
    "Gaussian (paper)": (0.19, 0.46, 0.01, 0.02, 0.05, 0.24, 0.24, 1.04, 0.17, 0.22),
    "Masked (paper)": (3.06, 9.22, 1.89, 2.49, 7.27, 4.78, 5.19, 19.83, 11.63, 4.09),
}


def method_overrides(assignments: Sequence[str], methods: Sequence[str]) -> dict[str, dict[str, str]]:
    """``METHOD:key=value`` pairs -> {method: {key: value}}."""
    overrides: dict[str, dict[str, str]] = {m: {} for m in methods}
    for item in assignments:
        method, _, pair = item.partition(":")
        if method not in overrides or not pair:
            raise SystemExit(f"--set takes METHOD:key=value with METHOD among {', '.join(methods)}; got {item!r}")
        overrides[method].update(parse_assignments([pair]))
    return overrides


def run_grid(methods: Sequence[str], seeds: Sequence[int], overrides: dict, results_dir: Path) -> list[dict]:
    results = []
    for method in methods:
        for seed in seeds:
            request = CellRequest(method, TASK, seed, overrides=overrides[method], device="cpu")
            result = run_cell(request, results_dir, resume=True, log=lambda message: print(message, file=sys.stderr))
            print(f"{result['variant']} seed {seed}: {result['status']} ({result['costs']['duration_s']:.0f} s)")
            results.append(result)
    return results


def generated_variances(board: Leaderboard) -> dict[str, np.ndarray]:
    """Per row: mean over seeds of the generated variance (variance ratio x true variance) per dimension."""
    truth = true_variances()
    variances = {}
    for row in board.sorted_rows():
        ratios = [row.mean_se(f"variance_ratio/{name}")[0] for name in FEATURE_NAMES]
        variances[row.variant] = np.asarray(ratios) * truth
    return variances


def variance_table(variances: dict[str, np.ndarray]) -> str:
    header = "| | " + " | ".join(FEATURE_NAMES) + " | dims within [0.9, 1.1] x true |"
    lines = [header, "|" + "---|" * (len(FEATURE_NAMES) + 2)]
    truth = true_variances()
    rows = {"true (2M draws)": truth, **variances, **{k: np.asarray(v) for k, v in PAPER_VARIANCES.items()}}
    for label, values in rows.items():
        ratio = values / truth
        in_band = int(np.sum((ratio >= 0.9) & (ratio <= 1.1)))
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {in_band} |")
    return "\n".join(lines) + "\n"


def variance_plot(variances: dict[str, np.ndarray], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = {"true": true_variances(), **variances}
    width = 0.8 / len(bars)
    figure, ax = plt.subplots(figsize=(11, 3.8))
    for i, (label, values) in enumerate(bars.items()):
        offsets = np.arange(len(FEATURE_NAMES)) + (i - len(bars) / 2 + 0.5) * width
        ax.bar(offsets, values, width, label=label, color="black" if label == "true" else None)
    ax.set_yscale("log")
    ax.set_xticks(range(len(FEATURE_NAMES)), FEATURE_NAMES)
    ax.set_ylabel("variance (log scale)")
    ax.set_title("toy_nb: per-dimension variance of 20,000 generated samples (mean over seeds) vs the true variance")
    ax.legend(fontsize=8, ncols=3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def kde_grid(results: list[dict], results_dir: Path, path: Path) -> Path:
    """KDE rows for the first seed of each method (its saved samples), against the test comparison rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from countsbench.tasks.toy_plots import draw_kde

    truth = ToyNegativeBinomialTask().load().test.dense()[:COMPARISON_ROWS]
    firsts = {}
    for result in results:
        if result["status"] == "ok":
            firsts.setdefault(result["variant"], result)
    figure, axes = plt.subplots(len(firsts), 3, figsize=(12, 3.2 * len(firsts)), squeeze=False)
    for ax_row, (variant, result) in zip(axes, firsts.items(), strict=True):
        samples = np.load(Path(results_dir) / result["outputs"])["outputs"][:COMPARISON_ROWS]
        draw_kde(ax_row, truth, samples, label=f"{variant} (seed {result['seed']})")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def render(results: list[dict], results_dir: Path, out: Path, command: str) -> Path:
    board = build_leaderboard(TASK, results_dir, TOY_METRICS, TOY_HEADLINE)
    variances = generated_variances(board)
    out.mkdir(parents=True, exist_ok=True)
    variance_plot(variances, out / "toy_nb_variances.png")
    kde_grid(results, results_dir, out / "toy_nb_kde.png")
    configs = {r["variant"]: r["config"] for r in results if r["status"] == "ok"}
    text = markdown(board)
    text += "\n## Per-dimension variances (20,000 generated samples, mean over seeds)\n\n" + variance_table(variances)
    text += "\n![variances](toy_nb_variances.png)\n\n![KDE of dimensions 0 and 1](toy_nb_kde.png)\n"
    text += f"\nProduced by `{command}` (quick profile, CPU).\n\nResolved configurations:\n\n```json\n"
    text += json.dumps(configs, indent=1, sort_keys=True) + "\n```\n"
    path = out / "toy_nb.md"
    path.write_text(text + kept_notes(path))  # the hand-written reading below the marker survives
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="METHOD:KEY=VALUE")
    parser.add_argument("--results-dir", type=Path, default=Path("countsbench-results"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args(argv)
    REGISTRY.load_all()
    for method in args.methods:
        REGISTRY.check_supports(method, TASK)
    kept_notes(args.out / "toy_nb.md")  # a page that would lose its notes fails now, not after the runs
    results = run_grid(args.methods, args.seeds, method_overrides(args.set, args.methods), args.results_dir)
    command = "python -m countsbench.leaderboards.toy_nb_study " + " ".join(argv if argv is not None else sys.argv[1:])
    print(render(results, args.results_dir, args.out, command.strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
