"""countsbench: a benchmarking suite for generative models of count data."""

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.registry import REGISTRY, register_method, register_metric, register_task
from countsbench.task import Task, TaskData, TaskInfo

__version__ = "0.1.0"

__all__ = [
    "REGISTRY",
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
