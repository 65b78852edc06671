"""Image generation tasks: `digits` (embedded), `cifar10` and `celeba` (user-supplied data)."""

from countsbench.tasks.images import celeba, cifar10, digits  # noqa: F401
