"""Scoring another tool's output: `countsbench evaluate --task T --samples FILE --name NAME`.

A file made elsewhere (`countsbench.external_files`) is matched to the task's test split, scored
with the task's metrics exactly as `countsbench run` scores a method's output (`runner.task_evaluation`,
the same bootstrap), and recorded as a normal result of role ``external`` (`EXTERNAL_ROLE`): a
``result.json`` in the results directory, its aligned outputs in ``outputs/<cell_id>.npz`` (so that
``countsbench evaluate CELL_ID`` re-scores it like any cell), an MLflow run, a leaderboard row. The
file's path, size, SHA-256 and the layers read are in the result's ``provenance["external_file"]``.

What a file must hold, by task kind (`OUTPUT_RULES`):

- ``generation``: new samples, as many as the test split has cells (the runner generates that many
  and every generation metric compares equal-sized sets). A conditional task (the test split has
  condition keys, e.g. digits' ``label``) needs each sample's label (``obs[key]``, or an npz array
  ``key``) with exactly the test split's number of samples per label; samples are then ordered like
  the test cells' labels, which is how the runner hands a method its conditions.
- ``imputation``: the full (cells x genes) matrix of the test cells, or K of them ((K, cells, genes) npz,
  or K layers) for a multiple imputation, scored like the runner's (the mean of the K is the
  prediction). Only the target entries are scored: the observed entries of the file are IGNORED,
  replaced by the task's observed values (tools that smooth every entry, MAGIC or scVI, are scored
  on what they impute, and every metric of the whole matrix then sees the same observed part as a
  `countsbench run` method, whose contract keeps observed entries unchanged). How many differed is
  recorded (``observed_entries_replaced``).
- ``denoising``: the denoised training counts of every cell (`task_inputs` gives them), a matrix of
  expected counts on the training scale (real values allowed), scored against the held-out molecules.

Matching: genes by NAME (``var_names`` against the task's feature names, reordered, extra genes
ignored; every task gene must be present), by order only when the file names none (an npz without
``var_names``). Cells of imputation and denoising files: by ``obs_names`` when they are exactly the
task's test cell names (`TaskData.cell_names`), reordered; by order when none of them is (the cell
counts must agree); a file naming some task cells but not all is refused. Values must be finite and
non-negative, and integers for count outputs (as the runner's `_check_counts` requires of methods:
rounding is the user's decision, not ours). Every check runs before anything is written: a file that
fails leaves the results directory as it was.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from countsbench.evaluation import DEFAULT_BOOTSTRAP, check_metrics, finite_or_none, score_with_replicates
from countsbench.external_files import ExternalFile, ExternalFileError, read_external
from countsbench.registry import EXTERNAL_ROLE, REGISTRY, RegistryError
from countsbench.results import ResultStore
from countsbench.task import TaskData, default_data_dir

#: The profile recorded for external results (no countsbench hyperparameters were involved).
EXTERNAL_PROFILE = "external"
MAX_NAME = 100
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-=,\[\] ]*$")


@dataclass(frozen=True)
class OutputRule:
    """What a task kind's output file holds: rows that ARE the test cells (matched to them) or new
    samples; integer counts or real expected counts; whether K draws may be stacked."""

    rows_are_test_cells: bool
    integer: bool
    multiple: bool


OUTPUT_RULES: dict[str, OutputRule] = {
    "generation": OutputRule(rows_are_test_cells=False, integer=True, multiple=False),
    "imputation": OutputRule(rows_are_test_cells=True, integer=True, multiple=True),
    "denoising": OutputRule(rows_are_test_cells=True, integer=False, multiple=False),
}


@dataclass
class Aligned:
    """A file's values in the task's test order: ``outputs`` (what is saved: (n, d), or (K, n, d) for
    imputation), what is scored, and how the match was made (recorded in the provenance)."""

    outputs: np.ndarray
    prediction: np.ndarray
    samples: np.ndarray | None
    aggregate: str
    matching: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def check_name(name: str) -> str:
    """The leaderboard name of an external row: short, printable, not a registered method's."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or not NAME_PATTERN.match(name):
        raise RegistryError(
            f"--name {name!r} must be 1-{MAX_NAME} characters: letters, digits, spaces and _ . + - = , [ ], "
            "starting with a letter or digit"
        )
    if name in REGISTRY.methods:
        raise RegistryError(
            f"--name {name!r} is a registered method; name the external tool differently (e.g. {name}-external) "
            "so its row is not merged with that method's runs"
        )
    return name


def rule_for(kind: str) -> OutputRule:
    if kind not in OUTPUT_RULES:
        raise RegistryError(f"{kind} tasks cannot be scored from a file (kinds that can: {', '.join(OUTPUT_RULES)})")
    return OUTPUT_RULES[kind]


def align(file: ExternalFile, kind: str, data: TaskData) -> Aligned:
    """The file's values matched to the task's test split (genes, cells, conditions), checked."""
    rule = rule_for(kind)
    test = data.test
    values = _as_matrices(file, test.sample_shape, rule)
    columns, gene_note = _gene_columns(file, test.feature_names, values.shape[-1])
    values = values[..., columns]
    _check_values(values, file.path, rule.integer)
    matching: dict[str, object] = {"genes": gene_note}
    notes = [] if gene_note == "by name" else [f"genes matched {gene_note}"]
    if rule.rows_are_test_cells:
        rows, cell_note = _cell_rows(file, values.shape[1], test.n_samples, _cell_names(data))
    else:
        rows, cell_note = _condition_rows(file, values.shape[1], data)
    matching["cells"] = cell_note
    if cell_note.startswith("by order"):
        notes.append(f"cells matched {cell_note}")
    values = values[:, rows]
    if kind == "imputation":
        return _imputation(values, data, matching, notes)
    if values.shape[0] != 1:
        raise ExternalFileError(f"{file.path}: {kind} tasks score one matrix, the file holds {values.shape[0]}")
    out = values[0].astype(np.int64) if rule.integer else values[0].astype(np.float64)
    return Aligned(out, out, None, "single", matching, notes)


def _as_matrices(file: ExternalFile, sample_shape: tuple[int, ...], rule: OutputRule) -> np.ndarray:
    """(K, rows, features): a 2-D matrix is K = 1; (rows, *sample_shape) images are flattened."""
    values = np.asarray(file.values)
    if values.dtype.kind not in "biuf":
        raise ExternalFileError(f"{file.path}: values must be numeric, got dtype {values.dtype}")
    if len(sample_shape) > 1 and values.ndim == 1 + len(sample_shape) and values.shape[1:] == tuple(sample_shape):
        values = values.reshape(values.shape[0], -1)
    if values.ndim == 2:
        return values[None]
    if values.ndim == 3 and rule.multiple:
        return values
    expected = "(cells, genes) or (K, cells, genes)" if rule.multiple else "(cells, genes)"
    raise ExternalFileError(f"{file.path}: {file.source} has shape {values.shape}; expected {expected}")


def _gene_columns(file: ExternalFile, genes: Sequence[str], n_columns: int) -> tuple[np.ndarray, str]:
    """Column of each task gene in the file, by name (or by order when the file names none)."""
    if file.genes is None:
        if n_columns != len(genes):
            raise ExternalFileError(
                f"{file.path} has {n_columns} columns and names no genes; the task has {len(genes)} genes "
                f"(add gene names as {file.format == 'npz' and 'an array var_names' or 'var_names'} to match by name)"
            )
        return np.arange(n_columns), "by order (the file names no genes)"
    if len(file.genes) != n_columns:
        raise ExternalFileError(f"{file.path}: {len(file.genes)} gene names for {n_columns} columns")
    index: dict[str, int] = {}
    duplicated = set()
    for j, gene in enumerate(file.genes):
        if gene in index:
            duplicated.add(gene)
        index.setdefault(gene, j)
    missing = [g for g in genes if g not in index]
    if missing:
        raise ExternalFileError(
            f"{len(missing)} of the task's {len(genes)} genes are not in {file.path} "
            f"(e.g. {', '.join(missing[:5])}); genes are matched by name"
        )
    twice = sorted(duplicated & set(genes))
    if twice:
        raise ExternalFileError(f"{file.path} names {len(twice)} task genes twice (e.g. {', '.join(twice[:5])})")
    return np.array([index[g] for g in genes]), "by name"


def _check_values(values: np.ndarray, path: Path, integer: bool) -> None:
    """Finite, non-negative and (count outputs) integer-valued, like `runner._check_counts`."""
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            raise ExternalFileError(f"{path} holds {int(bad.sum())} NaN or infinite values in the task's genes")
        if integer:
            fractional = values != np.round(values)
            if fractional.any():
                example = values[fractional].flat[0]
                raise ExternalFileError(
                    f"{path} holds {int(fractional.sum())} non-integer values (e.g. {example:g}); this task is scored "
                    "on integer counts: round them yourself (np.rint) if that is what your tool means"
                )
    if values.size and values.min() < 0:
        raise ExternalFileError(f"{path} holds {int((values < 0).sum())} negative values (min {values.min():g})")


def _cell_names(data: TaskData) -> tuple[str, ...] | None:
    names = (getattr(data, "cell_names", None) or {}).get("test")
    return tuple(names) if names else None


def _cell_rows(file: ExternalFile, n_rows: int, n_test: int, names: tuple[str, ...] | None) -> tuple[np.ndarray, str]:
    """Row of the file for each test cell: by obs names when they are the test cells', else by order."""
    if file.cells is not None and names is not None:
        known = set(names)
        hits = [c for c in file.cells if c in known]
        if hits and (len(hits) != len(file.cells) or len(set(file.cells)) != len(file.cells) or len(hits) != n_test):
            others = [c for c in file.cells if c not in known]
            absent = sorted(known - set(file.cells))
            raise ExternalFileError(
                f"{file.path}: {len(hits)} of its {len(file.cells)} obs names are the task's test cells, "
                f"{len(others)} are not (e.g. {', '.join(others[:3]) or '-'}), {len(absent)} test cells are absent "
                f"(e.g. {', '.join(absent[:3]) or '-'}); give every test cell once, or none by name"
            )
        if hits:
            position = {c: i for i, c in enumerate(file.cells)}
            return np.array([position[c] for c in names]), "by obs names"
    if n_rows != n_test:
        raise ExternalFileError(
            f"{file.path} has {n_rows} cells; the task's test split has {n_test} (cells are matched by obs names "
            "when they are the test cells', else by order)"
        )
    why = "the task names no cells" if names is None else "the file's obs names are not the task's test cells"
    return np.arange(n_rows), f"by order ({why})"


def _condition_rows(file: ExternalFile, n_rows: int, data: TaskData) -> tuple[np.ndarray, str]:
    """Generated samples ordered like the test cells' conditions (row i gets test cell i's labels)."""
    test = data.test
    if n_rows != test.n_samples:
        raise ExternalFileError(
            f"{file.path} has {n_rows} samples; generation tasks score as many as the test split has cells "
            f"({test.n_samples})"
        )
    keys = test.condition_keys
    if not keys:
        return np.arange(n_rows), "unconditional (any order)"
    absent = [k for k in keys if k not in file.labels]
    if absent:
        where = "obs columns" if file.format == "h5ad" else "arrays"
        raise ExternalFileError(
            f"the task generates conditionally on {', '.join(keys)}: give each sample's {', '.join(absent)} "
            f"({where} of that name) in {file.path}"
        )
    wanted = [np.asarray(test.vocabularies[k])[test.conditions[k]] for k in keys]
    given = [np.asarray(file.labels[k]).astype(str) for k in keys]
    for key, labels in zip(keys, given, strict=True):
        if labels.shape != (n_rows,):
            raise ExternalFileError(f"{file.path}: {key} has {labels.shape[0]} labels for {n_rows} samples")
    want = [tuple(row) for row in zip(*wanted, strict=True)]
    have = [tuple(row) for row in zip(*given, strict=True)]
    pools: dict[tuple, list[int]] = {}
    for i, combination in enumerate(have):
        pools.setdefault(combination, []).append(i)
    need: dict[tuple, int] = {}
    for combination in want:
        need[combination] = need.get(combination, 0) + 1
    differ = [
        f"{'/'.join(c)}: file {len(pools.get(c, []))}, test {need.get(c, 0)}"
        for c in sorted(set(need) | set(pools))
        if len(pools.get(c, [])) != need.get(c, 0)
    ]
    if differ:
        raise ExternalFileError(
            f"{file.path}: samples per {'/'.join(keys)} differ from the test split's ({len(differ)} labels: "
            f"{'; '.join(differ[:4])}); generate as many per label as the test split holds"
        )
    taken = {c: iter(rows) for c, rows in pools.items()}
    return np.array([next(taken[c]) for c in want]), f"by {'/'.join(keys)} labels"


def _imputation(values: np.ndarray, data: TaskData, matching: dict, notes: list[str]) -> Aligned:
    """Observed entries replaced by the task's (only targets are scored); the K draws' mean is scored."""
    truth, target = data.test.dense(), data.test_target
    out = values.astype(np.int64)
    observed = ~target
    replaced = int(np.sum(out[:, observed] != truth[observed]))
    out[:, observed] = truth[observed]
    matching["observed_entries_replaced"] = replaced
    if replaced:
        notes.append(
            f"{replaced} observed (non-target) entries differ from the task's data and were ignored: "
            "only the target entries are scored"
        )
    if out.shape[0] == 1:
        return Aligned(out, out[0], None, "single", matching, notes)
    return Aligned(out, out.mean(axis=0), out, "mean_of_K", matching, notes)


def external_file_record(file: ExternalFile, layer: str | None, matching: Mapping[str, object]) -> dict:
    """``provenance["external_file"]``: where the file was, its size and SHA-256, what was read."""
    from countsbench.provenance import file_checksum

    return {
        "path": str(file.path.resolve()),
        "size_bytes": file.path.stat().st_size,
        "sha256": file_checksum(file.path),
        "format": file.format,
        "layer": file.source,
        "layer_requested": layer,
        **dict(matching),
    }


def score_external(
    task_name: str,
    path: Path,
    name: str,
    results_dir: Path,
    *,
    layer: str | None = None,
    seed: int = 0,
    metrics: list[str] | None = None,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    data_dir: Path | None = None,
    options: Mapping[str, object] | None = None,
    track: bool = True,
    log=None,
) -> dict:
    """Score ``path`` on ``task_name`` and record it as the result of the external row ``name``.

    Everything the user can get wrong is checked before the results directory is touched."""
    from countsbench.provenance import SCHEMA_VERSION, collect
    from countsbench.runner import VERSION, _directions, _log_to_mlflow, digest, task_evaluation
    from countsbench.tracking import run_name

    say = log or (lambda message: None)
    name = check_name(name)
    task = REGISTRY.tasks.get(task_name).factory()
    rule_for(task.kind)
    chosen = check_metrics(metrics if metrics is not None else task.default_metrics, task.kind)
    file = read_external(Path(path), layer)
    data = task.load(Path(data_dir) if data_dir is not None else default_data_dir())
    aligned = align(file, task.kind, data)
    record = external_file_record(file, layer, aligned.matching)
    store = ResultStore(results_dir)
    store.check_writable()
    for note in aligned.notes:
        say(f"countsbench: {note}")

    started, t0 = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), time.perf_counter()
    evaluation = task_evaluation(
        task.kind, data, data.test, data.test_target, aligned.prediction, aligned.samples, store.root / "cache"
    )
    evaluation.options = {**evaluation.options, **dict(options or {})}
    values, replicates = score_with_replicates(evaluation, chosen, n_bootstrap=n_bootstrap)
    eval_s = time.perf_counter() - t0
    description = dict(data.description)
    cell_id = digest(
        {"external": name, "task": task_name, "seed": seed, "task_definition": description, "version": VERSION}
    )[:16]
    provenance = collect("cpu", data.data_files, store.checksum_cache())
    provenance["external_file"] = record
    outputs = store.outputs_path(cell_id)
    outputs.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(outputs, outputs=aligned.outputs)
    metric_values = {k: finite_or_none(v) for k, v in values.items()}
    result = {
        "status": "ok",
        "error": None,
        "metrics": metric_values,
        "bootstrap": None if replicates is None else replicates.to_json(),
        "model_cache": None,
        "outputs": str(outputs.relative_to(store.root)),
        "aggregate": aligned.aggregate,
        "schema_version": SCHEMA_VERSION,
        "result_id": f"{cell_id}-{started.replace(':', '').replace('-', '').replace('.', '')}",
        "cell_id": cell_id,
        "config_hash": digest({"external": name, "sha256": record["sha256"]})[:12],
        "method": name,
        "variant": name,
        "role": EXTERNAL_ROLE,
        "task": task_name,
        "task_kind": task.kind,
        "task_description": description,
        "seed": seed,
        "split": "test",
        "profile": EXTERNAL_PROFILE,
        "config": {},
        "metric_directions": _directions(metric_values),
        "costs": {"eval_s": eval_s, "duration_s": time.perf_counter() - t0},
        "started_at": started,
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "run_name": run_name(name, seed),
        "provenance": provenance,
        "mlflow_run_id": None,
    }
    store.save(result)
    if track:
        from countsbench.tracking import Tracker

        _log_to_mlflow(Tracker(store.root), store, result)
    return result


def task_inputs(task_name: str, data_dir: Path | None = None):
    """What another tool needs to answer ``task_name``, as an AnnData of its test cells (by row):

    - imputation: ``X`` the test counts with the target entries zeroed (hidden), the layer
      ``countsbench_target`` (1 = an entry to impute, the ones scored), ``obs`` the condition labels;
    - denoising: ``X`` the counts the task's methods denoise, its MCV training counts (``data.train``; the
      held-out molecules in ``data.test`` are the truth and never leave countsbench);
    - generation: ``obs`` the labels of the test cells (generate one sample per row, with its labels),
      ``X`` all zeros (the test counts are the truth, not an input).

    ``obs_names`` are the task's test cell names (`TaskData.cell_names`, else ``test_<i>``) and
    ``var_names`` its genes, so a file built on this AnnData matches by name."""
    import anndata
    import pandas as pd
    import scipy.sparse as sp

    REGISTRY.load_builtins()  # called from a user's script, not through the command line
    task = REGISTRY.tasks.get(task_name).factory()
    rule_for(task.kind)
    data = task.load(Path(data_dir) if data_dir is not None else default_data_dir())
    test = data.test
    names = _cell_names(data) or tuple(f"test_{i}" for i in range(test.n_samples))
    obs = pd.DataFrame(
        {k: np.asarray(test.vocabularies[k])[test.conditions[k]] for k in test.condition_keys}, index=list(names)
    )
    var = pd.DataFrame(index=list(test.feature_names))
    if task.kind == "generation":
        return anndata.AnnData(X=sp.csr_matrix(test.counts.shape, dtype=np.float32), obs=obs, var=var)
    if task.kind == "imputation":
        hidden = test.with_hidden(data.test_target)
        adata = anndata.AnnData(X=sp.csr_matrix(hidden.counts, dtype=np.float32), obs=obs, var=var)
        adata.layers["countsbench_target"] = sp.csr_matrix(data.test_target, dtype=np.int8)
        return adata
    return anndata.AnnData(X=sp.csr_matrix(data.train.counts, dtype=np.float32), obs=obs, var=var)
