"""Built-in tasks: importing this package registers them."""

from countsbench.tasks import atlas, denoising, images, pbmc, scrna_generation, toy  # noqa: F401
