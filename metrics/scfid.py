"""scFID (Rizvi et al. 2025; SPEC section 8; paper appendix D.3.4): the Frechet distance between
Gaussians fitted to scVI latent means of the true and of the imputed full profiles (observed
entries plus imputed targets).

Two embeddings:
- default: an scVI model trained on the task's training split with a fixed seed, cached per task
  (`countsbench.metrics.model_cache`) so that every method and seed is scored by the same embedding;
- ``Evaluation.options["scvi_model"]``: a directory holding a pretrained scvi-tools SCVI model
  (the paper used the CELLxGENE census model). Genes are matched by name; the model's genes
  missing from the data are zero-filled (scvi-tools' ``prepare_query_anndata``), and too small an
  overlap is an error.

``log_scfid`` is ``ln(max(scfid, 1e-12))``, the paper's "log(scFID)" column.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np
from scipy import linalg

from countsbench.config import ConfigError
from countsbench.evaluation import Evaluation
from countsbench.metrics.model_cache import cached_model
from countsbench.registry import register_metric

#: The default embedding: a small scVI trained for ``n_steps`` mini-batches (about 15 s on pbmc,
#: one thread), however many cells the training split has.
SCVI_SETTINGS = {"n_latent": 10, "n_hidden": 128, "n_layers": 1, "n_steps": 300, "batch_size": 256, "seed": 0}
#: The least share of a pretrained model's genes that the data must provide.
MIN_GENE_OVERLAP = 0.5


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` of the rows' means and covariances."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.all(np.isfinite(root)):  # singular product: regularise as in the FID reference code
        offset = 1e-6 * np.eye(cov_a.shape[0])
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    value = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(np.real(root))
    return float(max(value, 0.0))


def _quiet() -> None:
    for name in ("scvi", "lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _anndata(counts: np.ndarray, genes: tuple[str, ...]):
    import anndata
    import pandas as pd

    return anndata.AnnData(
        X=np.asarray(counts, dtype=np.float32),
        obs=pd.DataFrame(index=[str(i) for i in range(counts.shape[0])]),
        var=pd.DataFrame(index=list(genes)),
    )


def train_scvi(ev: Evaluation, directory: Path) -> None:
    """Train the default scVI embedding on the task's training split (fixed seed) and save it."""
    import scvi
    import torch

    _quiet()
    scvi.settings.seed = SCVI_SETTINGS["seed"]
    train = ev.root().train
    adata = _anndata(train.dense(), train.feature_names)
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(
        adata,
        n_latent=SCVI_SETTINGS["n_latent"],
        n_hidden=SCVI_SETTINGS["n_hidden"],
        n_layers=SCVI_SETTINGS["n_layers"],
    )
    steps_per_epoch = math.ceil(train.n_samples / SCVI_SETTINGS["batch_size"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: more threads only add overhead on shared CPUs
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.train(
                max_epochs=math.ceil(SCVI_SETTINGS["n_steps"] / steps_per_epoch),
                batch_size=SCVI_SETTINGS["batch_size"],
                train_size=1.0,
                accelerator="cpu",
                devices=1,
                enable_progress_bar=False,
                logger=False,
                enable_checkpointing=False,
            )
    finally:
        torch.set_num_threads(threads)
    model.save(str(directory / "scvi"), overwrite=True)


class ScviEmbedding:
    """Latent means of a saved SCVI model for count profiles with named genes."""

    def __init__(self, directory: Path, pretrained: bool) -> None:
        self.directory = str(directory)
        self.pretrained = pretrained

    def embed(self, counts: np.ndarray, genes: tuple[str, ...]) -> np.ndarray:
        import scvi

        _quiet()
        adata = _anndata(counts, genes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.pretrained:
                model = self._query_model(adata)
            else:
                model = scvi.model.SCVI.load(self.directory, adata=adata, accelerator="cpu")
            return model.get_latent_representation(adata, give_mean=True, batch_size=1024)

    def _query_model(self, adata):
        """The pretrained model applied to ``adata``, genes matched by name (no further training)."""
        import scvi

        model_genes = scvi.model.SCVI.prepare_query_anndata(adata, self.directory, return_reference_var_names=True)
        shared = int(np.isin(np.asarray(model_genes), adata.var_names).sum())
        if shared < MIN_GENE_OVERLAP * len(model_genes):
            raise ConfigError(
                f"scFID: the data has {shared} of the pretrained scVI model's {len(model_genes)} genes "
                f"(at least {MIN_GENE_OVERLAP:.0%} needed); gene names must match the model's "
                "(for example Ensembl ids for the CELLxGENE census model)"
            )
        setup = scvi.model.SCVI.load_registry(self.directory)["setup_args"]
        keys = [setup.get("batch_key"), setup.get("labels_key"), *(setup.get("categorical_covariate_keys") or [])]
        for key in filter(None, keys):
            adata.obs[key] = "unassigned"
        scvi.model.SCVI.prepare_query_anndata(adata, self.directory)
        model = scvi.model.SCVI.load_query_data(adata, self.directory, accelerator="cpu")
        model.is_trained = True
        return model


def embedding(ev: Evaluation) -> ScviEmbedding:
    pretrained = ev.root().options.get("scvi_model")
    if pretrained is not None:
        if not Path(pretrained, "model.pt").is_file():
            raise ConfigError(f"scFID: {pretrained} is not a saved scvi-tools model directory (no model.pt)")
        return ScviEmbedding(Path(pretrained), pretrained=True)
    return cached_model(
        ev, "scvi", SCVI_SETTINGS, lambda d: train_scvi(ev, d), lambda d: ScviEmbedding(d / "scvi", pretrained=False)
    )


def latent_means(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: (latent mean of the true profile, latent mean of the imputed profile)."""
    model, genes = embedding(ev), ev.truth.feature_names
    return model.embed(ev.true_dense(), genes), model.embed(ev.predicted(), genes)


def _scfid(ev: Evaluation) -> float:
    return ev.cached("scfid", lambda: frechet_distance(*ev.per_cell("scvi_latent", latent_means)))


@register_metric(
    "scfid",
    kinds=("imputation",),
    direction="minimize",
    summary="Frechet distance of scVI latent means of true and imputed full profiles.",
    paper="scFID",
)
def scfid(ev: Evaluation) -> float:
    return _scfid(ev)


@register_metric(
    "log_scfid",
    kinds=("imputation",),
    direction="minimize",
    summary="ln(max(scFID, 1e-12)).",
    paper="log(scFID)",
    same_signal_as="scfid",
)
def log_scfid(ev: Evaluation) -> float:
    return math.log(max(_scfid(ev), 1e-12))
