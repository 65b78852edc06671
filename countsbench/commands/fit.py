"""``countsbench fit``: fit a method (CountsDiff by default) on a user's own AnnData file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from countsbench.config import PROFILES, parse_assignments, parse_seed
from countsbench.context import DEVICES
from countsbench.inputs import check_anndata, read_h5ad, writable_directory


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="fit a method on your own .h5ad and save it",
        description="Fit an imputation method on every cell of your own .h5ad of raw integer counts (a "
        "seeded 10% is held out only for methods that tune on it, e.g. MAGIC with knn=None) and save it for "
        "`countsbench impute`. A start line and progress (with an ETA) go to stderr.",
    )
    parser.add_argument("--input", type=Path, required=True, help="an .h5ad of raw integer counts (cells x genes)")
    parser.add_argument("--output", type=Path, required=True, help="model directory to write")
    parser.add_argument(
        "--method",
        default="countsdiff",
        help="a registered imputation method (default countsdiff; see "
        "`countsbench list methods`, and `countsbench list methods --params NAME` for its settings)",
    )
    parser.add_argument("--layer", help="read counts from this layer instead of X")
    parser.add_argument(
        "--condition-keys", default="", help="comma-separated obs columns to condition on (e.g. cell_type,donor)"
    )
    parser.add_argument(
        "--cell-type-key", help="obs column for the dropout rule (zeros of types' genes not trained on)"
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="quick",
        help="hyperparameter defaults: quick (minutes on a CPU, the default) or paper (the paper's "
        "configuration, meant for a GPU; CountsDiff then draws K = 5 imputations by default)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one hyperparameter (repeatable), e.g. --set steps=3000 --set n_samples=5",
    )
    parser.add_argument("--seed", type=parse_seed, default=0, help="seed of the method's randomness (default 0)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto (a CUDA GPU when visible), cpu, cuda")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from countsbench.api import fit
    from countsbench.registry import REGISTRY, RegistryError

    keys = [k.strip() for k in args.condition_keys.split(",") if k.strip()]
    if not REGISTRY.methods.get(args.method).cls.persistable:
        raise RegistryError(
            f"--method {args.method}: its fitted state is not arrays, so it cannot be saved as a model directory; "
            "run it on a task with `countsbench run` instead"
        )
    writable_directory(args.output)
    adata = read_h5ad(args.input)
    check_anndata(adata, layer=args.layer, keys=[*keys, *([args.cell_type_key] if args.cell_type_key else [])])
    model = fit(
        adata,
        args.method,
        layer=args.layer,
        condition_keys=keys,
        cell_type_key=args.cell_type_key,
        profile=args.profile,
        overrides=parse_assignments(args.set),
        seed=args.seed,
        device=args.device,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    model.save(args.output)
    print(f"countsbench: saved {args.method} fitted on {args.input} to {args.output}", file=sys.stderr)
    return 0
