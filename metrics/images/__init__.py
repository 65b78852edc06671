"""Image metrics (FID, IS, class accuracy) with a pluggable feature extractor."""

from countsbench.metrics.images import scores  # noqa: F401
