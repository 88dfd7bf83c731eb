"""`semcom partial`: placeholder registered while the package is built (it exits with status 2)."""

from __future__ import annotations

import argparse
import sys


def _not_built(args: argparse.Namespace) -> int:
    print("semcom partial: not built yet", file=sys.stderr)
    return 2


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("partial", help="(being built)")
    p.set_defaults(func=_not_built)
