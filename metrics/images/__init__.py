"""Image metrics (FID, IS, class accuracy) with a pluggable feature extractor."""

from metrics.images import scores  # noqa: F401
