"""Checkpoints for every model of the project: ``<name>.pt`` (a plain ``state_dict``) + ``<name>.json``.

The weights are loaded with ``torch.load(..., weights_only=True)`` (no pickled code runs). The JSON holds
the checkpoint ``kind`` (which model family it is), the format version, the model config, the SHA-256
of the ``.pt`` file and free-form metadata (training command, seed, results, ...). An optional
``<name>.train.pt`` holds what resuming needs (optimizer state, epoch, generator state), also as
tensors and plain containers only.

Every way a checkpoint can be wrong ends in ``CheckpointError`` with a message that says which file and
what is wrong: missing file, unreadable/corrupted JSON or weights, checksum mismatch, wrong kind or
version, a config the model rejects, or weights that do not fit the model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupted or does not match the model it claims to be."""


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``x``, ``x.pt`` or ``x.json`` -> (``x.pt``, ``x.json``)."""
    p = Path(path)
    if p.suffix in (".pt", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".pt"), p.with_name(p.name + ".json")


def train_state_path(path: str | Path) -> Path:
    pt, _ = checkpoint_paths(path)
    return pt.with_name(pt.name[: -len(".pt")] + ".train.pt")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(path: str | Path, kind: str, model: nn.Module, config: dict[str, Any],
         meta: dict[str, Any] | None = None, train_state: dict[str, Any] | None = None,
         store_dtype: torch.dtype | None = None) -> tuple[Path, Path]:
    """Write ``<path>.pt``, ``<path>.json`` (+ ``<path>.train.pt`` if ``train_state``); returns (pt, json).

    ``store_dtype`` (e.g. ``torch.float16``) stores floating-point weights in that type, halving the
    size of a shipped checkpoint; loading casts them back to the model's dtype.
    """
    pt, js = checkpoint_paths(path)
    pt.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if store_dtype is not None:
        state = {k: v.to(store_dtype) if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, pt)
    doc = {"kind": kind, "format_version": FORMAT_VERSION, "config": config, "weights": pt.name,
           "sha256": sha256_of(pt), "store_dtype": str(store_dtype or "native"), "meta": meta or {}}
    js.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    if train_state is not None:
        torch.save(train_state, train_state_path(path))
    return pt, js


def read_doc(path: str | Path, kind: str, label: str,
             check_config: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
    """Parse and validate the JSON side; ``label`` names the model in messages ("a DeepJSCC checkpoint").

    ``check_config(doc["config"])`` may raise KeyError/TypeError/ValueError for a config it rejects.
    """
    _, js = checkpoint_paths(path)
    if not js.is_file():
        raise CheckpointError(f"checkpoint config {js} not found")
    try:
        doc = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint config {js} is not valid JSON (corrupted?): {e}") from e
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        got = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise CheckpointError(f"{js} is not {label} (kind={got!r}, expected {kind!r})")
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{js}: unsupported format_version {doc.get('format_version')!r} "
                              f"(this code reads {FORMAT_VERSION})")
    if check_config is not None:
        try:
            check_config(doc["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{js}: invalid model config: {e}") from e
    return doc


def _load_tensors(path: Path, what: str, map_location: str | torch.device) -> Any:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types (UnpicklingError, RuntimeError, EOFError...)
        raise CheckpointError(f"cannot read {what} {path} (corrupted or not a state_dict): {e}") from e


def load_weights(path: str | Path, doc: dict[str, Any], model: nn.Module,
                 map_location: str | torch.device = "cpu") -> nn.Module:
    """Check ``<path>.pt`` against ``doc``'s checksum and load it into ``model`` (strict); eval mode."""
    pt, js = checkpoint_paths(path)
    if not pt.is_file():
        raise CheckpointError(f"checkpoint weights {pt} not found (config {js} exists)")
    digest = sha256_of(pt)
    if doc.get("sha256") not in (None, digest):
        raise CheckpointError(f"{pt}: SHA-256 {digest[:12]}... does not match {js} "
                              f"({str(doc['sha256'])[:12]}...): weights corrupted or from another run")
    state = _load_tensors(pt, "weights", map_location)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{pt} does not hold a state_dict of tensors")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise CheckpointError(f"{pt} does not match config {doc.get('config')}: missing={missing[:5]} "
                              f"unexpected={unexpected[:5]} shape mismatches={shapes[:5]}")
    model.load_state_dict(state)
    model.to(map_location)
    model.eval()
    return model


def load_train_state(path: str | Path) -> dict[str, Any] | None:
    """The resume state saved with the checkpoint, or None if there is none."""
    p = train_state_path(path)
    if not p.is_file():
        return None
    state = _load_tensors(p, "training state", "cpu")
    if not isinstance(state, dict):
        raise CheckpointError(f"{p} does not hold a training-state dict")
    return state
