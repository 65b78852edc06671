"""countsbench: a benchmarking suite for generative models of count data."""

from countsbench import source_layout  # noqa: F401  (first: countsbench.methods etc. in a checkout)
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.registry import REGISTRY, register_method, register_metric, register_task
from countsbench.task import Task, TaskData, TaskInfo

__version__ = "0.1.0"


def __getattr__(name: str):
    """``countsbench.api`` without an explicit import (loaded on first use: it imports anndata)."""
    if name == "api":
        import importlib

        return importlib.import_module("countsbench.api")
    raise AttributeError(f"module 'countsbench' has no attribute {name!r}")


__all__ = [
    "REGISTRY",
    "api",
    "CountData",
    "Method",
    "RunContext",
    "Task",
    "TaskData",
    "TaskInfo",
    "__version__",
    "register_method",
    "register_metric",
    "register_task",
]
