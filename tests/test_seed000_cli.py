"""The seed-000 commands (`semcom adapt`, `lightweight`, `partial`) refuse malformed options before any work
starts (argparse's usage error, exit 2, no traceback), and every option's help states its default."""

from __future__ import annotations

import argparse
import re

import pytest

from semcom.adapt import commands as adapt_commands
from semcom.adapt.experiment import QUICK, AdaptConfig
from semcom.errors import nonnegative_float, nonnegative_int, positive_float
from semcom.lightweight import commands as lightweight_commands
from semcom.partial import commands as partial_commands

MODULES = {"adapt": adapt_commands, "lightweight": lightweight_commands, "partial": partial_commands}


def parser_for(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"semcom {name}")
    MODULES[name].add_arguments(p)
    return p


@pytest.mark.parametrize(("name", "argv", "message"), [
    ("adapt", ["--snrs", "21", "nan"], "not a finite number"),
    ("adapt", ["--step-epochs", "0"], "not a positive integer"),
    ("adapt", ["--seeds", "-1"], "negative"),
    ("adapt", ["--threads", "two"], "not an integer"),
    ("lightweight", ["--n-test", "-3"], "not a positive integer"),
    ("lightweight", ["--loopback", "-1"], "negative"),
    ("partial", ["--rounds", "0"], "not a positive integer"),
    ("partial", ["--random-share", "1.5"], "not in [0, 1]"),
    ("partial", ["--max-minutes", "0"], "not positive"),
    ("partial", ["--clutter", "-1"], "negative"),
    ("partial", ["--snr", "inf"], "not a finite number"),
])
def test_malformed_option_is_a_usage_error(name, argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser_for(name).parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_every_option_has_help_with_its_default() -> None:
    for name in MODULES:
        for action in parser_for(name)._actions:
            if action.option_strings == ["-h", "--help"]:
                continue
            assert action.help, (name, action.option_strings)
            if not isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                assert "default" in action.help, (name, action.option_strings, action.help)


def test_adapt_help_defaults_are_the_configs() -> None:
    """The adapt help states its defaults as literals (the CLI does not import the experiment module):
    they must be AdaptConfig's and the quick preset's."""
    cfg = AdaptConfig()
    helps = {a.dest: a.help for a in parser_for("adapt")._actions}
    for key in ("initial_epochs", "step_epochs", "real_samples", "n_train"):
        match = re.search(r"default (\d+); --quick: (\d+)", helps[key])
        assert match, helps[key]
        assert int(match.group(1)) == getattr(cfg, key), key
        assert int(match.group(2)) == QUICK[key], key


def test_numeric_argparse_types_take_their_boundaries() -> None:
    assert nonnegative_int("0") == 0
    assert nonnegative_float("0") == 0.0
    assert positive_float("1e-3") == pytest.approx(1e-3)
    for bad, kind in (("-1", nonnegative_int), ("-0.1", nonnegative_float), ("0", positive_float)):
        with pytest.raises(argparse.ArgumentTypeError):
            kind(bad)
