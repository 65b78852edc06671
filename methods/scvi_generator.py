"""scVI as a conditional generator of counts (Lopez et al. 2018, through scvi-tools).

An ``SCVI`` model is trained on the training counts with the condition (the cell type) as a
categorical covariate, which enters its decoder: ``x_g ~ ZINB(l * rho_g(z, c), theta_g, pi_g(z, c))``
with ``l`` the cell's observed library size (scVI's ``use_observed_lib_size``) and ``z ~ N(0, I)``
a priori. A cell of type c is generated as (``latent="posterior"``, the default):

1. a training cell i of type c, drawn without replacement until the type is used up;
2. ``z ~ q(z | x_i)``, the encoder's posterior of that cell, and ``l = l_i``, its library size;
3. counts from the likelihood with ``(z, l, c)``.

That is scvi-tools' own ``posterior_predictive_sample`` on the drawn training cells, so z and l come
from the aggregated posterior and the observed library distribution of type c, as a user of the
field samples scVI. The prior is the alternative (``latent="prior"``: ``z ~ N(0, I)``, l of a drawn
training cell of type c): scVI's encoder does not see the covariate, so z itself carries the cell
type, and a prior draw decoded with covariate c mixes the other types' latent regions with c's
covariate; the aggregated posterior of c's cells is where the decoder was trained to see type c.
The price of the posterior is proximity to the training cells it starts from: the memorisation
metric measures it. Unconditional tasks draw from every training cell.

scvi-tools is imported only when the method is used. Profiles: ``quick`` trains 200 epochs on every
training cell (about a minute on pbmc on one thread); ``paper`` uses scvi-tools' defaults (its epoch
heuristic, a 90/10 internal train/validation split).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np

from countsbench.config import AT_LEAST_ONE, POSITIVE, Range
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.methods.generation_controls import ConditionGroups, draw_without_replacement
from countsbench.registry import register_method

#: The obs column of the condition combination (one categorical covariate).
CONDITION_COLUMN = "condition"


@contextlib.contextmanager
def quiet_scvi(threads: int) -> Iterator[None]:
    """scvi-tools and lightning without their log lines and warnings, on ``threads`` torch threads."""
    import torch

    for name in ("scvi", "lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        torch.set_num_threads(previous)


@register_method(
    "scvi_generator",
    kinds=("generation",),
    role="baseline",
    summary="scVI (ZINB, cell type as covariate) sampled from its posterior predictive: z ~ q(z | x) of a "
    "training cell of the asked type, its library size, counts from the likelihood.",
    paper="Lopez et al. 2018, Deep generative modeling for single-cell transcriptomics, Nat. Methods",
)
class ScviGenerator(Method):
    profiles = {"quick": {"max_epochs": 200, "train_size": 1.0}, "paper": {"max_epochs": None, "train_size": 0.9}}
    inference_only = frozenset({"latent"})
    hyperparameter_ranges = {
        **dict.fromkeys(["n_hidden", "n_latent", "n_layers", "batch_size", "threads", "max_epochs"], AT_LEAST_ONE),
        "dropout_rate": Range(0, 1, high_open=True),
        "lr": POSITIVE,
        "train_size": Range(0, 1, low_open=True),
    }

    def __init__(
        self,
        n_hidden: int = 128,
        n_latent: int = 10,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        gene_likelihood: Literal["zinb", "nb", "poisson"] = "zinb",
        dispersion: Literal["gene", "gene-batch"] = "gene",
        max_epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 1e-3,
        train_size: float = 0.9,
        latent: Literal["posterior", "prior"] = "posterior",
        threads: int = 1,
    ) -> None:
        """``max_epochs=None``: scvi-tools' heuristic (400 epochs below 20,000 cells); ``train_size``: the
        share of training cells scvi-tools trains on (the rest is its own validation split);
        ``dispersion="gene-batch"``: one dispersion per gene and condition; ``threads``: torch threads."""
        self.train: CountData | None = None
        self.groups: ConditionGroups | None = None
        self.model = None

    # --- the scvi-tools model -------------------------------------------------------------------
    def _anndata(self, train: CountData):
        import anndata
        import pandas as pd

        combos = self.groups.groups.astype(str)  # the condition combination of each cell, "0" without any
        return anndata.AnnData(
            X=train.counts.astype(np.float32),
            obs=pd.DataFrame({CONDITION_COLUMN: pd.Categorical(combos)}, index=[str(i) for i in range(len(combos))]),
            var=pd.DataFrame(index=list(train.feature_names)),
        )

    def _build(self, train: CountData):
        import scvi

        adata = self._anndata(train)
        covariate = {"batch_key": CONDITION_COLUMN} if self.dispersion == "gene-batch" else {}
        covariate = covariate or {"categorical_covariate_keys": [CONDITION_COLUMN]}
        scvi.model.SCVI.setup_anndata(adata, **covariate)
        return scvi.model.SCVI(
            adata,
            n_hidden=self.n_hidden,
            n_latent=self.n_latent,
            n_layers=self.n_layers,
            dropout_rate=self.dropout_rate,
            dispersion=self.dispersion,
            gene_likelihood=self.gene_likelihood,
        )

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        import scvi

        self.train, self.groups = train, ConditionGroups.of(train)
        with quiet_scvi(self.threads):
            scvi.settings.seed = int(ctx.rng(0).integers(2**31))
            self.model = self._build(train)
            self.model.train(
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                train_size=self.train_size,
                plan_kwargs={"lr": self.lr},
                accelerator="cpu",
                devices=1,
                enable_progress_bar=False,
                logger=False,
                enable_checkpointing=False,
            )

    def n_parameters(self) -> int | None:
        return None if self.model is None else sum(p.numel() for p in self.model.module.parameters())

    # --- sampling -------------------------------------------------------------------------------
    def sample(self, n: int, conditions: Mapping[str, np.ndarray] | None, ctx: RunContext) -> np.ndarray:
        import torch

        wanted = self.groups.lookup(conditions, n)
        cells = np.empty(n, dtype=np.int64)  # the training cell each sample starts from
        rng = ctx.rng(1)
        for group in np.unique(wanted):
            at = np.flatnonzero(wanted == group)
            cells[at] = draw_without_replacement(self.groups.rows(int(group)), len(at), rng)
        with quiet_scvi(self.threads), torch.random.fork_rng(), torch.inference_mode():
            torch.manual_seed(int(ctx.rng(2).integers(2**31)))
            if self.latent == "posterior":
                out = self.model.posterior_predictive_sample(indices=cells.tolist(), n_samples=1, batch_size=512)
                out = out.todense()
            else:
                out = self._prior_sample(cells)
        return np.asarray(out).reshape(n, -1).astype(np.int64)

    def _prior_sample(self, cells: np.ndarray) -> np.ndarray:
        """``z ~ N(0, I)``, the library size and covariate of each drawn training cell, then the likelihood."""
        import torch

        module = self.model.module
        library = np.log(np.maximum(np.asarray(self.train.counts[cells].sum(axis=1)).ravel(), 1.0))
        codes = torch.as_tensor(self._covariate_codes()[cells][:, None], dtype=torch.float32)
        z = torch.randn(len(cells), self.n_latent)
        batch = codes if self.dispersion == "gene-batch" else torch.zeros_like(codes)
        outputs = module.generative(
            z=z,
            library=torch.as_tensor(library[:, None], dtype=torch.float32),
            batch_index=batch.long(),
            cat_covs=None if self.dispersion == "gene-batch" else codes.long(),
        )
        return outputs["px"].sample().numpy()

    def _covariate_codes(self) -> np.ndarray:
        """Each training cell's code of the covariate column, as scvi-tools registered it."""
        categories = self.model.adata.obs[CONDITION_COLUMN].cat.categories
        return categories.get_indexer(self.groups.groups.astype(str)).astype(np.int64)

    # --- persistence (arrays only: `countsbench.method_state`) ----------------------------------
    def state(self) -> dict[str, Any]:
        if self.model is None:
            return {}
        counts = self.train.dense()
        weights = {k: v.detach().cpu().numpy() for k, v in self.model.module.state_dict().items()}
        return {
            "counts": counts,
            "conditions": dict(self.train.conditions),
            "vocabularies": {k: list(v) for k, v in self.train.vocabularies.items()},
            "feature_names": list(self.train.feature_names),
            "weights": weights,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state:
            return
        import torch

        vocabularies = {k: tuple(v) for k, v in state["vocabularies"].items()}
        train = CountData(state["counts"], None, dict(state["conditions"]), vocabularies, tuple(state["feature_names"]))
        self.train, self.groups = train, ConditionGroups.of(train)
        with quiet_scvi(self.threads):
            self.model = self._build(train)
            self.model.module.load_state_dict({k: torch.as_tensor(v) for k, v in state["weights"].items()})
            self.model.module.eval()  # dropout off, as scvi-tools leaves a model after training
            self.model.is_trained = True
