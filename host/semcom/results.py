"""Writing experiment results: one CSV helper so every command's tables look alike, one figure saver."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """rows (same keys, in order) -> a CSV with a header; the parent directory is created."""
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


FIGURE_DPI = 150
"""Resolution of every figure the project writes (readable when a PNG is zoomed or printed)."""


def save_figure(fig: Any, path: str | Path, dpi: int = FIGURE_DPI) -> Path:
    """A matplotlib figure -> PNG at ``path`` (tight layout, parent directory created), then closed."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
