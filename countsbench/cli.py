"""The ``countsbench`` command line; each subcommand lives in `countsbench.commands`."""

from __future__ import annotations

import argparse
import sys

from countsbench.commands import COMMANDS
from countsbench.commands.common import add_plugin
from countsbench.config import ConfigError
from countsbench.context import DeviceError
from countsbench.data import CountDataError
from countsbench.registry import REGISTRY, RegistryError
from countsbench.results import ResultsDirError
from countsbench.runner import TrackingError
from countsbench.safe_io import UnsafeFileError
from countsbench.task import TaskDataMissing

#: Errors caused by the user's input or environment: reported in one line, exit code 2.
USER_ERRORS = (
    RegistryError,
    ConfigError,
    CountDataError,
    TaskDataMissing,
    DeviceError,
    ResultsDirError,
    TrackingError,
    UnsafeFileError,
)


class Parser(argparse.ArgumentParser):
    """argparse, its errors in one ``countsbench: error: ...`` line (exit 2) pointing at ``--help``."""

    def error(self, message: str):  # type: ignore[override]
        print(f"countsbench: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="countsbench", description="Benchmark generative models of count data; results go to MLflow.")
    add_plugin(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        REGISTRY.load_all(tuple(args.plugin))
        return args.func(args)
    except USER_ERRORS as error:
        print(f"countsbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("countsbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
