"""Source images for partial sampling: one real MNIST digit on a larger canvas, with clutter.

A scene of source size ``S`` is an ``S x S`` grey canvas (values in [0, 1]) holding one 28 x 28 MNIST
digit at a uniformly random place (the label is that digit's) plus *clutter*: fragments cut from other
real digits (``fragment`` x ``fragment`` crops of their central 20 x 20 region, so they carry strokes)
scattered over the rest of the canvas, about ``clutter`` fragments per 28 x 28 of free area. A
fragment never overlaps the digit's central 20 x 20 box (where MNIST puts 96.7 % of the ink), so the
label stays unambiguous; but a small patch of a fragment looks like a patch of a stroke, so an agent
that samples a few small patches must *find* the digit, which is harder the larger the canvas
(accuracy falls with the source size, as in the paper's Fig. 6). ``S = 28`` is the digit alone.

Besides the image, a scene keeps its *digit layer* (the same canvas without clutter): the receiver's
relevance target (where the task-relevant ink is) is computed from it at training time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DIGIT = 28            # MNIST side
INK_MARGIN = 4        # MNIST fits the ink into the central 20 x 20 of the 28 x 28 box


@dataclass(frozen=True)
class Scenes:
    """A batch of scenes: image, digit (B, S, S) float32 in [0, 1], label (B,) int64, top-left (B, 2)."""

    image: torch.Tensor
    digit: torch.Tensor
    label: torch.Tensor
    top_left: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.image.shape[-1])


def n_fragments(size: int, clutter: float) -> int:
    """Clutter fragments on an ``size`` canvas: ``clutter`` per 28 x 28 of area outside the digit box."""
    if size < DIGIT:
        raise ValueError(f"source size {size} is smaller than a {DIGIT} px digit")
    return int(round(clutter * (size * size - DIGIT * DIGIT) / (DIGIT * DIGIT)))


def _paste_max(canvas: torch.Tensor, piece: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> None:
    """canvas (B, S, S) <- max(canvas, piece (B, h, w) placed at (top, left) (B,)), in place."""
    b, h, w = piece.shape
    rows = (top[:, None] + torch.arange(h))[:, :, None].expand(b, h, w)
    cols = (left[:, None] + torch.arange(w))[:, None, :].expand(b, h, w)
    bidx = torch.arange(b)[:, None, None].expand(b, h, w)
    canvas[bidx, rows, cols] = torch.maximum(canvas[bidx, rows, cols], piece)


def make_scenes(digits: torch.Tensor, labels: torch.Tensor, size: int, n: int, generator: torch.Generator,
                *, clutter: float = 1.0, fragment: int = 12, tries: int = 8) -> Scenes:
    """``n`` scenes of source size ``size`` from ``digits`` (N, 28, 28) in [0, 1] and ``labels`` (N,).

    Deterministic given ``generator``'s state. Fragments come from the same pool as the digits (so
    a test scene's clutter is test digits too).
    """
    if digits.ndim != 3 or digits.shape[1:] != (DIGIT, DIGIT) or labels.shape != digits.shape[:1]:
        raise ValueError(f"digits must be (N, {DIGIT}, {DIGIT}) with labels (N,), got "
                         f"{tuple(digits.shape)} and {tuple(labels.shape)}")
    if not DIGIT - 2 * INK_MARGIN >= fragment >= 2:
        raise ValueError(f"fragment side must be in 2..{DIGIT - 2 * INK_MARGIN}, got {fragment}")
    k = n_fragments(size, clutter)
    pick = torch.randint(0, digits.shape[0], (n,), generator=generator)
    top_left = torch.randint(0, size - DIGIT + 1, (n, 2), generator=generator)
    digit = torch.zeros(n, size, size)
    _paste_max(digit, digits[pick], top_left[:, 0], top_left[:, 1])
    image = digit.clone()
    box_lo = top_left + INK_MARGIN                      # the digit's ink box [lo, lo + 20)
    box_hi = top_left + DIGIT - INK_MARGIN
    for _ in range(k):
        src = torch.randint(0, digits.shape[0], (n,), generator=generator)
        off = torch.randint(INK_MARGIN, DIGIT - INK_MARGIN - fragment + 1, (n, 2), generator=generator)
        rows = (off[:, 0, None] + torch.arange(fragment))[:, :, None]
        cols = (off[:, 1, None] + torch.arange(fragment))[:, None, :]
        piece = digits[src[:, None, None], rows, cols]            # (n, f, f)
        # A few candidate places per fragment; the first one clear of the digit's ink box wins.
        cand = torch.randint(0, size - fragment + 1, (n, tries, 2), generator=generator)
        clear = ((cand + fragment <= box_lo[:, None]) | (cand >= box_hi[:, None])).any(dim=-1)  # (n, tries)
        first = clear.float().argmax(dim=1)
        where = cand[torch.arange(n), first]
        ok = clear.any(dim=1)
        _paste_max(image, piece * ok[:, None, None], where[:, 0], where[:, 1])
    return Scenes(image=image, digit=digit, label=labels[pick].clone(), top_left=top_left)
