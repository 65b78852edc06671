"""``countsbench list [methods|tasks|metrics]``: the registry as tables with its metadata."""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path

from countsbench.commands.common import add_plugin, print_table
from countsbench.config import PROFILES, hyperparameters, resolve_config
from countsbench.registry import REGISTRY
from countsbench.task import default_data_dir


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list registered methods, tasks or metrics")
    parser.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=["methods", "tasks", "metrics", "all"],
        help="which part of the registry to list (default all)",
    )
    parser.add_argument(
        "--params",
        metavar="METHOD",
        help="list METHOD's hyperparameters: type, default, accepted range, and with --task each "
        "profile's default for that task (what `--set KEY=VALUE` can change)",
    )
    parser.add_argument("--task", help="with --params: resolve the profile's defaults for this task")
    parser.add_argument(
        "--profile", choices=PROFILES, help="with --params and --task: only this profile's defaults (default: each)"
    )
    parser.add_argument("--data-dir", type=Path, help="with --task: where user-supplied task data lives")
    add_plugin(parser)
    parser.set_defaults(func=main)


def describe_type(annotation: object) -> str:
    """``int``, ``float | None``, ``one of 'a', 'b'``: the type a ``--set`` value must have."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    if options:
        return " | ".join(describe_type(option) for option in options)
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(annotation)))
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def parameter_rows(
    method: str, task: str | None, profile: str | None = None, data_dir: Path | None = None
) -> tuple[list[str], list[list[str]]]:
    """The hyperparameter table of ``method``: type, default, accepted range, and with ``task`` the
    defaults each profile (or just ``profile``) resolves for it, which is what a run on it uses."""
    spec = REGISTRY.methods.get(method)
    known = hyperparameters(spec.cls)
    header = ["hyperparameter", "type", "default", "range", "inference only"]
    resolved: dict[str, dict] = {}
    if task is not None:
        task_spec = REGISTRY.tasks.get(task)
        REGISTRY.check_supports(method, task)
        instance = task_spec.factory()
        info = instance.info(instance.load(data_dir or default_data_dir()), task)  # defaults depend on the data
        for name in [profile] if profile else PROFILES:
            resolved[name] = resolve_config(spec.cls, name, spec.cls.defaults(name, info), {})
        header[3:3] = [f"{task} ({name})" for name in resolved]
    rows = []
    for name, hp in known.items():
        row = [
            name,
            describe_type(hp.annotation),
            repr(hp.default),
            hp.range.describe() if hp.range is not None else "",
            "yes" if name in spec.cls.inference_only else "",
        ]
        row[3:3] = [repr(values[name]) for values in resolved.values()]
        rows.append(row)
    return header, rows


def main(args: argparse.Namespace) -> int:
    if args.params:
        header, rows = parameter_rows(args.params, args.task, args.profile, args.data_dir)
        print_table(f"{args.params} hyperparameters", header, rows)
        return 0
    if args.what in ("methods", "all"):
        rows = [[s.name, s.role, ",".join(s.kinds), s.summary, s.paper] for s in REGISTRY.methods]
        print_table("methods", ["name", "role", "task kinds", "summary", "paper"], rows)
    if args.what in ("tasks", "all"):
        rows = [[s.name, s.kind, s.summary, s.paper] for s in REGISTRY.tasks]
        print_table("tasks", ["name", "kind", "summary", "paper"], rows)
    if args.what in ("metrics", "all"):
        rows = [
            [s.name, s.direction if s.target is None else f"target {s.target}", ",".join(s.kinds), s.summary]
            for s in REGISTRY.metrics
        ]
        print_table("metrics", ["name", "direction", "task kinds", "summary"], rows)
    return 0
