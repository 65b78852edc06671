"""One module per ``countsbench`` subcommand; each exposes ``add_parser(subparsers)``.

A new subcommand is a new module here plus one line in `COMMANDS`.
"""

from countsbench.commands import evaluate, fit, impute, leaderboard, list_registry, prepare, run, sweep, sync, ui

COMMANDS = (list_registry, run, sweep, evaluate, leaderboard, ui, prepare, fit, impute, sync)
