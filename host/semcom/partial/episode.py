"""One partial-sampling episode: R rounds of (feedback -> A patches over the channel -> fusion).

Round r = 1 .. R:

1. The receiver picks A places it has not asked for: ``guided`` takes the A best relevance scores of
   its current state (round 1: its prior from the source size alone); ``random`` draws A uniformly
   among those not yet sampled (the baseline: no feedback). In guided mode the choice is a feedback
   message (``semcom.partial.feedback``), sent over a ``FeedbackLink`` when one is given: the edge
   agents then sample where the decoded message says.
2. Each edge agent cuts its p x p patch, encodes it (``PatchEncoder``); the A patches of one scene
   travel as one channel use block (one OFAT frame on the flowgraph), with their place indices as
   digital side information (``position_bits``).
3. The receiver fuses every patch received so far and classifies (logits after every round).

During training the guided choice is sampled from the receiver's own softmax (exploration) instead
of the best scores, and ``relevance`` losses teach the scores where the digit's not yet received
ink is (``model.relevance_target``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .feedback import FeedbackLink, FeedbackMessage, index_bits, message_bytes
from .model import (
    PatchEncoder,
    Receiver,
    cover,
    extract_patches,
    grid_side,
    location_target,
    relevance_target,
)
from .scenes import Scenes

Tensor = torch.Tensor
MODES = ("guided", "random")


@dataclass
class Episode:
    """What one batch of episodes produced."""

    logits: list[Tensor] = field(default_factory=list)     # per round, (B, 10)
    places: list[Tensor] = field(default_factory=list)     # per round, (B, A) grid indices
    relevance_loss: list[Tensor] = field(default_factory=list)   # training only: scores vs new digit ink
    location_loss: list[Tensor] = field(default_factory=list)    # training only: digit centre
    decode_loss: list[Tensor] = field(default_factory=list)      # training only: patch pixels (MSE)
    feedback_bits: int = 0                                  # downlink control bits, all scenes
    position_bits: int = 0                                  # uplink place indices, all scenes
    channel_uses: int = 0                                   # complex channel uses, all scenes
    uses_after: list[int] = field(default_factory=list)     # channel_uses after each round


def _pick(scores: Tensor, asked: Tensor, agents: int, sample: bool, generator: torch.Generator) -> Tensor:
    """A distinct places (B, A) among those not ``asked`` (B, G*G) bool: top scores, or a Gumbel sample."""
    s = scores.detach().masked_fill(asked, float("-inf"))
    if sample:
        u = torch.rand(s.shape, generator=generator).clamp_(1e-9, 1 - 1e-9)
        s = s - torch.log(-torch.log(u))  # Gumbel top-k = sampling without replacement from softmax(s)
    return s.topk(agents, dim=1).indices


def _relevance_loss(scores: Tensor, asked: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of softmax(scores) over the unasked places against the normalised new-ink target."""
    target = target.masked_fill(asked, 0.0)
    total = target.sum(dim=1, keepdim=True)
    has = total.squeeze(1) > 1e-6
    if not bool(has.any()):
        return scores.sum() * 0.0
    logp = F.log_softmax(scores.masked_fill(asked, -1e4), dim=1)
    ce = -(target / total.clamp_min(1e-6) * logp).sum(dim=1)
    return ce[has].mean()


def run_episode(edge: PatchEncoder, receiver: Receiver, scenes: Scenes, *, rounds: int, agents: int,
                mode: str, channel: nn.Module | None, generator: torch.Generator,
                snr_db: float | Tensor | None = None,
                train: bool = False, link: FeedbackLink | None = None) -> Episode:
    """Run ``rounds`` rounds on a batch of scenes; see the module docstring."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    patch = receiver.cfg.patch
    size = scenes.size
    b = scenes.image.shape[0]
    g = grid_side(size, patch)
    if agents * rounds > g * g:
        raise ValueError(f"{agents} agents x {rounds} rounds = more patches than the {g * g} places")
    asked = torch.zeros(b, g * g, dtype=torch.bool)
    covered = torch.zeros(b, size, size, dtype=torch.bool)
    ep = Episode()
    coarse = None
    if mode == "guided":
        # Round 0: the coarse view (a low-resolution camera, S/14 cells per side) as uncoded analog values.
        coarse = edge.encode_coarse(scenes.image)
        if channel is not None:
            coarse = channel(coarse) if snr_db is None else channel(coarse, snr_db=snr_db)
        ep.channel_uses += b * coarse.shape[1] // 2
    state = receiver.start(b, size, coarse)
    centre = location_target(scenes.top_left, size, patch)
    for r in range(rounds):
        scores = receiver.scores(state, size)
        if train:
            target = relevance_target(scenes.digit, covered, patch)
            ep.relevance_loss.append(_relevance_loss(scores, asked, target))
        if mode == "guided":
            places = _pick(scores, asked, agents, sample=train, generator=generator)
            ep.feedback_bits += b * 8 * message_bytes(g, agents)
            if link is not None:
                # The places the edge uses are those decoded from the bytes that crossed the socket.
                for i in range(b):
                    link.send(FeedbackMessage(round=r, grid=g, places=tuple(int(p) for p in places[i])))
                places = torch.tensor([list(link.recv().places) for _ in range(b)], dtype=torch.long)
        else:
            places = _pick(torch.zeros(b, g * g), asked, agents, sample=True, generator=generator)
        asked = asked.scatter(1, places, True)  # a new tensor: the losses above keep the old one
        covered = cover(covered, places, patch)
        patches = extract_patches(scenes.image, places, patch)
        z = edge(patches)                                                   # (B, A, 2k)
        if channel is not None:
            flat = z.reshape(b, -1)
            z = (channel(flat) if snr_db is None else channel(flat, snr_db=snr_db)).reshape(z.shape)
        ep.channel_uses += b * z.shape[1] * z.shape[2] // 2
        ep.position_bits += b * agents * index_bits(g)
        ep.uses_after.append(ep.channel_uses)
        logits, state, decoded = receiver.update(state, z, places, size)
        if train:
            logp = F.log_softmax(receiver.locate(state, size), dim=1)
            ep.location_loss.append(-(centre * logp).sum(1).mean())
            ep.decode_loss.append(F.mse_loss(decoded, patches))
        ep.logits.append(logits)
        ep.places.append(places)
    return ep
