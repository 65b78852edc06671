"""scIDPMs imputation (Zhang & Liu 2024; CSDI, Tashiro et al. 2021), SPEC section 7.

Training: each cell's observed entries (valid measurements) are split at random into conditioning
values (20%) and targets (80%), as in the scIDPMs code; the network learns the noise of the
targets given the conditioning values (loss over targets only). Values are ln(1 + x) standardised
per gene over observed training entries. Imputation: the task's observed entries condition, the
targets are sampled by the strided ancestral sampler (`schedule.py`) and mapped back to counts;
non-target entries are returned as given (the research code left them normalised, SPEC section 9
bug 9). ``n_samples = K`` draws K independent imputations, returned as (K, n, d).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from countsbench.config import AT_LEAST_ONE, POSITIVE, UNIT_INTERVAL, Range
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.methods.imputation_output import finish_imputation, observed_mask
from countsbench.methods.scidpm.network import GeneDenoiser
from countsbench.methods.scidpm.schedule import QuadraticSchedule, strided_step_coefficients
from countsbench.methods.torch_helpers import as_tensor, init_generator, minibatches, seeded_init_
from countsbench.registry import register_method


class LogStandardiser:
    """z = (ln(1 + x) - mean_j) / std_j over observed training entries, and its inverse."""

    def __init__(self, counts: np.ndarray, observed: np.ndarray, min_std: float = 0.1) -> None:
        logs = np.log1p(counts)
        n_obs = np.maximum(observed.sum(axis=0), 1)
        self.mean = np.where(observed, logs, 0).sum(axis=0) / n_obs
        var = np.where(observed, (logs - self.mean) ** 2, 0).sum(axis=0) / n_obs
        self.std = np.maximum(np.sqrt(var), min_std)
        top = np.log1p(np.where(observed, counts, 0).max(initial=0.0))
        #: Per-gene bounds of ln(1 + x) in [0, ln(1 + max training count)], standardised.
        self.low, self.high = -self.mean / self.std, (top - self.mean) / self.std

    def forward(self, counts: np.ndarray) -> np.ndarray:
        return (np.log1p(counts) - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return np.expm1(np.clip(values * self.std + self.mean, 0.0, 30.0))


@register_method(
    "scidpm",
    kinds=("imputation",),
    role="baseline",
    summary="scIDPMs: CSDI-style conditional DDPM with attention over genes.",
    paper="Zhang & Liu 2024, scIDPMs: single-cell RNA-seq imputation using diffusion probabilistic models, "
    "Briefings in Bioinformatics",
)
class ScidpmImputation(Method):
    profiles = {
        "quick": {"epochs": 20, "channels": 32, "layers": 2, "heads": 4, "dropout": 0.0, "sample_steps": 50},
        "paper": {"epochs": 200, "channels": 64, "layers": 4, "heads": 8, "dropout": 0.1, "sample_steps": 300},
    }
    inference_only = frozenset({"sample_steps", "eta", "clip_x0", "n_samples", "sample_batch_size"})
    hyperparameter_ranges = {
        **dict.fromkeys(
            ["epochs", "batch_size", "channels", "layers", "heads", "gene_dim", "step_dim", "diffusion_steps"],
            AT_LEAST_ONE,
        ),
        **dict.fromkeys(["sample_steps", "n_samples", "sample_batch_size"], AT_LEAST_ONE),
        **dict.fromkeys(["learning_rate", "beta_start"], POSITIVE),
        "dropout": Range(0, 1, high_open=True),
        "beta_end": Range(0, 1, low_open=True),
        "train_target_ratio": UNIT_INTERVAL,
        "eta": UNIT_INTERVAL,
    }

    def __init__(
        self,
        epochs: int = 200,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        channels: int = 64,
        layers: int = 4,
        heads: int = 8,
        gene_dim: int = 16,
        step_dim: int = 128,
        dropout: float = 0.1,
        diffusion_steps: int = 300,
        beta_start: float = 1e-4,
        beta_end: float = 0.5,
        train_target_ratio: float = 0.8,
        sample_steps: int = 300,
        eta: float = 1.0,
        clip_x0: bool = True,
        n_samples: int = 1,
        sample_batch_size: int = 64,
    ) -> None:
        """``sample_steps`` < ``diffusion_steps`` samples on a strided sub-grid (DDIM-style, ``eta``
        1 = ancestral); ``n_samples`` > 1 returns that many imputations (multiple imputation)."""
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.channels = channels
        self.layers = layers
        self.heads = heads
        self.gene_dim = gene_dim
        self.step_dim = step_dim
        self.dropout = dropout
        self.diffusion_steps = diffusion_steps
        self.beta_start = beta_start
        self.beta_end = beta_end
        self.train_target_ratio = train_target_ratio
        self.sample_steps = sample_steps
        self.eta = eta
        self.clip_x0 = clip_x0
        self.n_samples = n_samples
        self.sample_batch_size = sample_batch_size
        self.standardiser: LogStandardiser | None = None
        self.network: GeneDenoiser | None = None
        self.loss_curve: list[float] = []

    @property
    def schedule(self) -> QuadraticSchedule:
        return QuadraticSchedule(self.diffusion_steps, self.beta_start, self.beta_end)

    def n_parameters(self) -> int | None:
        return None if self.network is None else sum(p.numel() for p in self.network.parameters())

    def state(self) -> dict:
        """The standardiser's arrays and the denoiser's weights."""
        if self.network is None:
            return {}
        return {"standardiser": vars(self.standardiser), "network": self.network.state_dict(), "loss": self.loss_curve}

    def restore(self, state) -> None:
        if not state:
            return
        self.standardiser = LogStandardiser.__new__(LogStandardiser)
        vars(self.standardiser).update(state["standardiser"])
        d = len(self.standardiser.mean)
        network = GeneDenoiser(d, self.channels, self.layers, self.heads, self.gene_dim, self.step_dim, self.dropout)
        network.load_state_dict(state["network"])
        self.network = network.eval()
        self.loss_curve = list(state["loss"])

    def _conditioning_mask(self, observed: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
        """Keep round((1 - ratio) * n_observed) random observed entries of each cell as conditioning."""
        scores = torch.rand(observed.shape, generator=noise, device=observed.device) * observed
        n_targets = torch.round(observed.sum(dim=1) * self.train_target_ratio).long()
        ranks = scores.argsort(dim=1, descending=True).argsort(dim=1)
        return ((ranks >= n_targets[:, None]) & (observed > 0)).float()

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        counts, observed = train.dense().astype(np.float64), observed_mask(train)
        self.standardiser = LogStandardiser(counts, observed)
        n, d = counts.shape
        x_all = as_tensor(np.where(observed, self.standardiser.forward(counts), 0.0), ctx.device)
        m_all = as_tensor(observed, ctx.device)
        network = GeneDenoiser(d, self.channels, self.layers, self.heads, self.gene_dim, self.step_dim, self.dropout)
        seeded_init_(network, init_generator(ctx, 30))
        nn.init.zeros_(network.output.weight)
        self.network = network.to(ctx.device)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.learning_rate, weight_decay=1e-6)
        milestones = [int(0.75 * self.epochs), int(0.9 * self.epochs)]
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
        alpha_bar = torch.as_tensor(self.schedule.alpha_bar, dtype=torch.float32, device=ctx.device)
        noise, order = ctx.torch_generator(31), ctx.rng(32)
        self.network.train()
        for _ in ctx.progress(range(self.epochs), desc="scidpm"):
            total = 0.0
            for rows in minibatches(n, self.batch_size, order):
                index = torch.as_tensor(rows, device=ctx.device)
                x, m = x_all[index], m_all[index]
                cond = self._conditioning_mask(m, noise)
                target = m - cond
                steps = torch.randint(0, self.diffusion_steps, (len(rows),), generator=noise, device=ctx.device)
                a = alpha_bar[steps][:, None]
                eps = torch.randn(x.shape, generator=noise, device=ctx.device)
                noisy = a.sqrt() * x + (1 - a).sqrt() * eps
                with ctx.autocast():
                    predicted = self.network(cond * x, (1 - cond) * noisy, cond, steps).float()
                loss = (((eps - predicted) * target) ** 2).sum() / target.sum().clamp(min=1.0)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(rows)
            scheduler.step()
            self.loss_curve.append(total / n)
        self.network = self.network.cpu().eval()

    @torch.no_grad()
    def _sample(self, x: torch.Tensor, cond: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
        """One draw of every entry given the conditioning entries (strided ancestral sampling).

        The x0 estimate is clipped to the training range of ln(1 + x) (``clip_x0``): with
        abar_T ~ 1e-22 an unclipped estimate amplifies the network's error by 1/sqrt(abar_t).
        """
        alpha_bar = self.schedule.alpha_bar
        grid = self.schedule.sampling_grid(self.sample_steps)
        low = torch.as_tensor(self.standardiser.low, dtype=torch.float32, device=x.device)
        high = torch.as_tensor(self.standardiser.high, dtype=torch.float32, device=x.device)
        current = torch.randn(x.shape, generator=noise, device=x.device)
        for i, t in enumerate(grid):
            a_t = float(alpha_bar[t])
            a_prev = float(alpha_bar[grid[i + 1]]) if i + 1 < len(grid) else 1.0
            steps = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            eps = self.network(cond * x, (1 - cond) * current, cond, steps).float()
            if self.clip_x0:
                x0 = ((current - (1 - a_t) ** 0.5 * eps) / a_t**0.5).clamp(low, high)
                eps = (current - a_t**0.5 * x0) / (1 - a_t) ** 0.5
            c_x, c_eps, sigma = strided_step_coefficients(a_t, a_prev, self.eta)
            current = c_x * current + c_eps * eps
            if sigma > 0:
                current = current + sigma * torch.randn(x.shape, generator=noise, device=x.device)
        return current

    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        net = self.network.to(ctx.device)
        observed = observed_mask(data, target_mask)
        x_all = as_tensor(
            np.where(observed, self.standardiser.forward(data.dense().astype(np.float64)), 0.0), ctx.device
        )
        m_all = as_tensor(observed, ctx.device)
        noise = ctx.torch_generator(33)
        draws = np.empty((n_samples, *observed.shape))
        batches = [
            (k, rows)
            for k in range(n_samples)
            for rows in np.array_split(np.arange(data.n_samples), max(1, -(-data.n_samples // self.sample_batch_size)))
        ]
        for k, rows in ctx.progress(batches, desc="scidpm sampling"):
            index = torch.as_tensor(rows, device=ctx.device)
            with ctx.autocast():
                sample = self._sample(x_all[index], m_all[index], noise)
            draws[k, rows] = self.standardiser.inverse(sample.float().cpu().numpy().astype(np.float64))
        self.network = net.cpu()
        return finish_imputation(data, target_mask, draws[0] if n_samples == 1 else draws)
