"""Built-in metrics: importing this package registers them."""

from metrics import distributional, pointwise  # noqa: F401
