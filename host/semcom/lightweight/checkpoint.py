"""Compressed DeepJSCC checkpoints, in the project's one format (``semcom.checkpoint``).

A compressed checkpoint is a whole codec (so ``semcom send jscc`` runs it unchanged): the edge's
compressed encoder + the base station's decoder, kind ``semcom.deepjscc.lightweight``, config

    {"codec": <JSCCConfig of the decoder / channel symbols>, "encoder": <JSCCConfig of the encoder's
     architecture (pruned or distilled widths)>, "weights": "fp32" | "fp16" | "int8"}

* ``fp32``: a dense float encoder (pruned zeros kept as zeros, or a compacted / student architecture).
* ``fp16``: the encoder's weights stored as float16 (cast back to fp32 at load, see
  ``compress.fp16_round_trip``); the decoder stays fp32.
* ``int8``: ``compress.Int8Encoder`` after conversion: int8 per-channel conv weights, their scales and
  zero points, and each stage's input quantization parameters, all plain tensors loaded with
  ``weights_only=True`` into an int8 skeleton built from the config.

Weights that do not fit the config (another architecture, float weights for an int8 config, ...) end in
``CheckpointError``, like every other checkpoint of the project.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semcom import checkpoint as ckpt
from semcom.checkpoint import CheckpointError
from semcom.jscc.checkpoint import load_checkpoint as load_jscc_checkpoint
from semcom.jscc.model import DeepJSCC, JSCCConfig, JSCCEncoder

from .compress import encoder_config, int8_skeleton, plain_copy

KIND = "semcom.deepjscc.lightweight"
LABEL = "a compressed DeepJSCC checkpoint"
WEIGHTS = ("fp32", "fp16", "int8")
__all__ = ["KIND", "CheckpointError", "load_codec", "load_compressed", "save_compressed"]


def weights_kind(encoder: nn.Module) -> str:
    """"int8" for a converted int8 encoder, else "fp32" (fp16 is a storage choice of ``save_compressed``)."""
    nnq = torch.ao.nn.quantized
    return "int8" if any(isinstance(m, (nnq.Conv2d, nnq.Linear)) for m in encoder.modules()) else "fp32"


def _check_config(config: dict[str, Any]) -> tuple[JSCCConfig, JSCCConfig, str]:
    codec = JSCCConfig.from_dict(config["codec"])
    enc = JSCCConfig.from_dict(config["encoder"])
    weights = config["weights"]
    if weights not in WEIGHTS:
        raise ValueError(f"weights {weights!r} is not one of {WEIGHTS}")
    if enc.c != codec.c or enc.in_channels != codec.in_channels:
        raise ValueError(f"encoder sends c = {enc.c} symbol maps of {enc.in_channels}-channel images, the "
                         f"decoder reads c = {codec.c} of {codec.in_channels}")
    return codec, enc, weights


def save_compressed(path: str | Path, codec: DeepJSCC, weights: str = "fp32",
                    meta: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``codec`` (its encoder compressed, its decoder the base station's) as ``<path>.pt/.json``.

    ``weights``: "fp32" / "int8" must match the encoder ("int8" = a converted ``Int8Encoder``); "fp16"
    stores a float encoder's weights as float16.
    """
    kind = weights_kind(codec.encoder)
    if weights not in WEIGHTS or (weights == "int8") != (kind == "int8"):
        raise ValueError(f"cannot store a {kind} encoder as {weights!r}")
    model = copy.deepcopy(codec)
    if kind != "int8":
        model.encoder = plain_copy(codec.encoder)
    if weights == "fp16":
        model.encoder.half()
    config = {"codec": codec.cfg.to_dict(), "encoder": encoder_config(codec.encoder).to_dict(),
              "weights": weights}
    return ckpt.save(path, KIND, model, config, meta)


def load_compressed(path: str | Path, map_location: str | torch.device = "cpu"
                    ) -> tuple[DeepJSCC, dict[str, Any]]:
    """Rebuild the codec from ``<path>.json`` and load ``<path>.pt`` (``weights_only=True``) into it."""
    doc = ckpt.read_doc(path, KIND, LABEL, _check_config)
    codec_cfg, enc_cfg, weights = _check_config(doc["config"])
    model = DeepJSCC(codec_cfg)
    model.encoder = int8_skeleton(enc_cfg) if weights == "int8" else JSCCEncoder(enc_cfg)
    try:
        with warnings.catch_warnings():
            # torch's unpickler rebuilds quantized tensors via TypedStorage and warns it is deprecated
            warnings.filterwarnings("ignore", message=r".*TypedStorage is deprecated.*")
            model = ckpt.load_weights(path, doc, model, map_location)
    except (RuntimeError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        # e.g. float tensors where the int8 convs expect quantized ones: packing them fails
        pt, _ = ckpt.checkpoint_paths(path)
        raise CheckpointError(f"{pt}: weights do not fit a {weights} encoder {enc_cfg}: {e}") from e
    return model, doc


def load_codec(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[DeepJSCC, dict[str, Any]]:
    """A DeepJSCC codec from either a plain ``semcom.deepjscc`` or a compressed checkpoint."""
    _, js = ckpt.checkpoint_paths(path)
    try:
        kind = json.loads(js.read_text()).get("kind") if js.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        kind = None   # the plain loader reports what is wrong with the file
    if kind == KIND:
        return load_compressed(path, map_location)
    return load_jscc_checkpoint(path, map_location)


def encoder_file_bytes(encoder: nn.Module, weights: str, directory: str | Path) -> int:
    """Bytes on disk of the encoder alone (what the edge stores): its state_dict saved by ``torch.save``,
    float16 for ``weights == "fp16"``. The file is written to ``directory`` and removed."""
    enc = encoder if weights_kind(encoder) == "int8" else plain_copy(encoder)
    if weights == "fp16":
        enc = enc.half()
    path = Path(directory) / f".encoder_size_probe_{id(enc)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(enc.state_dict(), path)
    try:
        return path.stat().st_size
    finally:
        path.unlink()
