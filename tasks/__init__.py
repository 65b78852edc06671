"""Built-in tasks: importing this package registers them."""

from tasks import pbmc  # noqa: F401
