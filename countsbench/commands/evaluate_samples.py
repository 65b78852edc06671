"""``countsbench evaluate --task T --samples FILE --name NAME``: score another tool's output file.

The second form of ``countsbench evaluate`` (`countsbench.commands.evaluate` holds the first, re-scoring
a stored run); the work is `countsbench.external.score_external`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from countsbench.commands.common import print_table
from countsbench.config import ConfigError

USAGE = """\
two forms:
  countsbench evaluate RESULT_OR_RUN_ID [--metrics A,B]
      re-score a stored run's saved outputs (a cell id, result id, MLflow run id or result.json)
  countsbench evaluate --task T --samples FILE --name NAME [--layer L] [--seed S]
      score a file made by another tool and record it as a leaderboard row of role "external":
      FILE is an .h5ad (X, or --layer) or an .npz (the array 'samples', or --layer; optional string
      arrays var_names, obs_names and one per condition key) holding, by task kind:
        generation  as many samples as the test split has cells (per label, for a conditional task:
                    give each sample's label as obs[key] / an npz array key)
        imputation  the test cells' full matrix, or K of them (a (K, cells, genes) npz, or layers:
                    --layer 'countsbench_sample_*', the default when the file has them); only the
                    target entries are scored, observed entries are replaced by the task's
        denoising   the denoised expected counts of the test cells
      Genes are matched by name (var_names), cells by obs names when they are the task's test
      cells' (countsbench.external.task_inputs writes those), else by order. Values must be finite,
      non-negative, and integers for count outputs. The file's SHA-256 goes into the provenance.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scoring another tool's output (--samples)")
    group.add_argument("--task", help="the task the file answers (with --samples)")
    group.add_argument("--samples", type=Path, metavar="FILE", help="an .h5ad or .npz made by another tool")
    group.add_argument("--name", help="the tool's name: its leaderboard row (not a registered method's name)")
    group.add_argument(
        "--layer",
        help="the h5ad layer (X by default; 'PREFIX*': the layers with that prefix, as K imputations) "
        "or the npz array holding the values",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the seed the tool ran with (default 0): files of several seeds form one row",
    )


def requested(args: argparse.Namespace) -> bool:
    """Whether the command line asks for the --samples form; mixing the two forms is refused."""
    given = [flag for flag in ("task", "samples", "name", "layer") if getattr(args, flag) is not None]
    if args.result is not None:
        if given:
            raise ConfigError(
                f"give RESULT_OR_RUN_ID or --task/--samples/--name, not both (got --{', --'.join(given)})"
            )
        return False
    if not given:
        raise ConfigError("give RESULT_OR_RUN_ID to re-score a run, or --task, --samples and --name to score a file")
    absent = [flag for flag in ("task", "samples", "name") if getattr(args, flag) is None]
    if absent:
        raise ConfigError(f"scoring a file needs --task, --samples and --name (missing: --{', --'.join(absent)})")
    return True


def main(args: argparse.Namespace, metrics: list[str] | None, options: dict) -> int:
    from countsbench.external import score_external

    result = score_external(
        args.task,
        args.samples,
        args.name,
        args.results_dir,
        layer=args.layer,
        seed=args.seed,
        metrics=metrics,
        n_bootstrap=args.bootstrap,
        data_dir=args.data_dir,
        options=options,
        track=not args.no_track,
        log=lambda line: print(line, file=sys.stderr),
    )
    if result.get("mlflow_run_id"):
        from countsbench.runner import publish_leaderboard
        from countsbench.tracking import Tracker, experiment_name

        publish_leaderboard(Tracker(args.results_dir), experiment_name(result))
    rows = [[k, "-" if v is None else f"{v:.6g}"] for k, v in result["metrics"].items()]
    print_table(f"{result['variant']} (external) on {result['task']}, seed {result['seed']}", ["metric", "value"], rows)
    file = result["provenance"]["external_file"]
    print(
        f"countsbench: scored {file['path']} ({file['layer']}, {file['sha256']}); "
        f"result: {Path(args.results_dir) / 'cells' / result['cell_id'] / 'result.json'}  "
        f"mlflow run: {result.get('mlflow_run_id')}",
        file=sys.stderr,
    )
    return 0
