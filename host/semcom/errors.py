"""Bad input on the command line: one error class, the argparse types that raise it, the `.npy` reader.

`semcom.cli.main` turns a `UsageError` (and the other known bad-input errors it lists) into one line
`semcom: <message>` and exit status 2; anything else is a bug and keeps its traceback. The argparse
types below make argparse itself answer a malformed value with its usual one-line usage error (exit 2).
"""

from __future__ import annotations

import argparse
import math
import os
import zipfile
from pathlib import Path

import numpy as np


class UsageError(ValueError):
    """Bad input from the user (an option value, a file): reported in one line, exit status 2."""


class IncompleteRun(RuntimeError):
    """The command ran but did not do its job (nothing delivered, too many frames lost): exit status 1."""


def check_loss(what: str, sent: int, lost: int, max_loss: float) -> None:
    """IncompleteRun (exit 1) when `what` delivered nothing or lost more than `max_loss` of `sent` frames."""
    share = lost / sent if sent else 1.0
    if sent - lost <= 0 or share > max_loss:
        raise IncompleteRun(f"{what} delivered {sent - lost} of {sent} frames ({share:.0%} lost, "
                            f"tolerance --max-loss {max_loss:.0%})")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer (>= 1)")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a seed, or a count where 0 means "skip")."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite float (rejects nan and inf as well as garbage)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def nonnegative_float(text: str) -> float:
    """argparse type: a finite float >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def fraction(text: str) -> float:
    """argparse type: a float in [0, 1]."""
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 1]")
    return value


def output_dir(text: str) -> str:
    """argparse type: a folder the command may write its results into (returned as given).

    It is a writable folder, or does not exist yet and its nearest existing parent is one (the command
    creates it when it writes). Checked before any work, so that a run does not end in a traceback
    because of where its results were to go."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    path = Path(text).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        what = "is" if existing == path else f"is under {existing}, which is"
        raise argparse.ArgumentTypeError(f"{text} {what} a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: no permission to write in {existing}")
    return text


def shape(text: str) -> tuple[int, ...]:
    """argparse type: a tensor shape written AxBxC with positive integers, e.g. 5x256."""
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 5x256") from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every dimension must be >= 1")
    return dims


MAX_NPY_BYTES = 64 * 2**20  # far above one OFAT frame's payload; a larger file is a mistake, not a tensor


def load_npy(path: str | Path, max_bytes: int | None = None) -> np.ndarray:
    """A real, finite, non-empty numeric array from a `.npy` file; UsageError naming the file otherwise."""
    p = Path(path)
    max_bytes = MAX_NPY_BYTES if max_bytes is None else max_bytes
    if not p.is_file():
        raise UsageError(f"{p}: no such .npy file")
    if p.stat().st_size > max_bytes:
        raise UsageError(f"{p}: {p.stat().st_size} bytes, over the {max_bytes}-byte limit for a tensor")
    try:
        data = np.load(p, allow_pickle=False)
    except ValueError as err:  # numpy says "pickled data" for a corrupt file, "Object arrays" for a pickle
        reason = "object (pickled) array" if "Object arrays" in str(err) else "not a .npy array file"
        raise UsageError(f"{p}: {reason} (only plain numeric arrays are read, never pickles)") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise UsageError(f"{p}: cannot read as .npy ({err})") from None
    if not isinstance(data, np.ndarray):
        raise UsageError(f"{p}: an .npz archive, not a single .npy array")
    if data.dtype.kind == "c":
        raise UsageError(f"{p}: complex dtype {data.dtype}; send the real and imaginary parts as real values")
    if data.dtype.kind not in "fiub":
        raise UsageError(f"{p}: dtype {data.dtype} is not numeric")
    if data.size == 0:
        raise UsageError(f"{p}: empty array (shape {data.shape})")
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise UsageError(f"{p}: contains NaN or Inf values")
    return data
