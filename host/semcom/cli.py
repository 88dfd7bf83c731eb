"""`semcom` command line: one entry point, one sub-command module each.

Every module in COMMAND_MODULES exposes `register(subparsers)`, which adds its sub-command(s) and sets
`func` on the parser. Modules are imported only when listed here, so a missing optional stack (GNU
Radio on a GPU server, say) only affects the commands that need it.

Exit status: 0 the command did its job, 1 it ran but did not (`IncompleteRun`: nothing delivered,
frames lost beyond the tolerance), 2 bad input (argparse errors and the known bad-input errors in
`known_errors()`, reported as one line `semcom: <message>`). Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import PackageNotFoundError, version

from semcom.errors import IncompleteRun, UsageError
from semcom.flowgraphs import FlowgraphError

COMMAND_MODULES: tuple[str, ...] = ("semcom.loopback", "semcom.flowgraphs", "semcom.usrp.cli",
                                     "semcom.capture", "semcom.offsets", "semcom.lab",
                                     "semcom.send", "semcom.jscc.commands", "semcom.agents.commands",
                                     "semcom.adapt.commands", "semcom.lightweight.commands",
                                     "semcom.partial.commands", "semcom.network.commands")
# The top-level command(s) each module registers and their one-line help (tests/test_cli_errors.py checks
# both against the modules): `semcom <command> ...` imports only that module, so `semcom loopback` does
# not load the language-model stacks and one command's missing extra does not break the others;
# `semcom --help` and `semcom --version` import none (the modules import torch: 1.5 s).
COMMANDS: dict[str, tuple[str, str]] = {
    "loopback": ("semcom.loopback", "stream tensors through the loopback flowgraph"),
    "grc": ("semcom.flowgraphs", "open flowgraphs in GNU Radio Companion with this install's blocks "
                                 "(nothing global)"),
    "usrp": ("semcom.usrp.cli", "USRP device tools"),
    "replay": ("semcom.capture", "replay a SigMF recording through the OFAT receiver, streamed"),
    "record-loopback": ("semcom.capture", "record a loopback run as a SigMF regression fixture"),
    "offsets": ("semcom.offsets", "per-channel phase and timing offsets: absorbed vs drifting"),
    "lab": ("semcom.lab", "run a USRP lab bench flowgraph with a run report"),
    "send": ("semcom.send", "run a trained model over the torch channel and the flowgraph"),
    "jscc": ("semcom.jscc.commands", "DeepJSCC vs JPEG: train/load, PSNR vs SNR (CSV + PNG)"),
    "train": ("semcom.agents.commands", "train the agents (small default) or DeepJSCC"),
    "eval": ("semcom.agents.commands", "evaluate trained agents or DeepJSCC"),
    "adapt": ("semcom.adapt.commands", "cGAN channel + online DeepJSCC fine-tuning as the SNR drops"),
    "lightweight": ("semcom.lightweight.commands", "pruned / int8 / distilled DeepJSCC encoders for edge "
                    "agents: size, MACs, PSNR (CSV+PNG+JSON), flowgraph check"),
    "partial": ("semcom.partial.commands", "partial sampling with receiver feedback: accuracy vs source "
                "size, sampling size and rounds (Fig. 6; CSV + PNG + JSON)"),
    "network": ("semcom.network.commands", "multi-cell semantic network, hierarchical DRL"),
}
# Which pip extra brings a third-party package a command module imports (pyproject.toml).
EXTRA_OF = {"torch": "host", "tqdm": "host", "matplotlib": "host", "transformers": "hf", "peft": "hf"}


class MissingExtra(UsageError):
    """A command whose third-party dependencies are not installed (a base `pip install`)."""

    def __init__(self, command: str, err: ModuleNotFoundError) -> None:
        extra = EXTRA_OF.get(str(err.name).split(".")[0], "all")
        super().__init__(f"`semcom {command}` needs the Python package {err.name!r}, which is not installed: "
                         f"pip install 'gr-semcom[{extra}]'")


# Bad input the user can fix (a file, an option, a missing checkpoint or flowgraph): one line, exit 2.
KNOWN_ERRORS: tuple[type[Exception], ...] = (UsageError, FlowgraphError)


def known_errors() -> tuple[type[Exception], ...]:
    """KNOWN_ERRORS plus semcom.checkpoint.CheckpointError once a command imported that module (it
    imports torch, which `semcom --version`, `semcom grc` and a torch-free install should not need)."""
    checkpoint = sys.modules.get("semcom.checkpoint")
    return KNOWN_ERRORS + ((checkpoint.CheckpointError,) if checkpoint is not None else ())


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), as pip sees it."""
    try:
        return version("gr-semcom")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _command_word(argv: list[str]) -> str | None:
    """The sub-command named on the command line (the top-level options take no values)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _register(subparsers: argparse._SubParsersAction, module: str, strict: bool) -> None:
    """Import a command module and let it add its sub-commands. A missing third-party package is a
    MissingExtra when the user asked for that command (strict), else its commands are listed as
    unavailable."""
    try:
        importlib.import_module(module).register(subparsers)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] == "semcom":
            raise  # our own import is broken: a bug, keep the traceback
        commands = [name for name, (owner, _) in COMMANDS.items() if owner == module]
        if strict:
            raise MissingExtra(commands[0], err) from err
        for name in commands:
            subparsers.add_parser(name, help=f"(not installed: {MissingExtra(name, err)})")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `semcom` parser. argv None: every command module adds its whole parser (tests, `--help` of
    every command). argv naming a known command: only that command's module is imported. Any other argv
    (`semcom --help`, `--version`, a typo): the commands are listed from COMMANDS, no module imported."""
    parser = argparse.ArgumentParser(prog="semcom", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    if argv is None:
        for module in COMMAND_MODULES:
            _register(subparsers, module, strict=False)
        return parser
    command = _command_word(argv)
    if command in COMMANDS and COMMANDS[command][0] in COMMAND_MODULES:
        _register(subparsers, COMMANDS[command][0], strict=True)
    else:  # list the commands only: argparse prints the help or the error and exits before any runs
        for name, (module, help_text) in COMMANDS.items():
            if module in COMMAND_MODULES:
                subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(argv).parse_args(argv)
    except MissingExtra as err:
        print(f"semcom: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except known_errors() as err:
        print(f"semcom: {err}", file=sys.stderr)
        return 2
    except IncompleteRun as err:
        print(f"semcom: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
