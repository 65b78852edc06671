"""Per-task leaderboard: rows are (method, variant), columns are metrics as mean ± standard error
over seeds, plus bootstrap standard errors, direction, best marks, scaled score, failures and costs.

Runs are read from MLflow. A cell (same method, task, seed and config) may have been run more than
once; its latest successful run counts (a later failed rerun never hides it: the board's notes name
it), else its latest run. A seed whose runs all failed is counted as failed, not averaged;
a seed that other rows of the task ran but this row did not is counted as missing. Rows are never
averaged across configs: each variant is its own row (DESIGN.md). Runs that are not cells (a
sweep's parent run, the experiment's ``leaderboard`` run) carry no ``cell_id`` tag and are skipped.

Uncertainty: "± s.e." is the standard error of the mean over seeds (std with ddof=1 / sqrt(n));
"bs" is the bootstrap standard error over test cells (SPEC section 8) where the metric logs one as
``<metric>/bootstrap_se``, as the root mean square over seeds. The per-replicate values behind it
(the run's ``bootstrap_replicates.json`` artifact) feed the paired test of the best marks.
Ranking, best marks and scaling all use a row's mean *badness* over its seeds (for a "target"
metric, the mean distance to the target). Best marks: `countsbench.leaderboards.significance`. Scaled score:
`countsbench.leaderboards.scaling`. `Leaderboard.notes` says where a rule could not be applied in full, and names
the rows of role ``external`` (files made by other tools, `countsbench.external`): ranked and marked
like any method, never a control of the scaled score, without costs.

Columns: a board holds every metric its runs logged; ``headline`` lists the task's headline metrics
(`Task.headline_metrics`), the columns shown by default. `Leaderboard.columns` turns a choice
(``"headline"``, ``"all"`` or a list of names) into the metrics to show; the scaled score is always
over all of them, whichever are shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from countsbench.config import ConfigError
from countsbench.directions import arrow, badness
from countsbench.evaluation import REPLICATES_ARTIFACT, BootstrapReplicates
from countsbench.leaderboards.scaling import Signal, Summary, agree, scale, signal_of, summary
from countsbench.leaderboards.significance import Verdict, compare
from countsbench.registry import EXTERNAL_ROLE
from countsbench.tracking import DIRECTION_TAG, TAG_PREFIX, Tracker

BOOTSTRAP_SUFFIX = "/bootstrap_se"
#: Cost columns: (logged metric, column label). Train time excludes runs that reused a cached model.
COSTS = (("fit_s", "train s"), ("infer_s", "sampling s"), ("peak_memory_mb", "peak MB"), ("n_parameters", "params"))
NOT_METRICS = {"duration_s", "eval_s"} | {name for name, _ in COSTS}


@dataclass
class Row:
    method: str
    variant: str
    role: str
    values: dict[str, dict[int, float]] = field(default_factory=dict)  # metric -> seed -> value
    seeds_ok: set[int] = field(default_factory=set)
    seeds_failed: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    replicates: dict[int, BootstrapReplicates] = field(default_factory=dict)  # seed -> bootstrap replicates
    #: seed -> error of a rerun that failed AFTER the success counted for that seed
    later_failures: dict[int, str] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return sorted(self.seeds_ok)

    @property
    def failed(self) -> int:
        return len(self.seeds_failed)

    def per_seed(self, metric: str) -> dict[int, float]:
        return {s: v for s, v in self.values.get(metric, {}).items() if v is not None and math.isfinite(v)}

    def mean_se(self, metric: str) -> tuple[float, float]:
        values = list(self.per_seed(metric).values())
        if not values:
            return math.nan, math.nan
        mean = float(np.mean(values))
        se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
        return mean, se

    def bootstrap_se(self, metric: str) -> float:
        values = list(self.per_seed(metric + BOOTSTRAP_SUFFIX).values())
        return float(np.sqrt(np.mean(np.square(values)))) if values else math.nan

    def badness(self, metric: str, direction: str) -> np.ndarray:
        """Per-seed badness (seeds in order); empty where the direction has none (target at the truth)."""
        values = [badness(v, direction) for _, v in sorted(self.per_seed(metric).items())]
        return np.array([b for b in values if math.isfinite(b)])

    def mean_badness(self, metric: str, direction: str) -> float:
        values = self.badness(metric, direction)
        return float(np.mean(values)) if values.size else math.nan

    def replicate_badness(self, metric: str, direction: str) -> tuple[np.ndarray, BootstrapReplicates] | None:
        """Per bootstrap replicate, the mean over seeds of its badness (the first replicates that every
        seed has), with the seeds' resampling; None unless every seed with a value has paired replicates."""
        seeds = sorted(self.per_seed(metric))
        found = [self.replicates.get(s) for s in seeds]
        if not seeds or any(r is None or metric not in r.values for r in found):
            return None
        if any(not r.pairs_with(found[0]) for r in found):
            return None
        n = min(len(r.values[metric]) for r in found)
        matrix = np.array([[math.nan if v is None else v for v in r.values[metric][:n]] for r in found])
        return np.mean(badness(matrix, direction), axis=0), found[0]


@dataclass
class Leaderboard:
    task: str
    metrics: list[str]
    directions: dict[str, str]
    rows: list[Row]
    #: How each metric enters the scaled score (`countsbench.leaderboards.scaling.signal_of`); absent = a signal.
    signals: dict[str, Signal] = field(default_factory=dict)
    #: The task's headline metrics (the default columns), in order.
    headline: list[str] = field(default_factory=list)

    @property
    def seeds(self) -> set[int]:
        return set().union(*(r.seeds_ok | r.seeds_failed for r in self.rows)) if self.rows else set()

    @property
    def headline_metrics(self) -> list[str]:
        """The headline metrics that have values here, or every metric when none has."""
        return [m for m in self.headline if m in self.metrics] or list(self.metrics)

    def columns(self, choice: str | Sequence[str] = "headline") -> list[str]:
        """The metrics to show: ``"headline"``, ``"all"`` or the names given (unknown names fail)."""
        if choice == "headline":
            return self.headline_metrics
        if choice == "all":
            return list(self.metrics)
        names = [choice] if isinstance(choice, str) else list(choice)
        unknown = [m for m in names if m not in self.metrics]
        if unknown or not names:
            raise ConfigError(
                f"no values of {', '.join(unknown) or 'any metric'} on {self.task}; "
                f"its metrics: {', '.join(self.metrics) or 'none'}"
            )
        return list(dict.fromkeys(names))

    def missing(self, row: Row) -> int:
        return len(self.seeds - row.seeds_ok - row.seeds_failed)

    def direction(self, metric: str) -> str:
        return self.directions.get(metric, "minimize")

    def ranked(self, metric: str) -> list[Row]:
        """Rows with a value for ``metric``, best (smallest mean badness) first."""
        scored = [(r.mean_badness(metric, self.direction(metric)), r) for r in self.rows]
        return [r for b, r in sorted(scored, key=lambda pair: pair[0]) if math.isfinite(b)]

    def verdict(self, metric: str) -> tuple[Row, Row, Verdict] | None:
        """The leader, the runner-up and the tests between them (`countsbench.leaderboards.significance`)."""
        ranked = self.ranked(metric)
        if len(ranked) < 2:
            return None
        first, second = ranked[:2]
        direction = self.direction(metric)
        mine, theirs = first.replicate_badness(metric, direction), second.replicate_badness(metric, direction)
        paired = None
        if mine is not None and theirs is not None and mine[1].pairs_with(theirs[1]):
            n = min(len(mine[0]), len(theirs[0]))
            paired = (mine[0][:n], theirs[0][:n])
        verdict = compare(first.badness(metric, direction), second.badness(metric, direction), *(paired or ()))
        return first, second, verdict

    def best(self, metric: str) -> Row | None:
        """The leader when it beats the runner-up beyond noise."""
        found = self.verdict(metric)
        return found[0] if found is not None and found[2].marked else None

    def signal(self, metric: str) -> Signal:
        return self.signals.get(metric, Signal())

    def scaled(self, row: Row, metric: str) -> float:
        direction = self.direction(metric)
        controls = [r.mean_badness(metric, direction) for r in self.rows if r.role == "control"]
        return scale(row.mean_badness(metric, direction), controls)

    def scalable(self, metric: str) -> bool:
        """Whether the controls define a scale for ``metric`` (two or more with a value, not tied)."""
        direction = self.direction(metric)
        controls = [r.mean_badness(metric, direction) for r in self.rows if r.role == "control"]
        return any(math.isfinite(scale(c, controls)) for c in controls)

    def counted_metrics(self, row: Row) -> list[str]:
        """The metrics that enter ``row``'s summary score, each signal once (`countsbench.leaderboards.scaling`)."""
        candidates = [m for m in self.metrics if self.signal(m).scored and self.scalable(m)]
        counted = []
        for metric in candidates:
            signal = self.signal(metric)
            if signal.same_as in candidates and (
                signal.when == "always" or agree(row.per_seed(metric), row.per_seed(signal.same_as))
            ):
                continue
            counted.append(metric)
        return counted

    def summary(self, row: Row) -> Summary:
        return summary({m: self.scaled(row, m) for m in self.counted_metrics(row)})

    def summary_score(self, row: Row) -> float:
        return self.summary(row).score

    def sorted_rows(self) -> list[Row]:
        """By summary score when there is one, else by the first metric; rows without values last."""

        def key(row: Row) -> tuple[float, float]:
            score = self.summary_score(row)
            first = row.mean_badness(self.metrics[0], self.direction(self.metrics[0])) if self.metrics else 0
            return (-score if math.isfinite(score) else math.inf, first if math.isfinite(first) else math.inf)

        return sorted(self.rows, key=key)

    def header(self, metrics: Sequence[str] | None = None) -> list[str]:
        """Column labels of `table` (``metrics``: the metric columns, default all)."""
        columns = ["method", "role", "seeds ok", "failed", "missing", "scaled score"]
        columns += [f"{m} {arrow(self.direction(m))}".strip() for m in self._shown(metrics)]
        return columns + [label for _, label in COSTS]

    def table(self, bold: tuple[str, str] = ("*", "*"), metrics: Sequence[str] | None = None) -> list[list[str]]:
        """The rows as text cells; the best value (beyond noise) wrapped in ``bold``."""
        shown = self._shown(metrics)
        best = {m: self.best(m) for m in shown}
        lines = []
        for row in self.sorted_rows():
            cells = [row.variant, row.role, str(len(row.seeds_ok)), str(len(row.seeds_failed)), str(self.missing(row))]
            cells.append(format_summary(self.summary(row)))
            for metric in shown:
                text = format_mean_se(*row.mean_se(metric))
                bs = row.bootstrap_se(metric)
                if math.isfinite(bs) and text != "-":
                    text += f" (bs {bs:.2g})"
                cells.append(f"{bold[0]}{text}{bold[1]}" if best[metric] is row else text)
            cells += [format_mean_se(*row.mean_se(name)) for name, _ in COSTS]
            lines.append(cells)
        return lines

    def notes(self) -> list[str]:
        """Which rows are external tools', and where a rule could not be applied in full: best marks tested
        on seeds alone, incomplete scores."""
        notes = []
        external = [row.variant for row in self.sorted_rows() if row.role == EXTERNAL_ROLE]
        if external:
            notes.append(
                f"External rows (role {EXTERNAL_ROLE}): {', '.join(external)}, scored from files made by other tools "
                "(`countsbench evaluate --samples`; each run's provenance has the file's SHA-256); their costs "
                "were not measured."
            )
        tested = {m: v for m in self.metrics if (v := self.verdict(m)) is not None}
        seeds_only = [m for m, (_, _, verdict) in tested.items() if verdict.bootstrap is None]
        if seeds_only:
            which = "every metric" if len(seeds_only) == len(tested) else ", ".join(seeds_only)
            notes.append(
                f"Best marks by the seed test alone (the leader or the runner-up has no bootstrap replicates): {which}."
            )
        for row in self.rows:
            for seed, error in sorted(row.later_failures.items()):
                notes.append(
                    f"{row.variant} seed {seed}: a later rerun failed ({error.splitlines()[0][:200]}); "
                    "the earlier successful run is the one counted."
                )
        for row in self.sorted_rows():
            result = self.summary(row)
            if result.missing and math.isfinite(result.score):
                notes.append(
                    f"Scaled score of {row.variant}: a lower bound, {len(result.missing)} of {len(result.counted)} "
                    f"metrics missing (counted as 0): {', '.join(result.missing)}."
                )
        return notes

    def records(self, metrics: Sequence[str] | None = None) -> list[dict[str, object]]:
        """One flat record of raw numbers per row (NaN where there is no value), in `sorted_rows` order:
        ``task, method, variant, role, seeds_ok, failed, missing, scaled_score``, then per metric
        ``<m>.mean, <m>.se`` (over seeds), ``<m>.bootstrap_se, <m>.scaled, <m>.best``, then per cost
        ``<c>.mean, <c>.se``."""
        shown = self._shown(metrics)
        best = {m: self.best(m) for m in shown}
        records = []
        for row in self.sorted_rows():
            record: dict[str, object] = {"task": self.task, "method": row.method, "variant": row.variant}
            record.update({"role": row.role, "seeds_ok": len(row.seeds_ok), "failed": len(row.seeds_failed)})
            record.update({"missing": self.missing(row), "scaled_score": self.summary(row).score})
            for metric in shown:
                mean, se = row.mean_se(metric)
                record.update({f"{metric}.mean": mean, f"{metric}.se": se})
                record[f"{metric}.bootstrap_se"] = row.bootstrap_se(metric)
                record[f"{metric}.scaled"] = self.scaled(row, metric)
                record[f"{metric}.best"] = best[metric] is row
            for name, _ in COSTS:
                mean, se = row.mean_se(name)
                record.update({f"{name}.mean": mean, f"{name}.se": se})
            records.append(record)
        return records

    def _shown(self, metrics: Sequence[str] | None) -> list[str]:
        return list(self.metrics) if metrics is None else list(metrics)


def format_summary(result: Summary) -> str:
    """The summary score, ``≥`` and the number of missing metrics when some are missing."""
    if not math.isfinite(result.score):
        return "-"
    if result.complete:
        return format_number(result.score)
    return f"≥{format_number(result.score)} ({len(result.missing)} of {len(result.counted)} missing)"


def format_number(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"


def format_mean_se(mean: float, se: float) -> str:
    if math.isnan(mean):
        return "-"
    digits = 3 if abs(mean) >= 0.01 or mean == 0 else 6
    text = f"{mean:.{digits}g}" if abs(mean) < 1e4 else f"{mean:.4g}"
    if math.isnan(se):
        return text
    return f"{text} ± 0" if se <= 1e-12 * max(abs(mean), 1e-300) else f"{text} ± {se:.2g}"


def _counted_per_cell(runs: list) -> list[tuple[object, object | None]]:
    """Per cell (runs newest first): (its latest successful run, or its latest run when none succeeded;
    the newest failed run logged after that success, or None)."""
    by_cell: dict[str, list] = {}
    for run in runs:
        by_cell.setdefault(run.data.tags["cell_id"], []).append(run)
    counted = []
    for cell_runs in by_cell.values():
        success = next((i for i, run in enumerate(cell_runs) if run.info.status == "FINISHED"), None)
        if success is None or success == 0:
            counted.append((cell_runs[0], None))
        else:
            counted.append((cell_runs[success], cell_runs[0]))
    return counted


def task_leaderboard(task: str, results_dir: Path) -> Leaderboard:
    """`build_leaderboard` in the registered task's metric order, with its headline metrics.

    ``task`` may name a validation experiment (``<task>/valid``), ordered like its task."""
    from countsbench.registry import REGISTRY

    definition = REGISTRY.tasks.get(task.split("/", 1)[0]).factory()
    return build_leaderboard(task, results_dir, tuple(definition.default_metrics), tuple(definition.headline_metrics))


def build_leaderboard(
    task: str, results_dir: Path, metric_order: tuple[str, ...] = (), headline: tuple[str, ...] = ()
) -> Leaderboard:
    """Read the task's MLflow runs and aggregate them (latest run per cell)."""
    tracker = Tracker(results_dir)
    experiment_id = tracker.experiment_id(task, create=False)
    if experiment_id is None:
        return Leaderboard(task, [], {}, [], headline=list(headline))
    runs = tracker.client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], max_results=50000)
    runs = [run for run in runs if "cell_id" in run.data.tags]  # not a sweep's parent, not the leaderboard run
    rows: dict[tuple[str, str], Row] = {}
    directions: dict[str, str] = {}
    seen: list[str] = []
    for run, later_failure in _counted_per_cell(runs):
        tags = run.data.tags
        method = tags.get("method", "?")
        row = rows.setdefault((method, tags["variant"]), Row(method, tags["variant"], tags.get("role", "?")))
        seed = int(tags.get("seed", 0))
        if later_failure is not None:
            row.later_failures[seed] = later_failure.data.tags.get("error", later_failure.info.status)
        if run.info.status != "FINISHED":
            row.seeds_failed.add(seed)
            row.errors.append(tags.get("error", run.info.status))
            continue
        row.seeds_ok.add(seed)
        replicates = _replicates(tracker, run)
        if replicates is not None:
            row.replicates[seed] = replicates
        reused = tags.get(TAG_PREFIX + "model_reused") == "True"
        for name, value in run.data.metrics.items():
            if name == "fit_s" and reused:
                continue  # the model was fitted by another cell; its time is recorded there
            row.values.setdefault(name, {})[seed] = value
            if name not in NOT_METRICS and not name.endswith(BOOTSTRAP_SUFFIX) and name not in seen:
                seen.append(name)
        for key, value in tags.items():
            if key.startswith(DIRECTION_TAG):
                directions[key[len(DIRECTION_TAG) :]] = value
    ordered = [m for m in metric_order if m in seen] + [m for m in seen if m not in metric_order]
    return Leaderboard(
        task, ordered, directions, list(rows.values()), {m: signal_of(m) for m in ordered}, list(headline)
    )


def _replicates(tracker: Tracker, run) -> BootstrapReplicates | None:
    """The run's bootstrap replicates artifact (None for runs logged before they were stored)."""
    import mlflow

    if REPLICATES_ARTIFACT not in {a.path for a in tracker.client.list_artifacts(run.info.run_id)}:
        return None
    uri = run.info.artifact_uri.rstrip("/") + "/" + REPLICATES_ARTIFACT
    return BootstrapReplicates.from_json(mlflow.artifacts.load_dict(uri))
