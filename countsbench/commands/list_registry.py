"""``countsbench list [methods|tasks|metrics]``: the registry as tables with its metadata."""

from __future__ import annotations

import argparse

from countsbench.commands.common import add_plugin, print_table
from countsbench.registry import REGISTRY


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list registered methods, tasks or metrics")
    parser.add_argument("what", nargs="?", default="all", choices=["methods", "tasks", "metrics", "all"])
    add_plugin(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
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
