"""`semcom` command line: one entry point, one sub-command module each.

Every module in COMMAND_MODULES exposes `register(subparsers)`, which adds its sub-command(s) and sets
`func` on the parser. Modules are imported only when listed here, so a missing optional stack (GNU
Radio on a GPU server, say) only affects the commands that need it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES: tuple[str, ...] = ("semcom.loopback", "semcom.usrp.cli", "semcom.capture",
                                     "semcom.offsets", "semcom.lab",
                                     "semcom.send", "semcom.jscc.commands", "semcom.agents.commands",
                                     "semcom.adapt.commands", "semcom.lightweight.commands",
                                     "semcom.partial.commands", "semcom.network.commands")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semcom", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
