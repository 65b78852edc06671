"""The one registry of methods, tasks and metrics, fed by decorators, entry points and plugins.

    @register_method("zero", kinds=("imputation",), role="control", summary="...")
    class Zero(Method): ...

    @register_task("pbmc_mcar", kind="imputation", summary="...")
    def pbmc_mcar() -> Task: ...

    @register_metric("rmse", kinds=("imputation",), direction="minimize", summary="...")
    def rmse(ev: Evaluation) -> float: ...

Built-in methods, tasks and metrics are imported explicitly (`load_builtins`); installed packages
register through the ``countsbench.plugins`` entry-point group; ``--plugin MODULE`` imports a user's
module. All of them write to `REGISTRY`, which the runner always reads.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

TASK_KINDS = ("imputation", "generation", "denoising")
ROLES = ("control", "baseline", "reference")
#: The role of a result scored from another tool's file (`countsbench.external`), never of a registered method.
EXTERNAL_ROLE = "external"
DIRECTIONS = ("minimize", "maximize", "target")
SAME_SIGNAL_WHEN = ("always", "equal")
ENTRY_POINT_GROUP = "countsbench.plugins"
BUILTIN_PACKAGES = ("countsbench.methods", "countsbench.tasks", "countsbench.metrics")


class RegistryError(LookupError):
    """An unknown name, a duplicate registration or an unsupported (method, task) pair."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class MethodSpec:
    name: str
    cls: type
    kinds: tuple[str, ...]
    role: str
    summary: str = ""
    paper: str = ""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    factory: Callable[[], Any]
    kind: str
    summary: str = ""
    paper: str = ""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable[..., Any]
    kinds: tuple[str, ...]
    direction: str
    target: float | str | None = None
    summary: str = ""
    paper: str = ""
    #: Bootstrap replicates at most (an expensive metric); None = as many as the evaluation asks for.
    max_resamples: int | None = None
    #: The logged metric this one duplicates or transforms (not a separate signal for the scaled score).
    same_signal_as: str | None = None
    #: "always" (a transform: log_mmd of mmd) or "equal" (only for rows whose values coincide with the
    #: other metric's on every seed: crps equals mae for single imputations).
    same_signal_when: str = "always"
    #: For a dict-valued metric, the keys that count in the scaled score (None: all); the other keys
    #: are components of these (per-dimension values summarised by their mean).
    scored_keys: tuple[str, ...] | None = None


S = TypeVar("S")


def _origin(spec: MethodSpec | TaskSpec | MetricSpec) -> str:
    """Where a registered object was defined: ``module.qualname``."""
    obj = spec.cls if isinstance(spec, MethodSpec) else spec.factory if isinstance(spec, TaskSpec) else spec.fn
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


@dataclass
class _Table(Generic[S]):
    what: str
    entries: dict[str, S] = field(default_factory=dict)

    def add(self, name: str, spec: S) -> None:
        """Register ``spec``; re-registering the same object path (a re-imported module) replaces it."""
        existing = self.entries.get(name)
        if existing is not None and _origin(existing) != _origin(spec):
            raise RegistryError(f"{self.what} {name!r} is already registered by {_origin(existing)}")
        self.entries[name] = spec

    def get(self, name: str) -> S:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.entries)) or "none"
            raise RegistryError(f"unknown {self.what} {name!r}; known {self.what}s: {known}") from None

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __iter__(self):
        return iter(self.entries[k] for k in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self.entries


class Registry:
    """Methods, tasks and metrics by name."""

    def __init__(self) -> None:
        self.methods: _Table[MethodSpec] = _Table("method")
        self.tasks: _Table[TaskSpec] = _Table("task")
        self.metrics: _Table[MetricSpec] = _Table("metric")
        self._builtins_loaded = False
        self._entry_points_loaded = False

    def check_supports(self, method: str, task: str) -> None:
        """Fail before any work when the method cannot do the task's kind."""
        method_spec, task_spec = self.methods.get(method), self.tasks.get(task)
        if task_spec.kind not in method_spec.kinds:
            raise RegistryError(
                f"method {method!r} does not support {task_spec.kind} tasks such as {task!r} "
                f"(it supports: {', '.join(method_spec.kinds)})"
            )

    def controls_for(self, task: str) -> list[str]:
        """The control methods (role ``control``) that can run the task's kind, by name."""
        kind = self.tasks.get(task).kind
        return [spec.name for spec in self.methods if spec.role == "control" and kind in spec.kinds]

    def load_builtins(self) -> None:
        if not self._builtins_loaded:
            for package in BUILTIN_PACKAGES:
                importlib.import_module(package)
            self._builtins_loaded = True

    def load_entry_points(self) -> None:
        if not self._entry_points_loaded:
            for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                entry_point.load()
            self._entry_points_loaded = True

    def load_all(self, plugins: tuple[str, ...] = ()) -> None:
        self.load_builtins()
        self.load_entry_points()
        for module in plugins:
            load_plugin(module)


REGISTRY = Registry()


def load_plugin(module: str) -> None:
    """Import a user's module so that its decorators register into `REGISTRY`."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and module.startswith(error.name):
            raise RegistryError(
                f"plugin module {module!r} cannot be imported: no module named {error.name!r}"
            ) from None
        raise


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise RegistryError(f"{what} {value!r} is not one of {', '.join(choices)}")


def _check_kinds(kinds: tuple[str, ...]) -> tuple[str, ...]:
    kinds = tuple(kinds)
    for kind in kinds:
        _check_choice(kind, TASK_KINDS, "task kind")
    return kinds


def register_method(
    name: str, *, kinds: tuple[str, ...], role: str = "baseline", summary: str = "", paper: str = ""
) -> Callable[[type], type]:
    """Register a `countsbench.method.Method` subclass under ``name``."""
    _check_choice(role, ROLES, "role")
    kinds = _check_kinds(kinds)

    def decorate(cls: type) -> type:
        from countsbench.method import Method

        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise RegistryError(f"@register_method({name!r}) must decorate a subclass of countsbench.Method")
        cls.name = name
        REGISTRY.methods.add(name, MethodSpec(name, cls, kinds, role, summary, paper))
        return cls

    return decorate


def register_task(name: str, *, kind: str, summary: str = "", paper: str = "") -> Callable:
    """Register a zero-argument factory (a function or a class) that builds a `Task`."""
    _check_choice(kind, TASK_KINDS, "task kind")

    def decorate(factory: Callable[[], Any]) -> Callable[[], Any]:
        REGISTRY.tasks.add(name, TaskSpec(name, factory, kind, summary, paper))
        return factory

    return decorate


def register_metric(
    name: str,
    *,
    kinds: tuple[str, ...],
    direction: str,
    target: float | str | None = None,
    summary: str = "",
    paper: str = "",
    max_resamples: int | None = None,
    same_signal_as: str | None = None,
    same_signal_when: str = "always",
    scored_keys: tuple[str, ...] | None = None,
) -> Callable:
    """Register ``fn(evaluation) -> float | dict[str, float]``; dict keys become ``name/key`` metrics.

    ``direction="target"`` metrics are best at ``target``: a number (bias at 0, a variance ratio at 1)
    or ``"truth"`` when the best value is the truth's own (zero share, maximum), which the metric then
    reports beside its value as ``name/truth``.

    ``max_resamples`` bounds the bootstrap replicates of an expensive metric (at least 2).
    ``same_signal_as`` names the logged metric that this one duplicates or transforms, ``always`` or
    only where the two are ``equal``, and ``scored_keys`` picks the keys of a dict-valued metric that
    stand for it: the leaderboard's scaled score counts each signal once (`countsbench.leaderboards.scaling`).
    """
    _check_choice(direction, DIRECTIONS, "direction")
    _check_choice(same_signal_when, SAME_SIGNAL_WHEN, "same_signal_when")
    kinds = _check_kinds(kinds)
    if (direction == "target") != (target is not None):
        raise RegistryError(f"metric {name!r}: a target value goes with direction='target' and only with it")
    if max_resamples is not None and max_resamples < 2:
        raise RegistryError(f"metric {name!r}: max_resamples must be at least 2, got {max_resamples}")
    if same_signal_as == name:
        raise RegistryError(f"metric {name!r} cannot be the same signal as itself")

    def decorate(fn: Callable) -> Callable:
        spec = MetricSpec(
            name, fn, kinds, direction, target, summary, paper, max_resamples, same_signal_as, same_signal_when,
            None if scored_keys is None else tuple(scored_keys),
        )  # fmt: skip
        REGISTRY.metrics.add(name, spec)
        return fn

    return decorate
