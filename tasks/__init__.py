"""Built-in tasks: importing this package registers them."""

from countsbench.tasks import atlas, images, pbmc, toy  # noqa: F401
