"""Checkpoints of the small agents, in the project's one format (``semcom.checkpoint``).

Four kinds:

* ``semcom.agents.vision``: the scene-parsing pre-trained vision backbone (``SceneParser``).
* ``semcom.agents.receiver``: the frozen task agent (``TaskAgent``); config = ``SmallConfig``.
* ``semcom.agents.tokens``: transmitter + link (``SensorAgent`` + ``JTCC`` or ``RawTokenLink``). The
  receiver is *not* copied in: the JSON names the receiver checkpoint it was trained against and its
  SHA-256, and loading refuses another receiver (a token pipeline only works with the receiver whose
  embedding space it learned).
* ``semcom.agents.raw_vqa``: the raw-image VQA baseline (``RawVQA``).

``SmallConfig`` carries the word and answer vocabularies, so a checkpoint used with data of another
vocabulary fails with a clear error (``check_vocab``) instead of answering nonsense.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from semcom import checkpoint as ckpt
from semcom.checkpoint import CheckpointError

from .jtcc import JTCC, RawTokenLink
from .small import RawVQA, SceneParser, SensorAgent, SmallConfig, TaskAgent, TokenPipeline

RECEIVER, TOKENS, RAW_VQA = "semcom.agents.receiver", "semcom.agents.tokens", "semcom.agents.raw_vqa"
VISION = "semcom.agents.vision"
LINKS = ("jtcc", "raw")
__all__ = ["CheckpointError", "check_vocab", "load_pipeline", "load_raw_vqa", "load_receiver", "load_vision",
           "make_link", "save_pipeline", "save_raw_vqa", "save_receiver", "save_vision"]


def _small_config(d: dict[str, Any]) -> SmallConfig:
    if not isinstance(d, dict):
        raise TypeError(f"config must be an object, got {type(d).__name__}")
    return SmallConfig(**d)


def check_vocab(cfg: SmallConfig, vocab: Any, answers: Any, what: str = "checkpoint") -> None:
    """Raise ValueError unless the data's vocabularies (``Vocab``/``AnswerVocab`` or word lists) are the
    model's."""
    words = list(getattr(vocab, "itos", vocab))
    ans = list(getattr(answers, "itos", answers))
    if words != list(cfg.vocab):
        raise ValueError(f"{what} was built for another word vocabulary ({len(cfg.vocab)} words) than the "
                         f"data's ({len(words)} words)")
    if ans != list(cfg.answers):
        raise ValueError(f"{what} was built for another answer vocabulary ({len(cfg.answers)} answers) than "
                         f"the data's ({len(ans)} answers)")


def make_link(kind: str, d: int, m: int | None = None, hidden: int = 256,
              grad_mode: str = "exact") -> nn.Module:
    """``"jtcc"`` (d -> m real values per token) or ``"raw"`` (the d values as they are)."""
    if kind == "jtcc":
        if m is None:
            raise ValueError("a JTCC link needs m (channel values per token)")
        return JTCC(d, m, hidden=hidden, grad_mode=grad_mode)  # type: ignore[arg-type]
    if kind == "raw":
        return RawTokenLink(d, grad_mode=grad_mode)  # type: ignore[arg-type]
    raise ValueError(f"link must be one of {LINKS}, got {kind!r}")


def _link_config(link: nn.Module) -> dict[str, Any]:
    kind = "jtcc" if isinstance(link, JTCC) else "raw" if isinstance(link, RawTokenLink) else None
    if kind is None:
        raise TypeError(f"unsupported link {type(link).__name__}")
    return {"kind": kind, **link.config()}


def _build_link(cfg: dict[str, Any]) -> nn.Module:
    cfg = dict(cfg)
    return make_link(cfg.pop("kind"), **cfg)


class _TxBundle(nn.Module):
    """What a tokens checkpoint stores: the transmitter and the link (state_dict keys sensor.*, link.*)."""

    def __init__(self, sensor: SensorAgent, link: nn.Module) -> None:
        super().__init__()
        self.sensor, self.link = sensor, link


def save_receiver(path: str | Path, receiver: TaskAgent, meta: dict[str, Any] | None = None,
                  store_dtype: torch.dtype | None = None) -> tuple[Path, Path]:
    return ckpt.save(path, RECEIVER, receiver, receiver.cfg.to_dict(), meta, store_dtype=store_dtype)


def load_receiver(path: str | Path, map_location: str | torch.device = "cpu"
                  ) -> tuple[TaskAgent, dict[str, Any]]:
    """The frozen task agent (eval mode, ``requires_grad`` off) and its JSON document."""
    doc = ckpt.read_doc(path, RECEIVER, "a receiver (task agent) checkpoint", _small_config)
    model = ckpt.load_weights(path, doc, TaskAgent(_small_config(doc["config"])), map_location)
    model.requires_grad_(False)
    return model, doc  # type: ignore[return-value]


def save_pipeline(path: str | Path, pipeline: TokenPipeline, receiver_path: str | Path,
                  meta: dict[str, Any] | None = None, store_dtype: torch.dtype | None = None
                  ) -> tuple[Path, Path]:
    """Save transmitter + link; the receiver is referenced by ``receiver_path`` and its checksum."""
    rx_pt, _ = ckpt.checkpoint_paths(receiver_path)
    if not rx_pt.is_file():
        raise CheckpointError(f"receiver checkpoint {rx_pt} not found: save the receiver first")
    pt, _ = ckpt.checkpoint_paths(path)
    config = {"small": pipeline.sensor.cfg.to_dict(), "link": _link_config(pipeline.link),
              "receiver": {"weights": _relative(rx_pt, pt.parent), "sha256": ckpt.sha256_of(rx_pt)}}
    return ckpt.save(path, TOKENS, _TxBundle(pipeline.sensor, pipeline.link), config, meta,
                     store_dtype=store_dtype)


def _relative(target: Path, base: Path) -> str:
    try:
        return str(target.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(target.resolve())


def _check_tokens_config(cfg: dict[str, Any]) -> None:
    _small_config(cfg["small"])
    _build_link(cfg["link"])
    if not isinstance(cfg["receiver"].get("sha256"), str):
        raise ValueError("receiver.sha256 missing")


def load_pipeline(path: str | Path, receiver_path: str | Path | None = None,
                  map_location: str | torch.device = "cpu") -> tuple[TokenPipeline, dict[str, Any]]:
    """Transmitter + link + the receiver they were trained with (``receiver_path``, default: the one
    the checkpoint names, relative to it). A receiver with another checksum is refused."""
    doc = ckpt.read_doc(path, TOKENS, "a token-pipeline checkpoint", _check_tokens_config)
    cfg = doc["config"]
    pt, js = ckpt.checkpoint_paths(path)
    rx_path = Path(receiver_path) if receiver_path is not None else pt.parent / cfg["receiver"]["weights"]
    rx_pt, _ = ckpt.checkpoint_paths(rx_path)
    if not rx_pt.is_file():
        raise CheckpointError(f"{js}: its receiver {rx_pt} not found")
    if ckpt.sha256_of(rx_pt) != cfg["receiver"]["sha256"]:
        raise CheckpointError(f"{js} was trained against another receiver than {rx_pt} (SHA-256 differs): "
                              "machine-language tokens only make sense to the receiver they were learned for")
    receiver, _ = load_receiver(rx_pt, map_location)
    small = _small_config(cfg["small"])
    if (small.vocab, small.answers, small.d) != (receiver.cfg.vocab, receiver.cfg.answers, receiver.cfg.d):
        raise CheckpointError(f"{js}: transmitter vocabularies or token size d do not match the "
                              f"receiver's ({rx_pt})")
    bundle = ckpt.load_weights(path, doc, _TxBundle(SensorAgent(small), _build_link(cfg["link"])),
                               map_location)
    return TokenPipeline(bundle.sensor, bundle.link, receiver).eval(), doc


def save_raw_vqa(path: str | Path, model: RawVQA, meta: dict[str, Any] | None = None,
                 store_dtype: torch.dtype | None = None) -> tuple[Path, Path]:
    return ckpt.save(path, RAW_VQA, model, model.cfg.to_dict(), meta, store_dtype=store_dtype)


def load_raw_vqa(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[RawVQA, dict[str, Any]]:
    doc = ckpt.read_doc(path, RAW_VQA, "a raw-image VQA checkpoint", _small_config)
    return ckpt.load_weights(path, doc, RawVQA(_small_config(doc["config"])), map_location), doc  # type: ignore[return-value]


def save_vision(path: str | Path, parser: SceneParser, cfg: SmallConfig, meta: dict[str, Any] | None = None,
                store_dtype: torch.dtype | None = None) -> tuple[Path, Path]:
    return ckpt.save(path, VISION, parser, cfg.to_dict(), meta, store_dtype=store_dtype)


def load_vision(path: str | Path, map_location: str | torch.device = "cpu"
                ) -> tuple[SceneParser, dict[str, Any]]:
    doc = ckpt.read_doc(path, VISION, "a vision-backbone checkpoint", _small_config)
    return ckpt.load_weights(path, doc, SceneParser(_small_config(doc["config"])), map_location), doc  # type: ignore[return-value]
