"""Progress bars for long work: tqdm where the caller asks for one and the output is a terminal.

A log file or a CI console gets no bar (tqdm's ``disable=None`` looks at the stream), so
``semcom train ... > train.log`` writes the per-epoch log lines without a bar's carriage returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def progress_bar(iterable: Iterable[Any] | None = None, *, progress: bool = True, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``, off when ``progress`` is False or the output is not a terminal."""
    return tqdm(iterable, disable=None if progress else True, **kwargs)
