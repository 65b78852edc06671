"""Built-in tasks: importing this package registers them."""

from tasks import atlas, pbmc, toy  # noqa: F401
