"""FID, Inception Score and class accuracy of generated images (SPEC section 8; paper section 4.2).

torchmetrics computes FID and IS from the features of the task's extractor
(`countsbench.metrics.images.extractor`), handed over through a pass-through module so that each image set goes
through the extractor once and real-image features are cached (`countsbench.metrics.images.features`).
- ``fid``: Frechet distance between Gaussians fitted to the real (scored split) and generated features.
- ``inception_score``: ``exp(E_x KL(p(y|x) || p(y)))`` over all generated samples in one split
  (deterministic; 1 <= IS <= number of classes).
- ``class_accuracy``: the share of conditional samples the extractor's classifier assigns to the class
  they were asked for (the runner asks for the scored split's conditions, row by row).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from countsbench.evaluation import Evaluation
from countsbench.metrics.images.extractor import extractor_for
from countsbench.metrics.images.features import generated_features, real_features
from countsbench.registry import RegistryError, register_metric

GENERATION = ("generation",)


class PrecomputedFeatures(nn.Module):
    """torchmetrics' feature hook for features that are already computed: returns its input."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def frechet_distance(real: np.ndarray, generated: np.ndarray) -> float:
    """FID between two feature sets, computed by torchmetrics in float64 (rounding below 0 reads as 0)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=PrecomputedFeatures(real.shape[1]), normalize=True)
    metric.set_dtype(torch.float64)
    metric.update(torch.as_tensor(real, dtype=torch.float64), real=True)
    metric.update(torch.as_tensor(generated, dtype=torch.float64), real=False)
    return max(float(metric.compute()), 0.0)


def inception_score(logits: np.ndarray) -> float:
    """IS of one split of logits, computed by torchmetrics."""
    import warnings

    from torchmetrics.image.inception import InceptionScore

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        warnings.filterwarnings("ignore", message=".*degrees of freedom.*")  # the std of one split
        metric = InceptionScore(feature=PrecomputedFeatures(logits.shape[1]), splits=1)
        metric.update(torch.as_tensor(logits, dtype=torch.float64))
        with torch.random.fork_rng():  # torchmetrics permutes the rows (irrelevant for one split)
            torch.manual_seed(0)
            mean, _ = metric.compute()
    return float(mean)


@register_metric(
    "fid",
    kinds=GENERATION,
    direction="minimize",
    summary="Frechet distance of extractor features, generated vs the scored split (torchmetrics).",
    paper="FID",
)
def fid(ev: Evaluation) -> float:
    return frechet_distance(real_features(ev)[0], generated_features(ev)[0])


@register_metric(
    "inception_score",
    kinds=GENERATION,
    direction="maximize",
    summary="Inception Score of the generated samples from the extractor's class logits (one split).",
    paper="IS",
)
def inception_score_metric(ev: Evaluation) -> float:
    return inception_score(generated_features(ev)[1])


@register_metric(
    "class_accuracy",
    kinds=GENERATION,
    direction="maximize",
    summary="Share of conditional samples that the task's classifier assigns to the class asked for.",
)
def class_accuracy(ev: Evaluation) -> float:
    extractor = extractor_for(ev)
    if extractor.label_key is None or extractor.label_key not in ev.truth.conditions:
        raise RegistryError("class_accuracy needs a feature extractor that classifies the task's own labels")
    asked = ev.truth.conditions[extractor.label_key]
    predicted = generated_features(ev)[1].argmax(axis=1)
    return float(np.mean(predicted == asked))
