"""The paper's image design-space study (section 4.2, appendix E.2) on the embedded `digits` task.

    python -m countsbench.leaderboards.digits_study --results-dir /tmp/digits_study --out leaderboards/

Stage 1 (seed 0): CountsDiff on digits over schedule (``fi_discrete`` = Blackout's, ``fi``, ``cosine``)
x guidance (0, 0.5, 1, 2) x rescaled attrition eta (0, 0.005, 0.02, 0.05). Guidance and eta are
inference-only, so the runner's model cache trains ONE model per (schedule, seed) and samples it 16
times. Stage 2 (seeds 1 and 2): the main cells: each schedule's best stage-1 configuration by FID, the
Blackout configuration (``fi_discrete``, guidance 1 = the plain conditional rates, eta 0 = pure birth:
exactly the ``blackout`` method's sampler) and CountsDiff's default (cosine, guidance 1, eta 0.005).
Main cells are reported as mean ± standard error over seeds 0-2; they were chosen on seed 0, whose
values they include (a small selection bias toward the chosen cells). Stage 3 re-samples the same
models on other time grids (inference only): the main cells on a grid uniform in alpha
(``time_spacing=alpha``, every seed) and Blackout on its own 1000-step grid (first seed). Stage 4, the
steps sweep: Blackout's and CountsDiff's default configuration sampled with 20 / 50 / 200 / 1000 steps on
both grids, on the first seed (1000 steps cost 20 times 50; more steps must not make samples worse,
docs/diffusion.md). Last, the generation controls (``memorise``, ``independent_nb``) on every seed, so that
the page ends with the task's leaderboard (headline metrics, scaled score against the controls).

Cells run through the sweep driver on a pool of ``--workers`` processes (default 2; cells sharing a model
never run at once), finished cells are skipped (resume), and results are logged to MLflow under
``--results-dir``. While seed 0's grid is sampled, the other seeds' models train through one fixed cell
per schedule (Blackout's, (fi, 1, 0.005) and the default), so stage 2 only samples. ``--out`` receives
``digits.md``, ``digits_fid_vs_guidance.png``, ``digits_fid_vs_eta.png`` and ``digits_samples.png``; a
hand-written reading below `countsbench.leaderboards.export.NOTES_MARKER` in ``digits.md`` is kept on regeneration.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from countsbench.config import parse_assignments
from countsbench.executors import make_executor
from countsbench.executors.driver import SweepSettings, run_sweep
from countsbench.executors.planning import plan_cells
from countsbench.executors.progress import Progress
from countsbench.leaderboards.export import kept_notes, markdown_table
from countsbench.leaderboards.table import task_leaderboard
from countsbench.registry import REGISTRY
from countsbench.runner import CellRequest

TASK = "digits"
METHOD = "countsdiff"
SCHEDULES = ("fi_discrete", "fi", "cosine")
GUIDANCES = (0.0, 0.5, 1.0, 2.0)
ETAS = (0.0, 0.005, 0.02, 0.05)
METRICS = ("fid", "inception_score", "class_accuracy")
#: The generation controls that scale the leaderboard at the end of the page.
CONTROLS = ("memorise", "independent_nb")
BLACKOUT = ("fi_discrete", 1.0, 0.0)
DEFAULT = ("cosine", 1.0, 0.005)
Config = tuple[str, float, float]
#: Stage 3: (name, sampler settings, which seeds): the main cells on a grid uniform in alpha (every seed),
#: Blackout on its own K = 1000 grid (the first seed: 20 times the sampling cost).
SAMPLING_VARIANTS = (
    ("alpha", {"time_spacing": "alpha"}, lambda seeds: list(seeds)),
    ("own grid", {"n_steps": 1000}, lambda seeds: list(seeds[:1])),
)


#: Stage 4: the steps sweep (first seed, both grids) for these configurations.
STEPS = (20, 50, 200, 1000)
SPACINGS = ("time", "alpha")


def describe(settings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def overrides(config: Config, extra: dict) -> dict:
    schedule, guidance, eta = config
    return {"schedule": schedule, "guidance": guidance, "attrition": "rescaled", "eta": eta, **extra}


def request(config: Config, seed: int, extra: dict) -> CellRequest:
    return CellRequest(METHOD, TASK, seed, overrides=overrides(config, extra), device="cpu")


def run_cells(requests: list[CellRequest], results_dir: Path, workers: int) -> dict[tuple, dict]:
    """Run the cells through the sweep driver (a process pool; ``--resume``); results by (config, seed)."""
    cells = plan_cells(requests)
    settings = SweepSettings(results_dir=results_dir, resume=True)
    executor = make_executor("pool" if workers > 1 else "sequential", Path(results_dir) / "sweep", workers)
    report = run_sweep(cells, executor, settings, Progress(len(cells)))
    by_key = {}
    for cell in cells:
        config = cell.request.overrides
        result = report.results[cell.cell_id]
        by_key[(config["schedule"], config["guidance"], config["eta"]), cell.request.seed] = result
        print(f"{cell.label}: {result['status']} fid={result['metrics'].get('fid')}", flush=True)
    return by_key


def value(result: dict, metric: str) -> float:
    v = result["metrics"].get(metric) if result["status"] == "ok" else None
    return math.nan if v is None else float(v)


def main_configs(stage1: dict[Config, dict]) -> list[Config]:
    """Each schedule's best seed-0 configuration by FID, then Blackout's and CountsDiff's default."""
    chosen = []
    for schedule in SCHEDULES:
        cells = {c: value(r, "fid") for c, r in stage1.items() if c[0] == schedule}
        finite = {c: v for c, v in cells.items() if math.isfinite(v)}
        if finite:
            chosen.append(min(finite, key=finite.get))
    for config in (BLACKOUT, DEFAULT):
        if config not in chosen:
            chosen.append(config)
    return chosen


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return float(np.mean(values)), se


def label(config: Config) -> str:
    schedule, guidance, eta = config
    tag = " (Blackout)" if config == BLACKOUT else (" (CountsDiff default)" if config == DEFAULT else "")
    return f"{schedule}, w={guidance:g}, eta={eta:g}{tag}"


def grid_table(stage1: dict[Config, dict], metric: str) -> str:
    header = "| schedule | guidance w | " + " | ".join(f"eta={e:g}" for e in ETAS) + " |"
    lines = [header, "|---|---|" + "---|" * len(ETAS)]
    values = [value(r, metric) for r in stage1.values()]
    best = (np.nanmin if metric == "fid" else np.nanmax)(values) if values else math.nan
    for schedule, guidance in itertools.product(SCHEDULES, GUIDANCES):
        cells = []
        for eta in ETAS:
            v = value(stage1.get((schedule, guidance, eta), {"status": "missing"}), metric)
            cells.append(("**%.2f**" if v == best else "%.2f") % v if math.isfinite(v) else "-")
        lines.append(f"| {schedule} | {guidance:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main_table(rows: dict[str, list[dict]]) -> str:
    """One row per labelled configuration, mean ± s.e. over its seeds, best FID first."""
    header = "| configuration | seeds | FID ↓ | IS ↑ | class accuracy ↑ | sampling s |"
    lines = [header, "|---|---|---|---|---|---|"]
    order = sorted(rows, key=lambda name: mean_se([value(r, "fid") for r in rows[name]])[0])
    for name in order:
        results = rows[name]
        cells = []
        for metric in METRICS:
            m, se = mean_se([value(r, metric) for r in results])
            cells.append(f"{m:.3g} ± {se:.2g}" if math.isfinite(se) else f"{m:.3g}")
        sampling = np.mean([r["costs"].get("infer_s", math.nan) for r in results])
        seeds = ",".join(str(r["seed"]) for r in results if r["status"] == "ok")
        lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + f" | {sampling:.0f} |")
    return "\n".join(lines) + "\n"


def steps_table(sweep: dict[tuple[Config, str, int], list[dict]]) -> str:
    """FID (mean ± s.e. over seeds) per configuration and grid (rows) and number of steps (columns)."""
    header = "| configuration | grid | " + " | ".join(f"{n} steps" for n in STEPS) + " |"
    lines = [header, "|---|---|" + "---|" * len(STEPS)]
    for config, spacing in itertools.product((DEFAULT, BLACKOUT), SPACINGS):
        cells = []
        for n in STEPS:
            m, se = mean_se([value(r, "fid") for r in sweep.get((config, spacing, n), [])])
            cells.append(f"{m:.3g} ± {se:.2g}" if math.isfinite(se) else (f"{m:.3g}" if math.isfinite(m) else "-"))
        lines.append(f"| {label(config)} | {spacing} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def line_plots(stage1: dict[Config, dict], out: Path, floor: float) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for x_name, xs, line_name, lines in (("guidance", GUIDANCES, "eta", ETAS), ("eta", ETAS, "guidance", GUIDANCES)):
        figure, axes = plt.subplots(1, len(SCHEDULES), figsize=(13, 3.8), sharey=True)
        for ax, schedule in zip(axes, SCHEDULES, strict=True):
            for line in lines:
                configs = [(schedule, x, line) if x_name == "guidance" else (schedule, line, x) for x in xs]
                fids = [value(stage1.get(c, {"status": "missing"}), "fid") for c in configs]
                ax.plot(range(len(xs)), fids, marker="o", label=f"{line_name}={line:g}")
            ax.axhline(floor, color="grey", linestyle="--", linewidth=0.8, label="real vs real")
            ax.set_yscale("log")
            ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
            ax.set_xlabel(x_name + (" w" if x_name == "guidance" else " (rescaled attrition)"))
            ax.set_title(f"schedule {schedule}", fontsize=10)
        axes[0].set_ylabel("FID (digits CNN features, seed 0, log scale) ↓")
        axes[-1].legend(fontsize=8)
        figure.suptitle(f"digits: FID vs {x_name}", fontsize=11)
        figure.tight_layout()
        path = out / f"digits_fid_vs_{x_name}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    return paths


def sample_panel(results: dict[str, dict], results_dir: Path, out: Path) -> Path:
    """Generated samples (10 per class) of the named seed-0 cells, side by side."""
    from PIL import Image

    from countsbench.tasks.images.grid import save_sample_grid

    truth = REGISTRY.tasks.get(TASK).factory().load().test
    tiles = []
    for name, result in results.items():
        samples = np.load(Path(results_dir) / result["outputs"])["outputs"]
        path = save_sample_grid(truth, samples, out / f".{name}.png")
        with Image.open(path) as picture:
            tiles.append(picture.crop((0, 0, picture.width // 2 - 16, picture.height)).copy())
        path.unlink()
    from PIL import ImageDraw

    caption = 14
    panel = Image.new("L", (sum(t.width for t in tiles) + 16 * len(tiles), tiles[0].height + caption), 255)
    x = 0
    for name, tile in zip(results, tiles, strict=True):
        ImageDraw.Draw(panel).text((x + 2, 1), name, fill=0)
        panel.paste(tile, (x, caption))
        x += tile.width + 16
    path = out / "digits_samples.png"
    panel.save(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", type=Path, default=Path("countsbench-results"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="first: full grid; rest: main cells")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra CountsDiff settings")
    parser.add_argument("--workers", type=int, default=2, help="cells run at once (the sweep's process pool)")
    args = parser.parse_args(argv)
    REGISTRY.load_all()
    kept_notes(args.out / "digits.md")  # a page that would lose its notes fails now, not after the runs
    extra = parse_assignments(args.set)
    first, *others = args.seeds
    # Stage 1: the grid on the first seed, plus, on the other seeds, one fixed cell per schedule so that
    # every (schedule, seed) model trains while the grid is sampled (two workers).
    # Long trainings first, then the grid with schedules alternating (cells sharing a model run one at a time).
    grid = [(schedule, g, eta) for g, eta, schedule in itertools.product(GUIDANCES, ETAS, SCHEDULES)]
    fixed = [BLACKOUT, ("fi", 1.0, 0.005), DEFAULT]
    requests = [request(c, s, extra) for s in others for c in fixed] + [request(c, first, extra) for c in grid]
    done = run_cells(requests, args.results_dir, args.workers)
    stage1 = {c: done[c, first] for c in grid}
    # Stage 2: each schedule's best seed-0 configuration on the other seeds (models cached: sampling only).
    configs = main_configs(stage1)
    pool = (args.results_dir, args.workers)
    done.update(run_cells([request(c, s, extra) for s in others for c in configs], *pool))
    main = {c: [done[c, s] for s in args.seeds] for c in configs}
    # Stage 3: the sampling grid. With 50 steps uniform in time, the fi schedules (64% of whose change lies in
    # t in [0.45, 0.55], SPEC section 2) birth most pixels in a few steps; re-sample the main cells on a grid
    # uniform in alpha, and Blackout on its own 1000-step grid (first seed), with the same trained models.
    grids = {}
    for name, settings, seeds in SAMPLING_VARIANTS:
        chosen = configs if name == "alpha" else [BLACKOUT]
        cells = run_cells([request(c, s, {**extra, **settings}) for s in seeds(args.seeds) for c in chosen], *pool)
        grids.update({f"{label(c)}, {describe(settings)}": [cells[c, s] for s in seeds(args.seeds)] for c in chosen})
    # Stage 4: the steps sweep on the first seed (sampling only: the models are cached).
    sweep = {}
    for spacing, n in itertools.product(SPACINGS, STEPS):
        settings = {"n_steps": n, "time_spacing": spacing}
        chosen = (DEFAULT, BLACKOUT)
        cells = run_cells([request(c, first, {**extra, **settings}) for c in chosen], *pool)
        sweep.update({(c, spacing, n): [cells[c, first]] for c in chosen})
    # The controls: the leaderboard's scaled score needs its 0 and 1.
    plan = [CellRequest(control, TASK, s, device="cpu") for control in CONTROLS for s in args.seeds]
    run_sweep(
        plan_cells(plan),
        make_executor("sequential", Path(args.results_dir) / "sweep", 1),
        SweepSettings(results_dir=args.results_dir, resume=True),
        Progress(len(plan)),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m countsbench.leaderboards.digits_study " + " ".join(argv if argv is not None else sys.argv[1:])
    print(render(stage1, main, grids, sweep, args.results_dir, args.out, command.strip(), extra))
    return 0


def reference_fid(results_dir: Path) -> tuple[float, int]:
    """FID of as many training images as the test split holds (seeded, same classes) against the test
    split: the value a perfect sampler would score, since FID on a few hundred samples is biased."""
    from countsbench.evaluation import Evaluation, score

    data = REGISTRY.tasks.get(TASK).factory().load()
    rng = np.random.default_rng(0)
    rows = [
        rng.choice(np.flatnonzero(data.train.conditions["label"] == k), np.sum(data.test.conditions["label"] == k))
        for k in range(len(data.train.vocabularies["label"]))
    ]
    picked = data.train.dense()[np.concatenate(rows)]
    evaluation = Evaluation(
        "generation", data.test, picked, data.train, options=data.metric_options, cache_dir=Path(results_dir) / "cache"
    )
    return score(evaluation, ["fid"])["fid"], len(picked)


def markdown_table_text(board, metrics) -> str:
    """One pipe table of ``metrics`` plus the leaderboard's notes (`countsbench.leaderboards.export.markdown_table`)."""
    lines = markdown_table(board, metrics)
    lines += ["", *(f"- {note}" for note in board.notes())] if board.notes() else []
    return "\n".join(lines) + "\n"


def render(stage1, main, grids, sweep, results_dir: Path, out: Path, command: str, extra: dict) -> Path:
    best = min(main, key=lambda c: mean_se([value(r, "fid") for r in main[c]])[0])
    panel = {f"Blackout: {label(BLACKOUT)}": stage1[BLACKOUT], f"best: {label(best)}": stage1[best]}
    sample_panel(panel, results_dir, out)
    example = next(iter(stage1.values()))
    text = "# Design-space study: CountsDiff on digits\n\n"
    text += f"Produced by `{command}` (quick profile, CPU).\n\n"
    floor, n_real = reference_fid(results_dir)
    line_plots(stage1, out, floor)
    text += "## Main cells (mean ± s.e. over seeds)\n\n" + main_table({label(c): rs for c, rs in main.items()})
    text += (
        f"\nReference: {n_real} real training images (the test split's class counts) score FID {floor:.1f} "
        "against the test split: the floor a perfect sampler would reach with this many samples.\n"
    )
    text += "\n## The sampling grid (same models, other time grids)\n\n" + main_table(grids)
    text += "\n## FID against the number of sampling steps (same models, first seed)\n\n"
    text += steps_table(sweep)
    for metric in METRICS:
        text += f"\n## Seed 0 grid: {metric}\n\n" + grid_table(stage1, metric)
    text += "\n![FID vs guidance](digits_fid_vs_guidance.png)\n\n![FID vs eta](digits_fid_vs_eta.png)\n"
    text += f"\n![samples, one row per class: Blackout (left) and {label(best)} (right), seed 0](digits_samples.png)\n"
    board = task_leaderboard(TASK, results_dir)
    text += "\n## The task's leaderboard (every cell above, and the controls)\n\n"
    text += markdown_table_text(board, board.headline_metrics)
    text += "\n## Settings\n\n```json\n" + json.dumps({**example["config"], **extra}, indent=1, sort_keys=True)
    text += "\n```\n"
    path = out / "digits.md"
    path.write_text(text + kept_notes(path))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
