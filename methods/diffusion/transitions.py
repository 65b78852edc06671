"""Per-step transition probabilities shared by the binomial (CountsDiff) and masked (ReMDM) reverse
processes (SPEC sections 4 and 7; paper Prop. 3.2).

Both processes move mass from the absorbing state (0 counts, or the mask token) back to the data with
keep-probability ``alpha``; an item already out of it is sent back (death, re-masking) with probability
``sigma`` in ``[0, sigma_max]``, and the birth (unmask) probability that keeps the marginals is ``beta``.
"""

from __future__ import annotations


def max_attrition(alpha_t: float, alpha_s: float) -> float:
    """``sigma_max = min(1, (1 - alpha_s) / alpha_t)`` (1 at alpha_t = 0), the largest sigma with beta <= 1."""
    return 1.0 if alpha_t <= 0.0 else min(1.0, (1.0 - alpha_s) / alpha_t)


def birth_probability(alpha_t: float, alpha_s: float, sigma: float) -> float:
    """``beta = (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)``, clipped to [0, 1] against rounding."""
    return min(1.0, max(0.0, (alpha_s - (1.0 - sigma) * alpha_t) / (1.0 - alpha_t)))
