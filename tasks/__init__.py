"""Built-in tasks: importing this package registers them."""

from tasks import atlas, images, pbmc, toy  # noqa: F401
