"""Training and evaluation of the small agents (receiver pre-training, token pipelines, raw-image VQA).

All loops run on ``semcom.training.fit`` (cosine learning rate, wall-time cap, progress bar, resume). The
data is first packed into ``VQATensors`` (padded id matrices + uint8 images) so a batch is a few index
operations, not a Python collate of dicts.

Shapes: see ``semcom.agents.small``. Losses are cross-entropy over the answer classes
(``IGNORE_INDEX`` = -100 answers are skipped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from semcom import distributed
from semcom.data.datasets import collate_vqa
from semcom.data.vocab import IGNORE_INDEX, PAD
from semcom.training import fit

from .small import RawVQA, SceneParser, TaskAgent, TokenPipeline

Tensor = torch.Tensor
ChannelFn = Callable[..., Tensor]
LINK_TARGETS: tuple[str, ...] = ("tokens", "scene")  # what pretrain_link fits the decoded tokens to


@dataclass
class AgentTrainConfig:
    """Optimisation settings shared by every agent training run (JSON-able, stored with checkpoints).

    ``snr_db``: training SNR range (dB, uniform per sample) of the channel in the loop (token pipelines).
    ``summary_fraction``: share of receiver pre-training samples whose prefix is the natural-language
    summary instead of the ground-truth scene description (0 for the task agent itself: mixed in, the
    summaries held compare-attribute questions at chance; 1 for its summary-reading copy).
    ``sensor_lr_scale``: the transmitter's learning rate relative to ``lr`` when a link is trained on top
    of an already trained transmitter (JTCC after raw tokens).
    ``align_weight``: weight of the alignment loss of the transmitter's tokens to the receiver's own
    embedding of the ground-truth scene (``alignment_loss``; 0 = the task loss alone). ``link_epochs``:
    epochs of link-only autoencoder training (``pretrain_link``) before the joint training.
    ``align_epochs``: epochs of alignment-only training of a fresh transmitter (``pretrain_alignment``,
    the feature-alignment stage) before the joint training.
    ``distill_weight``: weight of a distillation term beside the answer's cross-entropy in the joint
    training: the KL divergence from the receiver's answer distribution on the transmitter's *clean*
    tokens (as the stage starts: no link, no channel; ``clean_token_logits``) to its distribution on the
    tokens through the link and channel, at temperature ``distill_temperature`` (0 = no distillation).
    ``curriculum_epochs``: joint epochs run first at the SNR range ``curriculum_snr_db`` (their own cosine
    schedule) before the ``epochs`` at ``snr_db`` (0 = none).
    ``link_target``: what the link-only warm-up teaches the link to deliver: ``"tokens"`` (reconstruct the
    transmitter's tokens) or ``"scene"`` (the receiver's own tokens for the scene's objects,
    ``alignment_loss``: only what the receiver reads, not every direction of the transmitter's tokens).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    lr_min: float = 2e-5
    weight_decay: float = 0.01
    seed: int = 0
    max_seconds: float | None = None
    snr_db: tuple[float, float] = (0.0, 20.0)
    summary_fraction: float = 0.0
    sensor_lr_scale: float = 1.0
    grad_clip: float = 1.0
    align_weight: float = 0.0
    link_epochs: int = 0
    align_epochs: int = 0
    distill_weight: float = 0.0
    distill_temperature: float = 1.0
    curriculum_epochs: int = 0
    curriculum_snr_db: tuple[float, float] = (20.0, 20.0)
    link_target: str = "tokens"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["snr_db"] = list(self.snr_db)
        d["curriculum_snr_db"] = list(self.curriculum_snr_db)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentTrainConfig:
        d = dict(d)
        for name in ("snr_db", "curriculum_snr_db"):
            if name in d:
                d[name] = tuple(d[name])
        return cls(**d)


def _pad_stack(seqs: list[Tensor]) -> Tensor:
    return collate_vqa([{"x_ids": s} for s in seqs])["x_ids"] if seqs else torch.zeros(0, 0, dtype=torch.long)


@dataclass
class VQATensors:
    """A whole VQA split as tensors: N questions over S images.

    images (S, 3, H, W) uint8; image_of (N,) long (which image a question is about); question (N, Lq),
    vague (N, Lv) long; scene (S, Ls), summary (S, Lm) long (per image); answer (N,), family (N,) long.
    Id matrices are padded with PAD = 0.
    """

    images: Tensor
    image_of: Tensor
    question: Tensor
    vague: Tensor
    scene: Tensor
    summary: Tensor
    answer: Tensor
    family: Tensor
    families: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return int(self.answer.shape[0])

    @classmethod
    def from_dataset(cls, ds: Any) -> VQATensors:
        """Pack any dataset with the project's item schema (generated, CLEVR, GQA).

        The generated dataset shares one image between the questions of a scene; other datasets get one
        image per question (quantised to uint8, as the images are 8-bit files anyway).
        """
        families = tuple(getattr(ds, "families", ()))
        if hasattr(ds, "questions") and hasattr(ds, "images") and hasattr(ds, "_scene_ids"):
            image_of = torch.tensor([s for s, _ in ds.questions], dtype=torch.long)
            return cls(images=ds.images, image_of=image_of, question=_pad_stack(ds._q_ids),
                       vague=_pad_stack(ds._v_ids), scene=_pad_stack(ds._scene_ids),
                       summary=_pad_stack(ds._summary_ids), answer=ds._answers.clone(),
                       family=torch.tensor([q.family for _, q in ds.questions], dtype=torch.long),
                       families=families)
        items = [ds[i] for i in range(len(ds))]
        if not items:
            raise ValueError("empty dataset")
        b = collate_vqa(items)
        images = (b["image"].clamp(0, 1) * 255.0).round().to(torch.uint8)
        return cls(images=images, image_of=torch.arange(len(items)), question=b["question_ids"],
                   vague=b["vague_ids"], scene=b["scene_ids"], summary=b["summary_ids"],
                   answer=b["answer"], family=b["family"], families=families)

    def subset(self, n: int) -> VQATensors:
        """The first ``n`` questions (images kept whole; cheap)."""
        n = min(n, len(self))
        return VQATensors(self.images, self.image_of[:n], self.question[:n], self.vague[:n], self.scene,
                          self.summary, self.answer[:n], self.family[:n], self.families)

    @staticmethod
    def concat(parts: list[VQATensors]) -> VQATensors:
        """Several packed sets as one (questions after questions, images after images)."""
        def cat(mats: list[Tensor]) -> Tensor:
            width = max(m.shape[1] for m in mats)
            return torch.cat([F.pad(m, (0, width - m.shape[1]), value=PAD) for m in mats])

        offsets = np.cumsum([0] + [p.images.shape[0] for p in parts[:-1]])
        image_of = torch.cat([p.image_of + int(o) for p, o in zip(parts, offsets, strict=True)])
        return VQATensors(images=torch.cat([p.images for p in parts]), image_of=image_of,
                          question=cat([p.question for p in parts]), vague=cat([p.vague for p in parts]),
                          scene=cat([p.scene for p in parts]), summary=cat([p.summary for p in parts]),
                          answer=torch.cat([p.answer for p in parts]),
                          family=torch.cat([p.family for p in parts]), families=parts[0].families)

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        """Items ``idx`` (B,) -> image (B, 3, H, W) float in [0, 1], id matrices trimmed to the batch's
        longest row, answer (B,), family (B,)."""
        img = self.image_of[idx]
        out = {"image": self.images[img].float().div_(255.0), "answer": self.answer[idx],
               "family": self.family[idx]}
        for name, mat, rows in (("question", self.question, idx), ("vague", self.vague, idx),
                                ("scene", self.scene, img), ("summary", self.summary, img)):
            m = mat[rows]
            width = int((m != PAD).sum(dim=1).max()) if m.numel() else 0
            out[name] = m[:, :max(width, 1)]
        return out


def _step(params: list[nn.Parameter], opt: torch.optim.Optimizer, loss: Tensor, clip: float) -> float:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    return float(loss.detach())


LossFn = Callable[[Tensor, torch.Generator], Tensor]


def _train_step(trained: nn.Module, params: list[nn.Parameter], opt: torch.optim.Optimizer,
                cfg: AgentTrainConfig, loss_fn: LossFn) -> Callable[[Tensor, torch.Generator], float]:
    """The ``fit`` step of every stage: ``loss_fn(idx, gen)`` (the mean loss of the items ``idx``, with
    the modules of ``trained``), back-propagated, clipped, one optimiser step. Under ``torchrun`` the
    processes share each batch and average their gradients before the clip (``semcom.distributed``)."""
    return distributed.data_parallel_step(trained, loss_fn,
                                          lambda loss: _step(params, opt, loss, cfg.grad_clip))


def _seed(cfg: AgentTrainConfig, channel: nn.Module | None = None) -> None:
    """Seed the global RNG (and, on ranks > 0 of a process group, the channel's noise) for a stage: every
    process draws its own noise for its share of the batch; a single process is seeded as always."""
    torch.manual_seed(distributed.rank_seed(cfg.seed))
    w = distributed.world()
    if w.enabled and w.rank > 0 and channel is not None and hasattr(channel, "reseed"):
        channel.reseed(distributed.rank_seed(cfg.seed))


def _adamw(groups: list[dict[str, Any]], cfg: AgentTrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _loss(logits: Tensor, answer: Tensor) -> Tensor:
    return F.cross_entropy(logits, answer, ignore_index=IGNORE_INDEX)


def receiver_logits(receiver: TaskAgent, b: dict[str, Tensor], prefix: str) -> Tensor:
    """The receiver on a batch with the ``"scene"`` (ground truth) or ``"summary"`` (text) prefix."""
    if prefix == "scene":
        return receiver.answer_scene(b["scene"], b["question"])
    if prefix == "summary":
        return receiver.answer_text(b["summary"], b["question"])
    raise ValueError(f"prefix must be 'scene' or 'summary', got {prefix!r}")


def pretrain_receiver(receiver: TaskAgent, data: VQATensors, cfg: AgentTrainConfig,
                      val: VQATensors | None = None, progress: bool = True, **fit_kw: Any) -> list[dict]:
    """Pre-train the task agent on ground-truth scene descriptions (and, for ``summary_fraction`` of each
    batch, natural-language summaries) + detailed question -> answer. Records ``val_acc`` (scene prefix)
    and ``val_acc_summary`` per epoch when ``val`` is given."""
    _seed(cfg)
    params = [p for p in receiver.parameters() if p.requires_grad]
    opt = _adamw([{"params": params}], cfg)

    def loss_fn(idx: Tensor, gen: torch.Generator) -> Tensor:
        receiver.train()
        b = data.batch(idx)
        use_summary = torch.rand(idx.shape[0], generator=gen) < cfg.summary_fraction
        loss = receiver.answer_scene(b["scene"], b["question"]).new_zeros(())
        for mask, prefix in ((~use_summary, "scene"), (use_summary, "summary")):
            if mask.any():
                sub = {k: v[mask] for k, v in b.items()}
                share = mask.float().mean()
                loss = loss + _loss(receiver_logits(receiver, sub, prefix), sub["answer"]) * share
        return loss

    def evaluate() -> dict[str, float]:
        by_family = accuracy(lambda b: receiver_logits(receiver, b, "scene"), val)
        rec = {"val_acc": by_family.pop("all"),
               "val_acc_summary": accuracy(lambda b: receiver_logits(receiver, b, "summary"), val)["all"]}
        return rec | {f"val_{name}": acc for name, acc in by_family.items()}

    hist = fit(opt, len(data), cfg, _train_step(receiver, params, opt, cfg, loss_fn),
               evaluate=evaluate if val is not None else None, progress=progress, desc="receiver", **fit_kw)
    receiver.eval()
    return hist


def parse_loss(logits: dict[str, Tensor], labels: Tensor) -> Tensor:
    """Scene-parsing loss: object presence on every label cell + attributes where an object is."""
    loss = F.cross_entropy(logits["object"].flatten(0, -2), labels[..., 0].flatten())
    for i, name in enumerate(("size", "color", "shape"), start=1):
        loss = loss + F.cross_entropy(logits[name].flatten(0, -2), labels[..., i].flatten(),
                                      ignore_index=IGNORE_INDEX)
    return loss


@torch.no_grad()
def parse_accuracy(parser: SceneParser, images: Tensor, labels: Tensor, k: int | None = None,
                   batch_size: int = 250) -> dict[str, float]:
    """Scene parsing on held-out images: object-cell F1 and attribute accuracy on true object cells.

    With ``k``, also how often the K most object-like label cells (the sensor's slot proposals) hold
    every object a K-slot transmitter could send: ``recall_<n>_objects`` = the share of the scenes of n
    objects whose min(n, K) object cells are all among the K proposals. images (S, 3, H, W) uint8,
    labels from ``grid_labels``."""
    was = parser.training
    parser.eval()
    tp = fp = fn = 0
    right = dict.fromkeys(("size", "color", "shape"), 0)
    n_obj = 0
    all_proposed, objects_per_scene = [], []
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].float().div(255.0)
        y = labels[start:start + batch_size]
        out = parser(x)
        pred = out["object"].argmax(-1) == 1
        true = y[..., 0] == 1
        tp += int((pred & true).sum())
        fp += int((pred & ~true).sum())
        fn += int((~pred & true).sum())
        n_obj += int(true.sum())
        for i, name in enumerate(right, start=1):
            right[name] += int((out[name].argmax(-1) == y[..., i])[true].sum())
        if k is not None:
            is_object = true.flatten(1)  # (B, N * C), numbered as the proposals are
            n = is_object.sum(dim=1)
            hits = is_object.gather(1, parser.head.proposals(out, k)[1]).sum(dim=1)
            all_proposed.append(hits == n.clamp(max=k))
            objects_per_scene.append(n)
    parser.train(was)
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    result = {"object_f1": f1} | {f"{name}_acc": v / max(n_obj, 1) for name, v in right.items()}
    if k is not None:
        ok, n = torch.cat(all_proposed), torch.cat(objects_per_scene)
        result |= {f"recall_{int(c)}_objects": float(ok[n == c].float().mean()) for c in n.unique()}
    return result


def pretrain_vision(parser: SceneParser, images: Tensor, labels: Tensor, cfg: AgentTrainConfig,
                    val: tuple[Tensor, Tensor] | None = None, progress: bool = True,
                    **fit_kw: Any) -> list[dict]:
    """Pre-train the vision backbone by scene parsing. images (S, 3, H, W) uint8, labels from
    ``grid_labels`` (S, N, C, 4). Records val object F1 and attribute accuracies per epoch."""
    _seed(cfg)
    params = [p for p in parser.parameters() if p.requires_grad]
    opt = _adamw([{"params": params}], cfg)

    def loss_fn(idx: Tensor, gen: torch.Generator) -> Tensor:
        parser.train()
        return parse_loss(parser(images[idx].float().div_(255.0)), labels[idx])

    def evaluate() -> dict[str, float]:
        return {f"val_{k}": v for k, v in parse_accuracy(parser, *val).items()}

    hist = fit(opt, images.shape[0], cfg, _train_step(parser, params, opt, cfg, loss_fn),
               evaluate=evaluate if val is not None else None, progress=progress, desc="vision", **fit_kw)
    parser.eval()
    return hist


def snr_channel(channel: nn.Module | None, snr_db: Tensor | float | None) -> ChannelFn | None:
    """``channel`` with its SNR fixed for one call (``snr_db`` may be (B,) per sample)."""
    if channel is None:
        return None
    return lambda z: channel(z, snr_db=snr_db)


def alignment_targets(receiver: TaskAgent, scene_ids: Tensor, slots: int) -> Tensor:
    """The receiver's own tokens for a scene, as a transmitter with ``slots`` tokens should send them.

    -> targets (B, N, d), N = max(slots, objects in the batch): the receiver's embedding of each object
    (``TaskAgent.embed_scene``), then zero vectors, the "no object" token, where a scene has fewer
    objects than ``slots``. (The frozen receiver reads zero tokens as nothing: its accuracy on ground
    truth is the same with the prefix zero-padded to K.)
    """
    with torch.no_grad():
        target, mask = receiver.embed_scene(scene_ids)  # (B, O, d), (B, O)
        target = target * mask.unsqueeze(-1)
        return F.pad(target, (0, 0, 0, max(slots - target.shape[1], 0)))


def match_slots(cost: Tensor) -> Tensor:
    """Minimum-cost one-to-one assignment of K slots to N >= K targets, per sample.

    cost (B, K, N) -> (B, K) long: the target index of every slot (Hungarian method, scipy's
    ``linear_sum_assignment``; the K x N problems are tiny, one call per sample).
    """
    from scipy.optimize import linear_sum_assignment

    c = cost.detach().cpu().double().numpy()
    out = np.empty(c.shape[:2], dtype=np.int64)
    for i, ci in enumerate(c):
        rows, cols = linear_sum_assignment(ci)
        out[i, rows] = cols
    return torch.from_numpy(out).to(cost.device)


def alignment_loss(tokens: Tensor, receiver: TaskAgent, scene_ids: Tensor) -> Tensor:
    """Mean squared distance (per dimension) of the K (received) tokens (B, K, d) to the receiver's own
    tokens for the scene (``alignment_targets``: one per object, zero "no object" tokens where the scene
    has fewer than K), each token matched to its own target by the minimum-cost assignment.

    The counterpart of LLaVA's feature-alignment pre-training: it teaches the transmitter to speak in
    the receiver's embedding space, one object per token, before and while the task loss through the
    channel shapes the rest. The match makes it a set loss (as DETR's): the transmitter may list the
    objects in any order (the frozen receiver reads a shuffled scene as well as an ordered one; a fixed
    left-to-right order had to be learnt as a ranking and held the alignment at ~80 % relative error).
    With more objects than K the assignment picks the K it can send best. The receiver stays frozen:
    only the tokens get gradients.
    """
    target = alignment_targets(receiver, scene_ids, tokens.shape[1])
    cost = (tokens.unsqueeze(2) - target.unsqueeze(1)).pow(2).mean(dim=-1)  # (B, K, N)
    assign = match_slots(cost)  # (B, K)
    return cost.gather(2, assign.unsqueeze(-1)).mean()


def pretrain_alignment(pipeline: TokenPipeline, data: VQATensors, cfg: AgentTrainConfig,
                       progress: bool = True, **fit_kw: Any) -> list[dict]:
    """Train the transmitter alone to send the receiver's own tokens for the scene (``alignment_loss``
    on its K tokens, no link, no channel, no answer): the feature-alignment stage that LLaVA runs before
    instruction tuning, here the warm-up of a fresh sensor before the task loss through the channel.
    Cheap: the receiver only embeds the ground-truth scene, it does not run."""
    _seed(cfg)
    params = [p for p in pipeline.sensor.parameters() if p.requires_grad]
    opt = _adamw([{"params": params}], cfg)

    def loss_fn(idx: Tensor, gen: torch.Generator) -> Tensor:
        pipeline.sensor.train()
        b = data.batch(idx)
        tokens = pipeline.sensor(b["image"], b["vague"])
        return alignment_loss(tokens, pipeline.receiver, b["scene"])

    hist = fit(opt, len(data), cfg, _train_step(pipeline.sensor, params, opt, cfg, loss_fn),
               progress=progress, desc="align", **fit_kw)
    pipeline.eval()
    return hist


def pretrain_link(pipeline: TokenPipeline, data: VQATensors, channel: nn.Module | None, cfg: AgentTrainConfig,
                  progress: bool = True, **fit_kw: Any) -> list[dict]:
    """Train the link alone as an autoencoder of the (frozen) transmitter's tokens through the channel:
    loss = ||decoded - tokens||^2 / ||tokens||^2 per batch, SNR uniform in ``cfg.snr_db``. The warm-up a
    fresh JTCC gets before the joint task training, so the transmitter never sees a random decoder.
    With ``cfg.link_target == "scene"`` the decoded tokens are fitted to the receiver's own tokens for
    the scene instead (``alignment_loss``)."""
    if cfg.link_target not in LINK_TARGETS:
        raise ValueError(f"link_target must be one of {LINK_TARGETS}, got {cfg.link_target!r}")
    _seed(cfg, channel)
    params = [p for p in pipeline.link.parameters() if p.requires_grad]
    if not params:
        return []
    opt = _adamw([{"params": params}], cfg)
    lo, hi = cfg.snr_db

    def loss_fn(idx: Tensor, gen: torch.Generator) -> Tensor:
        pipeline.link.train()
        b = data.batch(idx)
        with torch.no_grad():
            tokens = pipeline.sensor(b["image"], b["vague"])
        snr = lo + (hi - lo) * torch.rand(idx.shape[0], generator=gen)
        decoded = pipeline.link(tokens, channel=snr_channel(channel, snr))
        if cfg.link_target == "scene":
            return alignment_loss(decoded, pipeline.receiver, b["scene"])
        return (decoded - tokens).pow(2).sum() / tokens.pow(2).sum().clamp_min(1e-12)

    hist = fit(opt, len(data), cfg, _train_step(pipeline.link, params, opt, cfg, loss_fn), progress=progress,
               desc="link", **fit_kw)
    pipeline.eval()
    return hist


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """KL(teacher || student) of the answer distributions at ``temperature``, mean over the batch, times
    temperature^2 (so its gradient keeps the scale of a cross-entropy's). logits (B, A) -> scalar; 0
    when the student's logits equal the teacher's (up to a constant per row)."""
    t = temperature
    teacher = F.log_softmax(teacher_logits.detach() / t, dim=-1)
    student = F.log_softmax(student_logits / t, dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * t * t


@torch.no_grad()
def clean_token_logits(pipeline: TokenPipeline, data: VQATensors, batch_size: int = 250) -> Tensor:
    """The receiver's answer logits (N, A) for every question of ``data`` (in order) on the transmitter's
    tokens as they are now, with no link and no channel: the teacher of ``distillation_loss``, computed
    once before a stage changes the transmitter."""
    was = pipeline.training
    pipeline.eval()
    out = []
    for start in range(0, len(data), batch_size):
        b = data.batch(torch.arange(start, min(start + batch_size, len(data))))
        out.append(pipeline.receiver(pipeline.sensor(b["image"], b["vague"]), None, b["question"]))
    pipeline.train(was)
    return torch.cat(out)


def train_token_pipeline(pipeline: TokenPipeline, data: VQATensors, channel: nn.Module | None,
                         cfg: AgentTrainConfig, val: VQATensors | None = None, val_snr_db: float = 15.0,
                         progress: bool = True, teacher_logits: Tensor | None = None,
                         **fit_kw: Any) -> list[dict]:
    """Train transmitter + link through the frozen receiver with the channel in the loop (SNR uniform in
    ``cfg.snr_db`` per sample). The link's ``grad_mode`` says how the gradient crosses the channel.
    Records ``val_acc`` at ``val_snr_db`` per epoch when ``val`` is given. With ``cfg.distill_weight`` the
    loss adds ``distillation_loss`` against ``teacher_logits`` (N, A) in ``data``'s order (default:
    ``clean_token_logits`` of the pipeline as it is when called)."""
    if cfg.distill_weight > 0 and teacher_logits is None:
        teacher_logits = clean_token_logits(pipeline, data)
    _seed(cfg, channel)
    sensor_params = [p for p in pipeline.sensor.parameters() if p.requires_grad]
    link_params = [p for p in pipeline.link.parameters() if p.requires_grad]
    groups = [{"params": sensor_params, "lr_scale": cfg.sensor_lr_scale}]
    if link_params:
        groups.append({"params": link_params, "lr_scale": 1.0})
    opt = _adamw(groups, cfg)
    lo, hi = cfg.snr_db

    def loss_fn(idx: Tensor, gen: torch.Generator) -> Tensor:
        pipeline.train()
        b = data.batch(idx)
        snr = lo + (hi - lo) * torch.rand(idx.shape[0], generator=gen)
        if cfg.align_weight > 0:
            # Aligned are the tokens the receiver gets (after the link and the channel).
            tokens = pipeline.sensor(b["image"], b["vague"])
            decoded = pipeline.link(tokens, channel=snr_channel(channel, snr))
            logits = pipeline.receiver(decoded, None, b["question"])
            align = alignment_loss(decoded, pipeline.receiver, b["scene"])
            loss = _loss(logits, b["answer"]) + cfg.align_weight * align
        else:
            logits = pipeline(b["image"], b["vague"], b["question"], channel=snr_channel(channel, snr))
            loss = _loss(logits, b["answer"])
        if cfg.distill_weight > 0:
            assert teacher_logits is not None
            loss = loss + cfg.distill_weight * distillation_loss(logits, teacher_logits[idx],
                                                                 cfg.distill_temperature)
        return loss

    def evaluate() -> dict[str, float]:
        return {"val_acc": evaluate_pipeline(pipeline, val, channel, val_snr_db, seed=cfg.seed)["all"]}

    step = _train_step(pipeline, sensor_params + link_params, opt, cfg, loss_fn)
    hist = fit(opt, len(data), cfg, step, evaluate=evaluate if val is not None else None, progress=progress,
               desc="tokens", **fit_kw)
    pipeline.eval()
    return hist


def train_raw_vqa(model: RawVQA, data: VQATensors, cfg: AgentTrainConfig, val: VQATensors | None = None,
                  progress: bool = True, **fit_kw: Any) -> list[dict]:
    """Train the raw-image VQA model end to end on (clean image, detailed question) -> answer."""
    _seed(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _adamw([{"params": params}], cfg)

    def loss_fn(idx: Tensor, gen: torch.Generator) -> Tensor:
        model.train()
        b = data.batch(idx)
        return _loss(model(b["image"], b["question"]), b["answer"])

    def evaluate() -> dict[str, float]:
        return {"val_acc": accuracy(lambda b: model(b["image"], b["question"]), val)["all"]}

    hist = fit(opt, len(data), cfg, _train_step(model, params, opt, cfg, loss_fn),
               evaluate=evaluate if val is not None else None, progress=progress, desc="raw-vqa", **fit_kw)
    model.eval()
    return hist


@torch.no_grad()
def predictions(logits_fn: Callable[[dict[str, Tensor]], Tensor], data: VQATensors,
                batch_size: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """Run ``logits_fn`` over ``data`` in order -> (correct (N,) bool, family (N,) int); answers that are
    IGNORE_INDEX count as wrong (they are unanswerable for a closed answer set)."""
    correct, fam = [], []
    for start in range(0, len(data), batch_size):
        b = data.batch(torch.arange(start, min(start + batch_size, len(data))))
        pred = logits_fn(b).argmax(dim=-1)
        correct.append((pred == b["answer"]).numpy())
        fam.append(b["family"].numpy())
    return np.concatenate(correct), np.concatenate(fam)


def accuracy_by_family(correct: np.ndarray, family: np.ndarray, families: tuple[str, ...] = ()
                       ) -> dict[str, float]:
    """{"all": mean accuracy, <family name>: accuracy, ...} in [0, 1]."""
    out = {"all": float(correct.mean()) if correct.size else float("nan")}
    for f in np.unique(family):
        name = families[f] if f < len(families) else str(int(f))
        out[name] = float(correct[family == f].mean())
    return out


def accuracy(logits_fn: Callable[[dict[str, Tensor]], Tensor], data: VQATensors | None,
             batch_size: int = 250) -> dict[str, float]:
    """Accuracy overall and per family of ``logits_fn`` over ``data`` (eval mode is the caller's)."""
    if data is None:
        raise ValueError("no evaluation data")
    correct, fam = predictions(logits_fn, data, batch_size)
    return accuracy_by_family(correct, fam, data.families)


def pipeline_correct(pipeline: TokenPipeline, data: VQATensors, channel: nn.Module | None, snr_db: float,
                     seed: int | None = 0, batch_size: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """Per question (in ``data``'s order): is the token pipeline right over ``channel`` at ``snr_db``?
    -> (correct (N,) bool, family (N,) int). The channel is reseeded with ``seed`` first when it can be,
    so every model sees the same noise draws (and paired tests compare the same questions)."""
    was_training = pipeline.training
    pipeline.eval()
    if channel is not None and seed is not None and hasattr(channel, "reseed"):
        channel.reseed(seed)
    fn = snr_channel(channel, snr_db)
    out = predictions(lambda b: pipeline(b["image"], b["vague"], b["question"], channel=fn), data, batch_size)
    pipeline.train(was_training)
    return out


def evaluate_pipeline(pipeline: TokenPipeline, data: VQATensors | None, channel: nn.Module | None,
                      snr_db: float, seed: int | None = 0, batch_size: int = 250) -> dict[str, float]:
    """Accuracy (overall and per family) of the token pipeline over ``channel`` at ``snr_db``
    (``pipeline_correct``)."""
    if data is None:
        raise ValueError("no evaluation data")
    correct, fam = pipeline_correct(pipeline, data, channel, snr_db, seed, batch_size)
    return accuracy_by_family(correct, fam, data.families)
