"""DeepJSCC checkpoints: ``<name>.pt`` (a plain ``state_dict``) + ``<name>.json`` (config and metadata).

The format, the ``weights_only=True`` loading and every ``CheckpointError`` are those of
``semcom.checkpoint`` (shared by all the project's models); this module adds the DeepJSCC kind and
config check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from semcom import checkpoint as ckpt
from semcom.checkpoint import CheckpointError

from .model import DeepJSCC, JSCCConfig

KIND = "semcom.deepjscc"
LABEL = "a DeepJSCC checkpoint"
__all__ = ["CheckpointError", "KIND", "load_checkpoint", "read_config", "save_checkpoint"]


def save_checkpoint(path: str | Path, model: DeepJSCC,
                    meta: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``<path>.pt`` and ``<path>.json`` (``path`` with or without suffix). Returns both paths."""
    return ckpt.save(path, KIND, model, model.cfg.to_dict(), meta)


def read_config(path: str | Path) -> dict[str, Any]:
    """Parse and validate the JSON side of a checkpoint; returns the whole document."""
    return ckpt.read_doc(path, KIND, LABEL, JSCCConfig.from_dict)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    expect: JSCCConfig | None = None) -> tuple[DeepJSCC, dict[str, Any]]:
    """Rebuild the model from ``<path>.json`` and load ``<path>.pt`` into it.

    ``expect``: if given, the stored config must equal it (e.g. the k/n an experiment asks for).
    Returns ``(model in eval mode, json document)``. Raises ``CheckpointError`` on any problem.
    """
    doc = read_config(path)
    cfg = JSCCConfig.from_dict(doc["config"])
    if expect is not None and cfg != expect:
        _, js = ckpt.checkpoint_paths(path)
        raise CheckpointError(f"{js}: checkpoint config {cfg} does not match the expected {expect}")
    model = ckpt.load_weights(path, doc, DeepJSCC(cfg), map_location)
    return model, doc
