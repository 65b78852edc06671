"""``countsbench prepare fetal|heart|synthetic``: write an atlas task's processed data file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from countsbench.data import CountDataError
from countsbench.task import default_data_dir


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("prepare", help="preprocess an atlas (or simulate one) into the data directory")
    parser.add_argument(
        "atlas",
        choices=["fetal", "heart", "synthetic"],
        help="which atlas: fetal or heart from --input, or simulate one",
    )
    parser.add_argument("--input", type=Path, help="raw counts: an .h5ad, or the research code's preprocessed HDF5")
    parser.add_argument("--layer", help="read raw counts from this layer instead of X")
    parser.add_argument("--raw", action="store_true", help="read raw counts from .raw")
    parser.add_argument("--n-genes", type=int, help="genes kept by coefficient of variation (fetal 1000, heart 500)")
    parser.add_argument("--min-cells", type=int, default=10, help="keep genes expressed in at least this many cells")
    parser.add_argument("--seed", type=int, default=0, help="split seed (and simulation seed)")
    parser.add_argument("--n-cells", type=int, default=1_000_000, help="synthetic atlas: number of cells")
    parser.add_argument("--data-dir", type=Path, default=None, help="default $COUNTSBENCH_DATA or ./countsbench-data")
    parser.set_defaults(func=main)


def _is_research_hdf5(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return "gene_names" in handle and "train" in handle
    except OSError:
        return False


def main(args: argparse.Namespace) -> int:
    from countsbench.tasks.atlas import ATLASES
    from countsbench.tasks.preprocess import preprocess, read_research_hdf5
    from countsbench.tasks.processed import processed_path, write_processed
    from countsbench.tasks.synthetic import AtlasSimulator

    atlas = ATLASES[args.atlas]
    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    n_genes = args.n_genes or atlas.n_genes
    params: dict[str, object] = {"seed": args.seed}
    if args.atlas == "synthetic":
        dataset = AtlasSimulator().simulate(args.n_cells, n_genes, seed=args.seed)
        params.update({"simulator": "AtlasSimulator", "n_cells": args.n_cells, "n_genes": n_genes})
    else:
        if args.input is None:
            raise CountDataError(f"--input is required: {atlas.how_to_obtain()}")
        if not args.input.exists():
            raise CountDataError(f"--input {args.input} does not exist")
        if _is_research_hdf5(args.input):
            dataset = read_research_hdf5(args.input, atlas.cell_type_key, atlas.condition_keys)
            params.update({"source": "research-code HDF5 (already filtered and split)"})
        else:
            import anndata

            adata = anndata.read_h5ad(args.input)
            dataset = preprocess(
                adata,
                cell_type_key=atlas.cell_type_key,
                condition_keys=atlas.condition_keys,
                n_genes=n_genes,
                min_cells=args.min_cells,
                seed=args.seed,
                layer=args.layer,
                use_raw=args.raw,
            )
            params.update({"n_genes": n_genes, "min_cells": args.min_cells, "split": "0.8/0.1/0.1 by cell type"})
        params["input"] = str(args.input)
    path = write_processed(processed_path(data_dir, atlas.name), dataset, atlas.name, params)
    n, d = dataset.counts.shape
    print(f"countsbench: wrote {path} ({n} cells x {d} genes)", file=sys.stderr)
    return 0
