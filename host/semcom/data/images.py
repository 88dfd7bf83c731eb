"""Image sets for the JSCC codecs: real photographs, handwritten digits, generated scenes.

Everything comes from files scikit-learn ships or from the scene generator: nothing is downloaded.

* ``"photos"``: random square crops of the two real photographs in ``sklearn.datasets.load_sample_images``
  (china.jpg, flower.jpg; 427 x 640). The train split crops from the left ``TRAIN_FRACTION`` of each
  photo's width, the test split from the remaining right part, so train and test pixels never
  overlap. Crops are ``size`` x ``size`` at native resolution (resized down from the largest square
  that fits when ``size`` exceeds the test region), with a random horizontal flip.
* ``"digits"``: the UCI handwritten digits (``load_digits``, 1797 images 8 x 8, values 0..16), scaled
  to [0, 1], bilinearly upsampled to ``size`` and replicated to 3 channels. A fixed permutation
  (independent of ``seed``) assigns 80 % of the digits to train and 20 % to test; ``n`` images are then
  drawn from the split's pool (with replacement only when ``n`` exceeds the pool).
* ``"scenes"``: CLEVR-like scenes from :mod:`semcom.data.scenes` rendered at ``size``; train and test
  use different seed streams.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .scenes import generate_scenes, render_scenes

TRAIN_FRACTION = 0.7  # of each photo's width (columns) used for train crops
DIGITS_TRAIN_FRACTION = 0.8
SOURCES = ("photos", "digits", "scenes")
_SPLIT_ID = {"train": 0, "test": 1}


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(np.asarray(im, dtype=np.uint8) for im in load_sample_images().images)


@lru_cache(maxsize=1)
def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images / 16.0).astype(np.float32)  # (1797, 8, 8)


def _check(source: str, split: str, n: int, size: int) -> None:
    if source not in SOURCES:
        raise ValueError(f"unknown image source {source!r}; choose one of {SOURCES}")
    if split not in _SPLIT_ID:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if n < 0 or size < 1:
        raise ValueError(f"need n >= 0 and size >= 1, got n={n}, size={size}")


def _photo_set(size: int, n: int, rng: np.random.Generator, split: str) -> torch.Tensor:
    photos = _photos()
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    which = rng.integers(0, len(photos), n)
    flips = rng.random(n) < 0.5
    for p, photo in enumerate(photos):
        idx = np.flatnonzero(which == p)
        if idx.size == 0:
            continue
        h, w, _ = photo.shape
        cut = int(round(TRAIN_FRACTION * w))
        x0, x1 = (0, cut) if split == "train" else (cut, w)
        side = min(size, h, x1 - x0)  # crop side in source pixels
        ys = rng.integers(0, h - side + 1, idx.size)
        xs = rng.integers(x0, x1 - side + 1, idx.size)
        # Vectorized crop: gather all crops at once with broadcast index grids.
        ar = np.arange(side)
        crops = photo[ys[:, None, None] + ar[None, :, None], xs[:, None, None] + ar[None, None, :]]
        if side != size:  # region smaller than the request: resize the largest square that fits
            crops = np.stack([np.asarray(Image.fromarray(c).resize((size, size), Image.BILINEAR))
                              for c in crops])
        out[idx] = crops
    out[flips] = out[flips, :, ::-1]
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def _digit_set(size: int, n: int, rng: np.random.Generator, split: str) -> torch.Tensor:
    digits = _digits()
    perm = np.random.default_rng(12345).permutation(len(digits))  # fixed split, independent of seed
    cut = int(round(DIGITS_TRAIN_FRACTION * len(digits)))
    pool = perm[:cut] if split == "train" else perm[cut:]
    pick = rng.choice(pool, size=n, replace=n > pool.size)
    x = torch.from_numpy(digits[pick])[:, None]  # (n, 1, 8, 8)
    if n and size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp_(0.0, 1.0).repeat(1, 3, 1, 1).contiguous()


def image_set(source: Literal["photos", "digits", "scenes"], *, size: int = 32, n: int, seed: int,
              split: Literal["train", "test"] = "train") -> torch.Tensor:
    """``n`` images from ``source`` -> float32 tensor (n, 3, size, size) with values in [0, 1].

    Deterministic by ``(source, size, n, seed, split)``; train and test splits never share content
    (see module docstring for how each source is split).
    """
    _check(source, split, n, size)
    rng = np.random.default_rng([seed, _SPLIT_ID[split], SOURCES.index(source)])
    if source == "photos":
        return _photo_set(size, n, rng, split)
    if source == "digits":
        return _digit_set(size, n, rng, split)
    scene_seed = int(rng.integers(0, 2**31 - 1))
    imgs = render_scenes(generate_scenes(n, scene_seed), size)
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
