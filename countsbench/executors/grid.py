"""A sweep's grid: methods x tasks x seeds x configs, from command-line options or a YAML file.

``--grid key=v1,v2`` (repeatable) crosses the values of every key; ``method.key=...`` scopes a key to
one method, so methods with different hyperparameters can be tuned in one sweep. Each expanded cell
is a `CellRequest`; its identity (and so the resume logic) is the runner's cell hash.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from countsbench.config import SEED_RANGE, ConfigError, parse_assignments
from countsbench.runner import CellRequest


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs; `expand` turns it into cell requests."""

    methods: tuple[str, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    profile: str = "quick"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    device: str = "auto"


def parse_names(text: str | Sequence[str], what: str) -> tuple[str, ...]:
    """``"a,b"`` (or a list) -> ``("a", "b")``; an empty list is an error."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
    if not names:
        raise ConfigError(f"no {what} given")
    return names


def parse_seeds(text: str | int | Sequence[int]) -> tuple[int, ...]:
    """``"0-4"`` -> 0..4, ``"0,3,7"``, ``"0-2,5"``, or a list of integers from a YAML file."""
    if isinstance(text, int):
        return (text,)
    if not isinstance(text, str):
        return tuple(dict.fromkeys(parse_seeds(str(s))[0] for s in text))
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        try:
            span = range(int(first), int(last) + 1) if dash else range(int(part), int(part) + 1)
        except ValueError:
            raise ConfigError(f"--seeds expects integers or ranges like 0-4, got {text!r}") from None
        if not span:
            raise ConfigError(f"--seeds range {part!r} is empty")
        if span[0] not in SEED_RANGE or span[-1] not in SEED_RANGE:
            raise ConfigError(f"--seeds {part!r}: seeds must be integers {SEED_RANGE.describe()}")
        seeds.extend(span)
    return tuple(dict.fromkeys(seeds))


def parse_grid(assignments: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["k=1,2", "m.j=a"]`` -> ``{"k": ("1", "2"), "m.j": ("a",)}``."""
    grid = {}
    for key, values in parse_assignments(assignments).items():
        grid[key] = tuple(v.strip() for v in values.split(","))
        if not all(grid[key]):
            raise ConfigError(f"--grid {key}: empty value in {values!r}")
    return grid


def load_sweep_file(path: Path) -> dict[str, Any]:
    """A YAML grid with the command's option names as keys, for example::

    methods: [zero, mean]
    tasks: [pbmc_mcar]
    seeds: 0-2
    set: {condition_keys: all}
    grid: {conditional_mean.condition_keys: [all, bulk_labels]}
    """
    import yaml

    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read sweep file {path}: {error}") from None
    known = {"methods", "tasks", "seeds", "profile", "set", "grid", "device"}
    if not isinstance(loaded, dict) or set(loaded) - known:
        raise ConfigError(f"sweep file {path} must be a mapping with keys among {sorted(known)}")
    return loaded


def _values(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list | tuple) else tuple(str(value).split(","))


def spec_from_file(loaded: Mapping[str, Any]) -> SweepSpec:
    for key in ("methods", "tasks"):
        if key not in loaded:
            raise ConfigError(f"sweep file needs {key!r}")
    return SweepSpec(
        methods=parse_names(loaded["methods"], "methods"),
        tasks=parse_names(loaded["tasks"], "tasks"),
        seeds=parse_seeds(loaded.get("seeds", 0)),
        profile=str(loaded.get("profile", "quick")),
        overrides=dict(loaded.get("set") or {}),
        grid={str(k): _values(v) for k, v in (loaded.get("grid") or {}).items()},
        device=str(loaded.get("device", "auto")),
    )


def method_grid(grid: Mapping[str, tuple[Any, ...]], method: str, methods: Sequence[str]) -> dict[str, tuple]:
    """The grid keys that apply to ``method``: unscoped keys and ``method.key`` ones."""
    scoped = {}
    for key, values in grid.items():
        owner, dot, name = key.partition(".")
        if dot and owner in methods:
            if owner == method:
                scoped[name] = values
        else:
            scoped[key] = values
    return scoped


def method_configs(spec: SweepSpec, method: str) -> list[dict[str, Any]]:
    """Every override set of ``method``: the fixed ``--set`` values crossed with its grid."""
    grid = method_grid(spec.grid, method, spec.methods)
    overlap = sorted(set(grid) & set(spec.overrides))
    if overlap:
        raise ConfigError(f"{', '.join(overlap)} given both in --set and --grid")
    keys = sorted(grid)
    return [
        dict(spec.overrides, **dict(zip(keys, combo, strict=True))) for combo in itertools.product(*map(grid.get, keys))
    ]


def expand(spec: SweepSpec, split: str = "test") -> list[CellRequest]:
    """All cells, in a stable order: task, method, config, seed."""
    requests = []
    for task in spec.tasks:
        for method in spec.methods:
            for overrides in method_configs(spec, method):
                for seed in spec.seeds:
                    requests.append(CellRequest(method, task, seed, spec.profile, overrides, spec.device, split))
    return requests
