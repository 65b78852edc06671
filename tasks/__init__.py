"""Built-in tasks: importing this package registers them."""

from countsbench.tasks import atlas, denoising, images, pbmc, toy  # noqa: F401
