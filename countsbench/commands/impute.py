"""``countsbench impute``: impute a user's .h5ad with a model saved by ``countsbench fit``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from countsbench.config import parse_seed
from countsbench.context import DEVICES
from countsbench.data import CountDataError
from countsbench.inputs import check_anndata, check_mask_layer, read_h5ad, writable_file
from countsbench.safe_io import UnsafeFileError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "impute",
        help="impute your own .h5ad with a fitted model",
        description="Impute the chosen entries of an .h5ad with a model from `countsbench fit`; every other "
        "entry is returned unchanged. Genes are matched by name. The output is a copy of the input with layers "
        "countsbench_imputed (the mean of the K imputations) and countsbench_sample_0..K-1.",
    )
    parser.add_argument("--model", type=Path, required=True, help="directory written by `countsbench fit`")
    parser.add_argument("--input", type=Path, required=True, help="an .h5ad of raw integer counts")
    parser.add_argument(
        "--output", type=Path, required=True, help=".h5ad with the imputations as layers (written atomically)"
    )
    parser.add_argument("--layer", help="read counts from this layer instead of X")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--mask-layer", help="layer whose non-zero entries are the ones to impute (cells x genes of the input)"
    )
    which.add_argument(
        "--impute-zeros",
        action="store_true",
        help="treat EVERY zero as missing and impute it (true zeros too: this raises library sizes)",
    )
    parser.add_argument(
        "--n-samples",
        type=int,
        default=None,
        help="number of imputations K (their mean is a layer too); default: the model's n_samples setting, else 1",
    )
    parser.add_argument("--seed", type=parse_seed, default=0, help="seed of the imputation's randomness (default 0)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto (a CUDA GPU when visible), cpu, cuda")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import scipy.sparse as sp

    from countsbench.api import FittedModel, write_imputations

    try:
        model = FittedModel.load(args.model)
    except (CountDataError, UnsafeFileError) as error:
        raise type(error)(f"--model: {error}") from None
    if args.n_samples is not None and args.n_samples < 1:
        raise CountDataError("--n-samples must be at least 1")
    writable_file(args.output)
    adata = read_h5ad(args.input)
    check_anndata(adata, layer=args.layer, keys=list(model.vocabularies))
    mask = None
    if args.mask_layer is not None:
        check_mask_layer(adata, args.mask_layer)
        names = {g: j for j, g in enumerate(map(str, adata.var_names))}
        missing = [g for g in model.genes if g not in names]
        if missing:
            raise CountDataError(f"{len(missing)} model genes are not in the input (e.g. {', '.join(missing[:5])})")
        mask = sp.csr_matrix(adata.layers[args.mask_layer])[:, [names[g] for g in model.genes]] != 0
    samples = model.impute(
        adata,
        layer=args.layer,
        mask=mask,
        impute_zeros=args.impute_zeros,
        n_samples=args.n_samples,
        seed=args.seed,
        device=args.device,
    )
    path = write_imputations(adata, model, samples, args.layer, args.output)
    print(f"countsbench: wrote {path} (layers countsbench_imputed, countsbench_sample_0..)", file=sys.stderr)
    return 0
