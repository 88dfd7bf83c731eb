"""The small-default machine-language-token experiment: data, the training stages, evaluation.

Stages (each saves a checkpoint in ``checkpoints/``; a stage whose checkpoint exists is loaded, not
retrained, unless asked; an interrupted stage resumes from its last epoch):

0. ``vision``: the vision backbone pre-trained by scene parsing (every patch names the objects whose
   centres it holds) on the training images and the pre-training scenes' images. Frozen afterwards in
   the sensor and the raw-image VQA.
1. ``receiver``: the task agent pre-trained on ground-truth scene descriptions + detailed question ->
   answer (training split + pre-training scenes), then frozen.
1b. ``text``: a copy of the receiver fine-tuned to read natural-language summaries instead, for the
   natural-language baseline only. (Mixing summaries into the receiver's own pre-training cost it the
   compare-attribute questions: they stayed at chance.)
2. ``tokens``: the sensor agent trained through the frozen receiver with the K tokens sent as they are
   (d real values each, power-normalised) over AWGN at a random SNR: the "tokens without JTCC" baseline.
   Loss: the answer's cross-entropy + ``align_weight`` x the alignment of the received tokens to the
   receiver's own embedding of the scene's objects (``train.alignment_loss``).
3. ``jtcc``: the same transmitter (initialised from stage 2, fine-tuned at a lower learning rate) with a
   JTCC autoencoder that sends m << d values per token: ``link_epochs`` of link-only reconstruction
   through the channel, then the joint training as in stage 2 (optionally ``curriculum_epochs`` of it
   first at another SNR range, and a distillation term towards the receiver's answers on the clean
   tokens: ``AgentTrainConfig``; all off by default).
4. ``raw_vqa``: the raw-image VQA baseline (the same frozen vision backbone, transmitter- and
   receiver-size transformers of its own) trained end to end on clean images with the detailed question,
   for as many epochs as stages 2 and 3 together.

Evaluation (``evaluate``): accuracy on the test split of every method, over the named channels at every
SNR, per question family, plus the receiver given only the first k ground-truth object tokens (how many
tokens the answers need); ``results.csv`` + ``results.png`` + ``accuracy_vs_tokens.png`` +
``summary.json`` (acceptance checks, the channel values each method sends, times); the checks, figures
and text table are in ``report``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcom.channels import NAMED_CHANNELS, named_channel
from semcom.checkpoint import CheckpointError, checkpoint_paths, load_train_state, train_state_path
from semcom.data.datasets import make_vqa_dataset
from semcom.results import write_csv

from .checkpoint import (
    check_vocab,
    load_pipeline,
    load_raw_vqa,
    load_receiver,
    load_vision,
    make_link,
    save_pipeline,
    save_raw_vqa,
    save_receiver,
    save_vision,
)
from .report import acceptance, plot, plot_tokens
from .small import RawVQA, SceneParser, SensorAgent, SmallConfig, TaskAgent, TokenPipeline, grid_labels
from .train import (
    AgentTrainConfig,
    VQATensors,
    accuracy,
    accuracy_by_family,
    clean_token_logits,
    evaluate_pipeline,
    predictions,
    pretrain_alignment,
    pretrain_link,
    pretrain_receiver,
    pretrain_vision,
    receiver_logits,
    train_raw_vqa,
    train_token_pipeline,
)

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("vision", "receiver", "text", "tokens", "jtcc", "raw_vqa")
CHECKPOINT_NAMES: dict[str, str] = {"vision": "vision", "receiver": "receiver", "text": "receiver_text",
                                    "tokens": "tokens_raw", "jtcc": "tokens_jtcc", "raw_vqa": "raw_vqa"}
DEFAULT_SNRS: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
DEFAULT_CHANNELS: tuple[str, ...] = ("awgn", "ofat_2x4_zf_ls")
DEFAULT_JSCC = Path(__file__).resolve().parents[1] / "jscc" / "checkpoints" / "deepjscc_kn1-6_32px"
Tensor = torch.Tensor


def _cfg(**kw: Any) -> Any:
    return field(default_factory=lambda: AgentTrainConfig(**kw))


@dataclass
class AgentsExperiment:
    """Everything that defines a run of the small default (stored in every checkpoint and summary)."""

    # Many scenes, few questions each: the image side (vision, sensor, raw VQA) learns from distinct
    # images (2100 training images let the sensor memorise them), at the same number of questions.
    n_scenes: int = 12000
    questions_per_scene: int = 3
    seed: int = 0
    image_size: int = 64
    k_tokens: int = 5
    d: int = 128
    jtcc_m: int = 16            # real channel values per token with JTCC (d / m = 8x fewer)
    jtcc_hidden: int = 256
    grad_mode: str = "exact"    # or "straight_through" (the paper's approximation)
    n_val: int = 1000
    # Scenes generated (another seed) only for the two pre-training stages, on top of the training split:
    # the receiver's "language pre-training" reads their descriptions and questions, the vision backbone's
    # scene parsing their images (12 000 more images: object F1 0.938 -> 0.960). The task stages that
    # are compared (tokens, JTCC, raw-image VQA) train on the training split alone, and both VQA systems
    # share the pre-trained backbone, so the comparison stays even.
    pretrain_scenes: int = 12000
    patch: int = 16
    vision_layers: int = 2
    tx_layers: int = 4
    rx_layers: int = 4
    heads: int = 8
    sensor_slots: str = "proposals"     # or "queries" (see SensorAgent)
    freeze_vision: bool = True          # the pre-trained backbone stays fixed in the sensor and raw VQA
    raw_vqa_from_receiver: bool = False  # True: raw VQA's task model starts from the pre-trained receiver
    vision: AgentTrainConfig = _cfg(epochs=12, batch_size=64, lr=1e-3)
    receiver: AgentTrainConfig = _cfg(epochs=7, batch_size=64, lr=1e-3, summary_fraction=0.0)
    text: AgentTrainConfig = _cfg(epochs=3, batch_size=64, lr=5e-4, summary_fraction=1.0)
    tokens: AgentTrainConfig = _cfg(epochs=8, batch_size=64, lr=1e-3, snr_db=(0.0, 20.0), align_weight=1.0,
                                    align_epochs=8)
    jtcc: AgentTrainConfig = _cfg(epochs=5, batch_size=64, lr=1e-3, snr_db=(0.0, 20.0), sensor_lr_scale=0.3,
                                  align_weight=1.0, link_epochs=5)
    # As many epochs on the training questions as the transmitter's task training (8 + 5); its cheaper
    # alignment-only and link-only warm-ups (no answers) are not counted.
    raw_vqa: AgentTrainConfig = _cfg(epochs=13, batch_size=64, lr=1e-3)

    def small_config(self, vocab: list[str], answers: list[str]) -> SmallConfig:
        return SmallConfig(vocab=vocab, answers=answers, d=self.d, image_size=self.image_size,
                           k_tokens=self.k_tokens, patch=self.patch, vision_layers=self.vision_layers,
                           tx_layers=self.tx_layers, rx_layers=self.rx_layers, heads=self.heads,
                           sensor_slots=self.sensor_slots)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            out[name] = v.to_dict() if isinstance(v, AgentTrainConfig) else v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentsExperiment:
        d = dict(d)
        if "receiver_extra_scenes" in d:  # the name in checkpoints before the backbone read them too
            d["pretrain_scenes"] = d.pop("receiver_extra_scenes")
        kw = {k: AgentTrainConfig.from_dict(v) if k in STAGES else v for k, v in d.items()}
        return cls(**kw)


@dataclass
class ExperimentData:
    """The three splits, the vocabularies, the scene-parsing targets of the train/val images, and the
    pre-training scenes (``pretrain``, with their parsing targets ``pretrain_labels``)."""

    train: VQATensors
    val: VQATensors
    test: VQATensors
    vocab: list[str]
    answers: list[str]
    train_labels: Tensor | None = None
    val_labels: Tensor | None = None
    pretrain: VQATensors | None = None
    pretrain_labels: Tensor | None = None


def make_data(exp: AgentsExperiment, progress: bool = True, pretrain: bool = True) -> ExperimentData:
    """Generate the scenes and questions (deterministic by the experiment's sizes and seed).

    ``pretrain=False`` skips the scenes that only the pre-training stages read (evaluation and
    ``semcom send`` need the three splits alone)."""
    t0 = time.perf_counter()
    train, val, test = make_vqa_dataset(exp.n_scenes, exp.questions_per_scene, seed=exp.seed,
                                        image_size=exp.image_size, progress=progress)
    data = ExperimentData(VQATensors.from_dataset(train), VQATensors.from_dataset(val).subset(exp.n_val),
                          VQATensors.from_dataset(test), list(train.vocab.itos), list(train.answers.itos),
                          grid_labels(train.scenes, exp.image_size, exp.patch),
                          grid_labels(val.scenes, exp.image_size, exp.patch))
    if exp.pretrain_scenes and pretrain:
        extra, _, _ = make_vqa_dataset(exp.pretrain_scenes, exp.questions_per_scene,
                                       seed=exp.seed + 1000, image_size=exp.image_size,
                                       split=(1.0, 0.0, 0.0), progress=progress)
        data.pretrain = VQATensors.from_dataset(extra)
        data.pretrain_labels = grid_labels(extra.scenes, exp.image_size, exp.patch)
    log.info("data: %d / %d / %d questions in %.1f s", len(data.train), len(data.val), len(data.test),
             time.perf_counter() - t0)
    return data


def checkpoint_path(ckdir: str | Path, stage: str) -> Path:
    return Path(ckdir) / CHECKPOINT_NAMES[stage]


def _exists(path: Path) -> bool:
    return checkpoint_paths(path)[1].is_file()


def _train_seconds(history: list[dict]) -> float:
    """Wall time of a stage: every phase's records count their seconds from the phase's start."""
    last: dict[str, float] = {}
    for rec in history:
        last[rec.get("phase", "")] = rec["seconds"]
    return float(sum(last.values()))


def _meta(exp: AgentsExperiment, stage: str, history: list[dict], command: str) -> dict[str, Any]:
    return {"stage": stage, "experiment": exp.to_dict(), "history": history, "command": command,
            "train_seconds": _train_seconds(history), "torch_threads": torch.get_num_threads()}


def _resume_state(path: Path, resume: bool) -> dict[str, Any] | None:
    state = load_train_state(path) if resume else None
    if state is not None:
        log.info("resuming %s from epoch %d", path, state["epoch"])
    return state


def _epoch_saver(path: Path, module: torch.nn.Module, skip: str = ""
                 ) -> Callable[[list[dict], dict[str, Any]], None]:
    """After every epoch: the resume state (optimizer, generator, history) + the trained weights."""
    def save(history: list[dict], state: dict[str, Any]) -> None:
        weights = {k: v for k, v in module.state_dict().items() if not (skip and k.startswith(skip))}
        torch.save(state | {"model": weights}, train_state_path(path))
    return save


def _pretrained_parser(ckdir: str | Path) -> SceneParser:
    """The scene-parsing pre-trained backbone and parse head (stage ``vision``)."""
    return load_vision(checkpoint_path(ckdir, "vision"))[0]


def _pretrain_scenes(data: ExperimentData) -> tuple[VQATensors, Tensor]:
    """The pre-training scenes and their scene-parsing targets (a clear error if they were not made)."""
    if data.pretrain is None or data.pretrain_labels is None:
        raise ValueError("the pre-training stages need the pre-training scenes: "
                         "make_data(..., pretrain=True)")
    return data.pretrain, data.pretrain_labels


@dataclass
class _StageRun:
    """What every stage's trainer gets: the experiment, its data, the stage and where it saves."""

    exp: AgentsExperiment
    stage: str
    data: ExperimentData
    ckdir: Path
    path: Path  # the stage's checkpoint
    cfg: Any  # the small models' configuration (exp.small_config)
    tcfg: AgentTrainConfig
    state: dict[str, Any] | None  # resume state, None for a fresh start
    fit_kw: dict[str, Any]  # progress and resume, for semcom.training.fit
    command: str
    store_dtype: torch.dtype | None

    def meta(self, hist: list[dict]) -> dict[str, Any]:
        return _meta(self.exp, self.stage, hist, self.command)


def _train_vision(run: _StageRun) -> list[dict]:
    data = run.data
    if data.train_labels is None or data.val_labels is None:
        raise ValueError("vision pre-training needs scene graphs (the generated data)")
    images, labels = data.train.images, data.train_labels
    if run.exp.pretrain_scenes:
        extra, extra_labels = _pretrain_scenes(data)
        images, labels = torch.cat([images, extra.images]), torch.cat([labels, extra_labels])
    parser = SceneParser(run.cfg)
    if run.state is not None:
        parser.load_state_dict(run.state["model"])
    hist = pretrain_vision(parser, images, labels, run.tcfg, (data.val.images, data.val_labels),
                           on_epoch_end=_epoch_saver(run.path, parser), **run.fit_kw)
    save_vision(run.path, parser, run.cfg, run.meta(hist), store_dtype=run.store_dtype)
    return hist


def _train_receiver(run: _StageRun) -> list[dict]:
    """The receiver, or ``text``: a copy of the frozen receiver fine-tuned to read natural-language
    summaries."""
    model = TaskAgent(run.cfg)
    if run.stage == "text":
        model.load_state_dict(load_receiver(checkpoint_path(run.ckdir, "receiver"))[0].state_dict())
        model.requires_grad_(True)
    if run.state is not None:
        model.load_state_dict(run.state["model"])
    rx_train = run.data.train
    if run.stage == "receiver" and run.exp.pretrain_scenes:
        rx_train = VQATensors.concat([run.data.train, _pretrain_scenes(run.data)[0]])
    hist = pretrain_receiver(model, rx_train, run.tcfg, run.data.val,
                             on_epoch_end=_epoch_saver(run.path, model), **run.fit_kw)
    save_receiver(run.path, model, run.meta(hist), store_dtype=run.store_dtype)
    return hist


def _train_transmitter(run: _StageRun) -> list[dict]:
    """``tokens`` (the raw-token sensor) or ``jtcc`` (its JTCC-compressed copy), against the frozen
    receiver."""
    exp, cfg, tcfg, data = run.exp, run.cfg, run.tcfg, run.data
    rx_path = checkpoint_path(run.ckdir, "receiver")
    receiver, _ = load_receiver(rx_path)
    check_vocab(receiver.cfg, data.vocab, data.answers, str(rx_path))
    if run.stage == "tokens":
        sensor = SensorAgent(cfg)
        sensor.pretrained_parser(_pretrained_parser(run.ckdir))
        link = make_link("raw", cfg.d, grad_mode=exp.grad_mode)
    else:
        # The JTCC transmitter starts from the raw-token one: "the same tokens", then compressed.
        sensor = load_pipeline(checkpoint_path(run.ckdir, "tokens"), rx_path)[0].sensor
        link = make_link("jtcc", cfg.d, exp.jtcc_m, exp.jtcc_hidden, exp.grad_mode)
    sensor.freeze_pretrained(exp.freeze_vision)
    pipeline = TokenPipeline(sensor, link, receiver)
    # The distillation teacher is the transmitter as the stage starts (before a resume moves it).
    teacher = clean_token_logits(pipeline, data.train) if tcfg.distill_weight > 0 else None
    if run.state is not None:
        pipeline.load_state_dict(run.state["model"], strict=False)  # the receiver is not in it
    channel = named_channel("awgn", seed=tcfg.seed)
    progress = run.fit_kw["progress"]
    hist: list[dict] = []
    if tcfg.align_epochs and run.state is None:  # a resumed run is past the warm-ups
        warm = dataclasses.replace(tcfg, epochs=tcfg.align_epochs, max_seconds=None)
        hist = [{"phase": "align", **h} for h in pretrain_alignment(pipeline, data.train, warm,
                                                                    progress=progress)]
    if tcfg.link_epochs and run.state is None:
        warm = dataclasses.replace(tcfg, epochs=tcfg.link_epochs, max_seconds=None)
        hist += [{"phase": "link", **h} for h in pretrain_link(pipeline, data.train, channel, warm,
                                                              progress=progress)]
    if tcfg.curriculum_epochs and run.state is None:
        first = dataclasses.replace(tcfg, epochs=tcfg.curriculum_epochs, snr_db=tcfg.curriculum_snr_db,
                                    max_seconds=None)
        hist += [{"phase": "curriculum", **h} for h in train_token_pipeline(
            pipeline, data.train, channel, first, data.val, val_snr_db=15.0, progress=progress,
            teacher_logits=teacher)]
    hist += train_token_pipeline(pipeline, data.train, channel, tcfg, data.val, val_snr_db=15.0,
                                 teacher_logits=teacher,
                                 on_epoch_end=_epoch_saver(run.path, pipeline, skip="receiver."),
                                 **run.fit_kw)
    save_pipeline(run.path, pipeline, rx_path, run.meta(hist), store_dtype=run.store_dtype)
    return hist


def _train_raw_vqa(run: _StageRun) -> list[dict]:
    exp = run.exp
    model = RawVQA(run.cfg)
    model.vision.load_state_dict(_pretrained_parser(run.ckdir).vision.state_dict())
    model.vision.requires_grad_(not exp.freeze_vision)
    if exp.raw_vqa_from_receiver:
        model.task.load_state_dict(load_receiver(checkpoint_path(run.ckdir, "receiver"))[0].state_dict())
        model.task.requires_grad_(True)
    if run.state is not None:
        model.load_state_dict(run.state["model"])
    hist = train_raw_vqa(model, run.data.train, run.tcfg, run.data.val,
                         on_epoch_end=_epoch_saver(run.path, model), **run.fit_kw)
    save_raw_vqa(run.path, model, run.meta(hist), store_dtype=run.store_dtype)
    return hist


# Each stage's trainer (STAGES is the order train_all runs them in).
_STAGE_TRAINERS: dict[str, Callable[[_StageRun], list[dict]]] = {
    "vision": _train_vision, "receiver": _train_receiver, "text": _train_receiver,
    "tokens": _train_transmitter, "jtcc": _train_transmitter, "raw_vqa": _train_raw_vqa,
}


def train_stage(exp: AgentsExperiment, stage: str, data: ExperimentData, ckdir: str | Path,
                command: str = "", progress: bool = True, resume: bool = True,
                store_dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Train one stage and save its checkpoint. After every epoch ``<name>.train.pt`` holds what resuming
    needs (removed when the stage ends), so an interrupted stage continues where it stopped. Returns the
    checkpoint's metadata. Stages after ``receiver`` load the checkpoints of the stages they need."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    path = checkpoint_path(ckdir, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    tcfg: AgentTrainConfig = getattr(exp, stage)
    # The stage's own seed drives every training draw (initial weights, batches, channel noise), so the
    # same data (exp.seed) can be retrained with another seed (`semcom train --train-seed`).
    torch.manual_seed(tcfg.seed)
    state = _resume_state(path, resume)
    run = _StageRun(exp=exp, stage=stage, data=data, ckdir=Path(ckdir), path=path,
                    cfg=exp.small_config(data.vocab, data.answers), tcfg=tcfg, state=state,
                    fit_kw={"progress": progress, "resume": state}, command=command, store_dtype=store_dtype)
    hist = _STAGE_TRAINERS[stage](run)
    train_state_path(path).unlink(missing_ok=True)
    meta = run.meta(hist)
    log.info("stage %s: %.1f s, checkpoint %s", stage, meta["train_seconds"], path)
    return meta


def train_all(exp: AgentsExperiment, ckdir: str | Path, stages: tuple[str, ...] = STAGES,
              retrain: bool = False, command: str = "", progress: bool = True,
              data: ExperimentData | None = None, store_dtype: torch.dtype | None = None
              ) -> dict[str, dict[str, Any]]:
    """Run ``stages`` in order; a stage whose checkpoint exists is kept unless ``retrain``."""
    data = data or make_data(exp, progress)
    out: dict[str, dict[str, Any]] = {}
    for stage in stages:
        path = checkpoint_path(ckdir, stage)
        if _exists(path) and not retrain:
            log.info("stage %s: using %s", stage, path)
            continue
        out[stage] = train_stage(exp, stage, data, ckdir, command, progress, store_dtype=store_dtype)
    return out


# ----------------------------------------------------------------------------------------------- eval

def _row(method: str, channel: str, snr: float | None, acc: dict[str, float], values: float,
         **extra: Any) -> dict[str, Any]:
    """One results row: accuracy (overall and per family) and the real channel values per question."""
    row = {"method": method, "channel": channel, "snr_db": "" if snr is None else snr,
           "accuracy": acc["all"], "channel_values": values}
    row.update(extra)
    row.update({f"acc_{k}": v for k, v in acc.items() if k != "all"})
    return row


def load_models(ckdir: str | Path, data: ExperimentData | None = None) -> dict[str, Any]:
    """Whatever checkpoints of the four stages exist in ``ckdir`` (vocabularies checked against
    ``data``)."""
    models: dict[str, Any] = {}
    rx_path = checkpoint_path(ckdir, "receiver")
    if not _exists(rx_path):
        raise CheckpointError(f"no receiver checkpoint in {ckdir} (train it: semcom train receiver)")
    models["receiver"], _ = load_receiver(rx_path)
    if _exists(checkpoint_path(ckdir, "text")):
        models["text"], _ = load_receiver(checkpoint_path(ckdir, "text"))
    for stage in ("tokens", "jtcc"):
        if _exists(checkpoint_path(ckdir, stage)):
            models[stage], _ = load_pipeline(checkpoint_path(ckdir, stage), rx_path)
    if _exists(checkpoint_path(ckdir, "raw_vqa")):
        models["raw_vqa"], _ = load_raw_vqa(checkpoint_path(ckdir, "raw_vqa"))
    if data is not None:
        for name, m in models.items():
            cfg = m.cfg if hasattr(m, "cfg") else m.receiver.cfg
            check_vocab(cfg, data.vocab, data.answers, f"{name} checkpoint in {ckdir}")
    return models


def first_objects_logits(rx: TaskAgent, b: dict[str, Tensor], k: int) -> Tensor:
    """The receiver's answer logits (B, A) given only the first ``k`` ground-truth object tokens of each
    scene (left to right): the ceiling of a transmitter that puts one object in each of k tokens."""
    prefix, mask = rx.embed_scene(b["scene"])
    return rx(prefix[:, :k], mask[:, :k], b["question"])


def _deepjscc_rows(raw: RawVQA, jscc_checkpoint: str | Path, test: VQATensors, channels: tuple[str, ...],
                   snrs: tuple[float, ...], seed: int) -> list[dict[str, Any]]:
    """Baseline (2): the image sent with DeepJSCC, the raw-image VQA model answers from the
    reconstruction. The codec is fully convolutional, so the 32x32-trained one runs on 64x64 scenes."""
    from semcom.jscc.checkpoint import load_checkpoint

    return deepjscc_rows(raw, load_checkpoint(jscc_checkpoint)[0], test, channels, snrs, seed)


def deepjscc_correct(raw: RawVQA, codec: torch.nn.Module, test: VQATensors, channel: torch.nn.Module,
                     snr: float, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Raw-image VQA on ``codec``'s (a ``semcom.jscc.DeepJSCC``) reconstructions over ``channel`` at
    ``snr`` (reseeded with ``seed``): per question (correct (N,) bool, family (N,) int), and the mean
    image PSNR (dB)."""
    from semcom.jscc.train import psnr_per_image

    channel.reseed(seed)
    psnrs: list[Tensor] = []

    def logits(b: dict[str, Tensor]) -> Tensor:
        x_hat = codec(b["image"], channel, snr_db=snr)
        psnrs.append(psnr_per_image(b["image"], x_hat))
        return raw(x_hat, b["question"])

    correct, family = predictions(logits, test)
    return correct, family, float(torch.cat(psnrs).mean())


def deepjscc_rows(raw: RawVQA, codec: torch.nn.Module, test: VQATensors, channels: tuple[str, ...],
                  snrs: tuple[float, ...], seed: int) -> list[dict[str, Any]]:
    """Raw-image VQA on ``codec``'s reconstructions over each channel and SNR (``deepjscc_correct``):
    one row per point with the accuracy and the mean image PSNR."""
    from semcom.jscc.model import channel_uses

    size = test.images.shape[-1]
    values = float(2 * channel_uses(codec.cfg.c, size, size))
    rows = []
    for ch_name in channels:
        ch = named_channel(ch_name, seed=seed)
        for snr in snrs:
            correct, family, psnr = deepjscc_correct(raw, codec, test, ch, snr, seed)
            acc = accuracy_by_family(correct, family, test.families)
            rows.append(_row("deepjscc_raw_vqa", ch_name, snr, acc, values, image_psnr_db=psnr))
            log.info("deepjscc_raw_vqa %s %g dB: %.4f", ch_name, snr, acc["all"])
    return rows


def evaluate(exp: AgentsExperiment, ckdir: str | Path, out_dir: str | Path,
             snrs: tuple[float, ...] = DEFAULT_SNRS, channels: tuple[str, ...] = DEFAULT_CHANNELS,
             data: ExperimentData | None = None, n_test: int | None = None, progress: bool = True,
             train_info: dict[str, Any] | None = None,
             jscc_checkpoint: str | Path | None = DEFAULT_JSCC) -> list[dict[str, Any]]:
    """Accuracy of every method on the test split; writes results.csv, results.png, summary.json.

    Methods: the receiver on ground-truth descriptions (upper bound) and on natural-language summaries
    (sent digitally), raw-image VQA on clean images, raw-image VQA on DeepJSCC reconstructions, and the
    token pipelines (JTCC and raw tokens) ideal and over ``channels`` at ``snrs``."""
    for ch in channels:
        if ch not in NAMED_CHANNELS:
            raise ValueError(f"unknown channel {ch!r}; choose from {sorted(NAMED_CHANNELS)}")
    data = data or make_data(exp, progress, pretrain=False)
    test = data.test.subset(n_test) if n_test else data.test
    models = load_models(ckdir, data)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    rx: TaskAgent = models["receiver"]
    k, d = rx.cfg.k_tokens, rx.cfg.d
    summary_words = float((test.summary[test.image_of] != 0).sum(dim=1).float().mean())
    rows.append(_row("receiver_ground_truth", "none", None,
                     accuracy(lambda b: receiver_logits(rx, b, "scene"), test), 0.0))
    # How many tokens the receiver needs: its accuracy given only the first k ground-truth object tokens
    # (left to right), the ceiling for a transmitter that puts one object in each of k tokens.
    for kk in range(1, 7):
        acc_k = accuracy(lambda b, kk=kk: first_objects_logits(rx, b, kk), test)
        rows.append(_row("receiver_first_k_objects", "none", None, acc_k, 0.0, k_tokens=kk))
    # The natural-language baseline: the summary sent digitally and error-free, at the bits it needs
    # (words x log2(vocab)); the channel values it would take at capacity are in the row.
    reader = models.get("text", rx)  # the receiver's copy fine-tuned on summaries, if trained
    nl = accuracy(lambda b: receiver_logits(reader, b, "summary"), test)
    bits = summary_words * math.log2(rx.cfg.vocab_size)
    rows.append(_row("natural_language_summary", "error-free digital", None, nl, 0.0,
                     bits_per_question=bits))
    if "raw_vqa" in models:
        raw: RawVQA = models["raw_vqa"]
        pixels = 3 * exp.image_size ** 2
        rows.append(_row("raw_image_vqa", "clean image", None,
                         accuracy(lambda b: raw(b["image"], b["question"]), test), float(pixels)))
    if "raw_vqa" in models and jscc_checkpoint is not None:
        rows += _deepjscc_rows(models["raw_vqa"], jscc_checkpoint, test, channels, snrs, exp.seed + 1)
    for stage, method in (("jtcc", "tokens_jtcc"), ("tokens", "tokens_raw")):
        if stage not in models:
            continue
        pipe: TokenPipeline = models[stage]
        values = float(k * pipe.link.m)
        rows.append(_row(method, "ideal", None, evaluate_pipeline(pipe, test, None, 0.0), values, k_tokens=k))
        for ch_name in channels:
            ch = named_channel(ch_name, seed=exp.seed + 1)
            for snr in snrs:
                acc = evaluate_pipeline(pipe, test, ch, snr, seed=exp.seed + 1)
                rows.append(_row(method, ch_name, snr, acc, values, k_tokens=k))
                log.info("%s %s %g dB: %.4f", method, ch_name, snr, acc["all"])
    seconds = time.perf_counter() - t0
    out = Path(out_dir)
    write_csv(out / "results.csv", uniform_rows(rows))
    plot(out / "results.png", [r for r in rows if r["method"] != "receiver_first_k_objects"], exp)
    plot_tokens(out / "accuracy_vs_tokens.png", rows)
    summary = {"experiment": exp.to_dict(), "n_test_questions": len(test), "snrs_db": list(snrs),
               "channels": list(channels), "eval_seconds": seconds, "acceptance": acceptance(rows),
               "tokens": {"k": k, "d": d, "jtcc_m": exp.jtcc_m},
               "natural_language_bits": bits, "checkpoints": str(ckdir)}
    if train_info:
        summary["train"] = train_info
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return rows


def uniform_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with differing keys -> rows that all have every key (in first-seen order; missing ones
    "") so that one CSV header fits them."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    return [{k: r.get(k, "") for k in keys} for r in rows]
