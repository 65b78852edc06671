"""Built-in metrics: importing this package registers them."""

from metrics import distributional, downstream, generation, images, multiple, pointwise, scfid  # noqa: F401
