"""DeepJSCC checkpoints: ``<name>.pt`` (a plain ``state_dict``) + ``<name>.json`` (config and metadata).

The weights are loaded with ``torch.load(..., weights_only=True)`` (no pickled code runs). The JSON holds
the format version, the architecture config, the SHA-256 of the ``.pt`` file and free-form metadata
(training command, seed, ...). Every way a checkpoint can be wrong ends in ``CheckpointError`` with a
message that says which file and what is wrong: missing file, unreadable/corrupted JSON or weights,
checksum mismatch, wrong kind or version, or weights that do not fit the config.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from .model import DeepJSCC, JSCCConfig

KIND = "semcom.deepjscc"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupted or does not match the model it claims to be."""


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".pt", ".json"):
        p = p.with_suffix("")
    return p.with_suffix(".pt"), p.with_suffix(".json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(path: str | Path, model: DeepJSCC,
                    meta: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``<path>.pt`` and ``<path>.json`` (``path`` with or without suffix). Returns both paths."""
    pt, js = _paths(path)
    pt.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, pt)
    doc = {"kind": KIND, "format_version": FORMAT_VERSION, "config": model.cfg.to_dict(),
           "weights": pt.name, "sha256": _sha256(pt), "meta": meta or {}}
    js.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return pt, js


def read_config(path: str | Path) -> dict[str, Any]:
    """Parse and validate the JSON side of a checkpoint; returns the whole document."""
    _, js = _paths(path)
    if not js.is_file():
        raise CheckpointError(f"checkpoint config {js} not found")
    try:
        doc = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint config {js} is not valid JSON (corrupted?): {e}") from e
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        got = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise CheckpointError(f"{js} is not a DeepJSCC checkpoint (kind={got!r}, expected {KIND!r})")
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{js}: unsupported format_version {doc.get('format_version')!r} "
                              f"(this code reads {FORMAT_VERSION})")
    try:
        JSCCConfig.from_dict(doc["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{js}: invalid model config: {e}") from e
    return doc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    expect: JSCCConfig | None = None) -> tuple[DeepJSCC, dict[str, Any]]:
    """Rebuild the model from ``<path>.json`` and load ``<path>.pt`` into it.

    ``expect``: if given, the stored config must equal it (e.g. the k/n an experiment asks for).
    Returns ``(model in eval mode, json document)``. Raises ``CheckpointError`` on any problem.
    """
    pt, js = _paths(path)
    doc = read_config(js)
    cfg = JSCCConfig.from_dict(doc["config"])
    if expect is not None and cfg != expect:
        raise CheckpointError(f"{js}: checkpoint config {cfg} does not match the expected {expect}")
    if not pt.is_file():
        raise CheckpointError(f"checkpoint weights {pt} not found (config {js} exists)")
    digest = _sha256(pt)
    if doc.get("sha256") not in (None, digest):
        raise CheckpointError(f"{pt}: SHA-256 {digest[:12]}... does not match {js} "
                              f"({str(doc['sha256'])[:12]}...): weights corrupted or from another run")
    try:
        state = torch.load(pt, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types (UnpicklingError, RuntimeError, EOFError...)
        raise CheckpointError(f"cannot read weights {pt} (corrupted or not a state_dict): {e}") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{pt} does not hold a state_dict of tensors")
    model = DeepJSCC(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise CheckpointError(f"{pt} does not match config {cfg}: missing={missing[:5]} "
                              f"unexpected={unexpected[:5]} shape mismatches={shapes[:5]}")
    model.load_state_dict(state)
    model.to(map_location)
    model.eval()
    return model, doc
