"""`semcom` command line: one entry point, one sub-command module each.

Every module in COMMAND_MODULES exposes `register(subparsers)`, which adds its sub-command(s) and sets
`func` on the parser. Modules are imported only when listed here, so a missing optional stack (GNU
Radio on a GPU server, say) only affects the commands that need it.

Exit status: 0 the command did its job, 1 it ran but did not (`IncompleteRun`: nothing delivered,
frames lost beyond the tolerance), 2 bad input (argparse errors and the known bad-input errors in
`KNOWN_ERRORS`, reported as one line `semcom: <message>`). Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import PackageNotFoundError, version

from semcom.checkpoint import CheckpointError
from semcom.errors import IncompleteRun, UsageError
from semcom.flowgraphs import FlowgraphError

COMMAND_MODULES: tuple[str, ...] = ("semcom.loopback", "semcom.flowgraphs", "semcom.usrp.cli",
                                     "semcom.capture", "semcom.offsets", "semcom.lab",
                                     "semcom.send", "semcom.jscc.commands", "semcom.agents.commands",
                                     "semcom.adapt.commands", "semcom.lightweight.commands",
                                     "semcom.partial.commands", "semcom.network.commands")


# Bad input the user can fix (a file, an option, a missing checkpoint or flowgraph): one line, exit 2.
KNOWN_ERRORS: tuple[type[Exception], ...] = (UsageError, CheckpointError, FlowgraphError)


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), as pip sees it."""
    try:
        return version("gr-semcom")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semcom", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KNOWN_ERRORS as err:
        print(f"semcom: {err}", file=sys.stderr)
        return 2
    except IncompleteRun as err:
        print(f"semcom: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
