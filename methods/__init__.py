"""Built-in methods: importing this package registers them (explicit discovery, no scanning)."""

from methods import naive  # noqa: F401
