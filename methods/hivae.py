"""HI-VAE (Nazabal et al. 2020) with a Poisson or a Gaussian likelihood, in PyTorch (SPEC section 7).

Generative model: s ~ Cat(1/K), z | s ~ N(mu(s), I), per-gene parameters from a shared
representation y = g(z) and s: theta_j = <y_j, w_j> + <s, u_j> + b_j. Inference: q(s | x_obs) by a
Gumbel-softmax (temperature annealed 1 -> 1e-3 as in the original code), q(z | x_obs, s) Gaussian.
Missing inputs are zeros after normalisation and the ELBO sums the likelihood over OBSERVED
entries only (valid, non-target); scRNA dropouts count as missing.

- ``hivae_poisson``: y = x + 1 ~ Poisson(softplus(theta)) (the shift used by the paper's code),
  inputs ln(1 + x) standardised per gene; imputation E[x] = rate - 1.
- ``hivae_gaussian``: standardised counts ~ N(theta, exp(logvar)); imputation the mean.
Single imputations use the posterior mode of s and mean of z (the HI-VAE convention); multiple
imputations draw s, z and x.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from countsbench.config import AT_LEAST_ONE, POSITIVE
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.methods.imputation_output import finish_imputation, observed_mask
from countsbench.methods.torch_helpers import as_tensor, init_generator, minibatches, seeded_init_
from countsbench.registry import register_method

PAPER = (
    "Nazabal, Olmos, Ghahramani & Valera 2020, Handling incomplete heterogeneous data using VAEs, Pattern Recognition"
)


class HiVae(nn.Module):
    """The HI-VAE network: categorical s, Gaussian z, per-gene likelihood heads."""

    def __init__(self, d: int, z_dim: int, s_dim: int, y_dim: int, n_outputs: int) -> None:
        super().__init__()
        self.d, self.s_dim, self.y_dim = d, s_dim, y_dim
        self.s_logits = nn.Linear(d, s_dim)
        self.z_mean = nn.Linear(d + s_dim, z_dim)
        self.z_logvar = nn.Linear(d + s_dim, z_dim)
        self.prior_mean = nn.Linear(s_dim, z_dim)
        self.y_layer = nn.Linear(z_dim, d * y_dim)
        self.head_y = nn.Parameter(torch.empty(n_outputs, d, y_dim))
        self.head_s = nn.Parameter(torch.empty(n_outputs, d, s_dim))
        self.head_bias = nn.Parameter(torch.zeros(n_outputs, d))

    def encode(self, x: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xs = torch.cat([x, s], dim=1)
        return self.z_mean(xs), self.z_logvar(xs).clamp(-15.0, 15.0)

    def decode(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """(n_outputs, n, d) likelihood parameters."""
        y = self.y_layer(z).view(-1, self.d, self.y_dim)
        return (
            torch.einsum("ndk,odk->ond", y, self.head_y)
            + torch.einsum("ns,ods->ond", s, self.head_s)
            + self.head_bias[:, None]
        )


class Likelihood:
    """Input normalisation, observed-entry log-likelihood, and the estimate used to impute."""

    n_outputs: ClassVar[int] = 1

    def __init__(self, counts: np.ndarray, observed: np.ndarray) -> None:
        values = self.inputs(counts)
        n_obs = np.maximum(observed.sum(axis=0), 1)
        self.mean = np.where(observed, values, 0).sum(axis=0) / n_obs
        var = np.where(observed, (values - self.mean) ** 2, 0).sum(axis=0) / n_obs
        self.std = np.where(var > 1e-12, np.sqrt(var), 1.0)

    def inputs(self, counts: np.ndarray) -> np.ndarray:
        return counts

    def encoder_input(self, counts: np.ndarray, observed: np.ndarray) -> np.ndarray:
        return np.where(observed, (self.inputs(counts) - self.mean) / self.std, 0.0)

    def initial_bias(self, counts: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """(n_outputs, d) head biases that start the decoder at each gene's observed average."""
        return np.zeros((self.n_outputs, counts.shape[1]))


class PoissonLikelihood(Likelihood):
    def inputs(self, counts: np.ndarray) -> np.ndarray:
        return np.log1p(counts)

    def target(self, counts: np.ndarray) -> np.ndarray:
        return counts + 1.0

    def initial_bias(self, counts: np.ndarray, observed: np.ndarray) -> np.ndarray:
        mean = np.where(observed, counts + 1.0, 0).sum(axis=0) / np.maximum(observed.sum(axis=0), 1)
        return np.log(np.expm1(np.maximum(mean, 1.0)))[None]  # softplus^-1 of the mean of x + 1

    def log_prob(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        rate = F.softplus(params[0]).clamp(min=1e-6)
        return target * torch.log(rate) - rate - torch.lgamma(target + 1)

    def estimate(self, params: torch.Tensor, generator: torch.Generator | None) -> np.ndarray:
        rate = F.softplus(params[0]).clamp(min=1e-6)
        value = rate if generator is None else torch.poisson(rate, generator=generator)
        return value.cpu().numpy().astype(np.float64) - 1.0


class GaussianLikelihood(Likelihood):
    n_outputs: ClassVar[int] = 2

    def target(self, counts: np.ndarray) -> np.ndarray:
        return (counts - self.mean) / self.std

    def log_prob(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mean, logvar = params[0], params[1].clamp(-15.0, 15.0)
        return -0.5 * (math.log(2 * math.pi) + logvar + (target - mean) ** 2 / logvar.exp())

    def estimate(self, params: torch.Tensor, generator: torch.Generator | None) -> np.ndarray:
        value = params[0]
        if generator is not None:
            std = (0.5 * params[1].clamp(-15.0, 15.0)).exp()
            value = value + std * torch.randn(value.shape, generator=generator, device=value.device)
        return value.cpu().numpy().astype(np.float64) * self.std + self.mean


class HiVaeImputation(Method):
    """Shared HI-VAE method; subclasses choose the likelihood."""

    likelihood_cls: ClassVar[type[Likelihood]] = PoissonLikelihood
    profiles = {"quick": {"epochs": 100}, "paper": {"epochs": 100}}
    hyperparameter_ranges = {
        **dict.fromkeys(["epochs", "batch_size", "z_dim", "s_dim", "y_dim"], AT_LEAST_ONE),
        "learning_rate": POSITIVE,
    }

    def __init__(
        self,
        epochs: int = 100,
        batch_size: int = 128,
        z_dim: int = 10,
        s_dim: int = 10,
        y_dim: int = 5,
        learning_rate: float = 1e-3,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.z_dim = z_dim
        self.s_dim = s_dim
        self.y_dim = y_dim
        self.learning_rate = learning_rate
        self.likelihood: Likelihood | None = None
        self.network: HiVae | None = None
        self.elbo_curve: list[float] = []

    def n_parameters(self) -> int | None:
        return None if self.network is None else sum(p.numel() for p in self.network.parameters())

    def state(self) -> dict:
        """The likelihood's arrays (its standardisation) and the network's weights."""
        if self.network is None:
            return {}
        return {"likelihood": vars(self.likelihood), "network": self.network.state_dict(), "elbo": self.elbo_curve}

    def restore(self, state) -> None:
        if not state:
            return
        self.likelihood = self.likelihood_cls.__new__(self.likelihood_cls)
        vars(self.likelihood).update(state["likelihood"])
        d = len(self.likelihood.mean)
        self.network = HiVae(d, self.z_dim, self.s_dim, self.y_dim, self.likelihood_cls.n_outputs)
        self.network.load_state_dict(state["network"])
        self.network.eval()
        self.elbo_curve = list(state["elbo"])

    def _elbo(self, x: torch.Tensor, target: torch.Tensor, m: torch.Tensor, tau: float, noise: torch.Generator):
        net = self.network
        log_pi = F.log_softmax(net.s_logits(x), dim=1)
        gumbel = -torch.log(-torch.log(torch.rand(log_pi.shape, generator=noise, device=x.device).clamp(1e-10, 1.0)))
        s = F.softmax((log_pi + gumbel) / tau, dim=1)
        mu, logvar = net.encode(x, s)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=noise, device=x.device)
        log_px = (self.likelihood.log_prob(net.decode(z, s), target) * m).sum(dim=1)
        kl_z = 0.5 * (logvar.exp() + (net.prior_mean(s) - mu) ** 2 - logvar - 1).sum(dim=1)
        kl_s = (log_pi.exp() * log_pi).sum(dim=1) + math.log(net.s_dim)
        return (log_px - kl_z - kl_s).mean()

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        counts, observed = train.dense().astype(np.float64), observed_mask(train)
        self.likelihood = self.likelihood_cls(counts, observed)
        n, d = counts.shape
        x_all = as_tensor(self.likelihood.encoder_input(counts, observed), ctx.device)
        t_all = as_tensor(self.likelihood.target(counts), ctx.device)
        m_all = as_tensor(observed, ctx.device)
        network = HiVae(d, self.z_dim, self.s_dim, self.y_dim, self.likelihood_cls.n_outputs)
        seeded_init_(network, init_generator(ctx, 20))
        with torch.no_grad():
            network.head_bias.copy_(torch.as_tensor(self.likelihood.initial_bias(counts, observed)))
        self.network = network.to(ctx.device)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.learning_rate)
        noise, order = ctx.torch_generator(21), ctx.rng(22)
        self.network.train()
        for epoch in ctx.progress(range(self.epochs), desc=type(self).__name__):
            tau = max(1.0 - 0.01 * epoch, 1e-3)
            total = 0.0
            for rows in minibatches(n, self.batch_size, order):
                index = torch.as_tensor(rows, device=ctx.device)
                elbo = self._elbo(x_all[index], t_all[index], m_all[index], tau, noise)
                optimizer.zero_grad(set_to_none=True)
                (-elbo).backward()
                optimizer.step()
                total += float(elbo.detach()) * len(rows)
            self.elbo_curve.append(total / n)
        self.network = self.network.cpu().eval()

    @torch.no_grad()
    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        net = self.network.to(ctx.device)
        observed = observed_mask(data, target_mask)
        x = as_tensor(self.likelihood.encoder_input(data.dense().astype(np.float64), observed), ctx.device)
        log_pi = F.log_softmax(net.s_logits(x), dim=1)
        if n_samples == 1:
            s = F.one_hot(log_pi.argmax(dim=1), net.s_dim).float()
            estimate = self.likelihood.estimate(net.decode(net.encode(x, s)[0], s), None)
        else:
            noise = ctx.torch_generator(23)
            draws = []
            for _ in range(n_samples):
                s = F.one_hot(torch.multinomial(log_pi.exp(), 1, generator=noise)[:, 0], net.s_dim).float()
                mu, logvar = net.encode(x, s)
                z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=noise, device=x.device)
                draws.append(self.likelihood.estimate(net.decode(z, s), noise))
            estimate = np.stack(draws)
        self.network = net.cpu()
        return finish_imputation(data, target_mask, estimate)


@register_method(
    "hivae_poisson",
    kinds=("imputation",),
    role="baseline",
    summary="HI-VAE with a Poisson likelihood on x + 1; ELBO over observed entries.",
    paper=PAPER,
)
class HiVaePoisson(HiVaeImputation):
    likelihood_cls = PoissonLikelihood


@register_method(
    "hivae_gaussian",
    kinds=("imputation",),
    role="baseline",
    summary="HI-VAE with a Gaussian likelihood on standardised counts; ELBO over observed entries.",
    paper=PAPER,
)
class HiVaeGaussian(HiVaeImputation):
    likelihood_cls = GaussianLikelihood
