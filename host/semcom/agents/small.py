"""Small default agents that train on a CPU in minutes (the paper's architecture at toy scale).

* ``SensorAgent`` (transmitter): image -> convolutional patch embedding (a hybrid-ViT stem, 64x64 -> 8x8
  patches of d dims) + the embedded *vague* task description + K learned query slots -> transformer
  encoder -> the last-layer hidden states (after the final LayerNorm) at the final K positions = K
  machine-language tokens (B, K, d).
* ``TaskAgent`` (receiver): transformer over ``[prefix][detailed question][ANS]`` -> answer class.
  Pre-trained on ground-truth scene descriptions (and natural-language summaries) as the prefix, then
  frozen; at use the K decoded tokens are the prefix. Prefix and question have their own position
  embeddings (so a K-token prefix and a 60-word description put the question at the same positions),
  like an LLM whose prompt starts with soft-prompt vectors.
* ``RawVQA``: the raw-image baseline (and, fed DeepJSCC reconstructions, the DeepJSCC baseline): the
  same vision stem and transmitter-size encoder over ``[patches][detailed question]``, whose whole output
  sequence is the prefix of a receiver-size transformer, trained end to end with the same budget.
* Text path for the natural-language baseline: ``TaskAgent.embed_ids(summary_ids)`` as the prefix.

Shapes: images (B, 3, 64, 64) in [0, 1]; ids (B, L) long, PAD = 0; tokens (B, K, d); logits (B, A).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

Tensor = torch.Tensor
PAD = 0


# Roles of the words of a ground-truth scene description (semcom.data.questions.scene_description):
# "<n> objects : <size> <color> [<material>] <shape> x <0-9> y <0-9> row <r> ; ..."
SCENE_FIELDS: tuple[str, ...] = ("size", "color", "material", "shape", "x", "y", "row")
_ATTR_WORDS: dict[str, tuple[str, ...]] = {
    "size": ("small", "large"),
    "color": ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow"),
    "material": ("rubber", "metal", "metallic"),
    "shape": ("cube", "sphere", "cylinder"),
}
POSITION_FIELDS: tuple[str, ...] = ("x", "y", "row")  # the last three of SCENE_FIELDS
MAX_BIN = 9  # positions are quantised to 0..9
MAX_OBJECTS = 10


@dataclass
class SmallConfig:
    """Sizes of the small agents (JSON-able; stored with every checkpoint).

    ``vocab`` is the word list (id -> word) and ``answers`` the answer list the models were built for, so
    a checkpoint can check that it is used with the same vocabularies.
    """

    vocab: list[str]
    answers: list[str]
    d: int = 128
    heads: int = 4
    ff: int = 256
    rx_layers: int = 4
    tx_layers: int = 4
    image_size: int = 64
    k_tokens: int = 5
    max_prefix: int = 96  # longest prefix the receiver accepts (scene descriptions are <= 64 words)
    max_text: int = 40  # longest question / vague description
    dropout: float = 0.0
    # How a ground-truth object becomes one prefix token: "sum" = the attribute words' own embeddings
    # (shared with the question's words, so "red" in a question matches a red object by a dot product)
    # plus one learned table per position field (x, y, row); "concat" = a linear map of all seven
    # field embeddings side by side.
    object_embedding: str = "sum"

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def n_answers(self) -> int:
        return len(self.answers)

    def to_dict(self) -> dict:
        return asdict(self)


class SceneTokenizer(nn.Module):
    """Ground-truth scene description ids -> one field row per object (vectorised, no Python loop).

    ids (B, L) -> fields (B, O, 7) word ids of (size, color, material, shape, x-bin, y-bin, row) per
    object (PAD where absent), and mask (B, O) True for real objects; O = the most objects in the batch.
    Words are recognised by the role they play, so the optional material and unknown words are harmless.
    """

    def __init__(self, vocab: list[str]) -> None:
        super().__init__()
        stoi = {w: i for i, w in enumerate(vocab)}
        role = torch.full((len(vocab),), -1, dtype=torch.long)
        for f, words in _ATTR_WORDS.items():
            for w in words:
                if w in stoi:
                    role[stoi[w]] = SCENE_FIELDS.index(f)
        keyword = torch.full((len(vocab),), -1, dtype=torch.long)
        for f in ("x", "y", "row"):
            if f in stoi:
                keyword[stoi[f]] = SCENE_FIELDS.index(f)
        self.register_buffer("role", role, persistent=False)
        self.register_buffer("keyword", keyword, persistent=False)
        self.sep = stoi.get(";", -1)
        self.colon = stoi.get(":", -1)

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        b, length = ids.shape
        prev = torch.cat([torch.zeros(b, 1, dtype=ids.dtype, device=ids.device), ids[:, :-1]], dim=1)
        role = torch.where(self.role[ids] >= 0, self.role[ids], self.keyword[prev])  # numbers after x/y/row
        started = torch.cumsum((ids == self.colon).long(), dim=1) > 0
        obj = torch.cumsum((ids == self.sep).long(), dim=1)  # object index of every position
        valid = (role >= 0) & started & (ids != PAD) & (self.keyword[ids] < 0) & (obj < MAX_OBJECTS)
        n_obj = int(obj.masked_fill(~valid, -1).max().item()) + 1 if valid.any() else 1
        nf = len(SCENE_FIELDS)
        fields = torch.zeros(b * n_obj * nf, dtype=torch.long, device=ids.device)
        bidx = torch.arange(b, device=ids.device).unsqueeze(1).expand_as(ids)
        flat = (bidx * n_obj + obj) * nf + role.clamp(min=0)
        fields.scatter_(0, flat[valid], ids[valid])
        fields = fields.view(b, n_obj, nf)
        return fields, (fields != PAD).any(dim=-1)


def _encoder(cfg: SmallConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.d, cfg.heads, cfg.ff, cfg.dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class VisionStem(nn.Module):
    """Convolutional patch embedding: (B, 3, S, S) -> (B, (S/8)^2, d) patch tokens with positions."""

    def __init__(self, cfg: SmallConfig) -> None:
        super().__init__()
        if cfg.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8, got {cfg.image_size}")
        self.conv = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(64, cfg.d, 3, stride=2, padding=1),
        )
        self.n_patches = (cfg.image_size // 8) ** 2
        self.pos = nn.Parameter(0.02 * torch.randn(self.n_patches, cfg.d))

    def forward(self, images: Tensor) -> Tensor:
        x = self.conv(images * 2.0 - 1.0)  # (B, d, S/8, S/8)
        return x.flatten(2).transpose(1, 2) + self.pos  # (B, N, d)


class TaskAgent(nn.Module):
    """Receiver: ``[prefix (B, P, d)][question (B, Lq)][ANS]`` -> answer logits (B, A)."""

    def __init__(self, cfg: SmallConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.word = nn.Embedding(cfg.vocab_size, cfg.d, padding_idx=PAD)
        self.scene_tokenizer = SceneTokenizer(cfg.vocab)
        if cfg.object_embedding == "concat":
            self.object_proj = nn.Linear(len(SCENE_FIELDS) * cfg.d, cfg.d)
        elif cfg.object_embedding == "sum":
            # Positions are numbers, not words: their own table per field (x, y, row), indexed by value.
            self.position_fields = nn.Embedding(len(POSITION_FIELDS) * (MAX_BIN + 1), cfg.d)
            digit = torch.zeros(cfg.vocab_size, dtype=torch.long)
            for i, w in enumerate(cfg.vocab):
                if w.isdigit() and int(w) <= MAX_BIN:
                    digit[i] = int(w)
            self.register_buffer("digit_of_word", digit, persistent=False)
        else:
            raise ValueError(f"object_embedding must be 'sum' or 'concat', got {cfg.object_embedding!r}")
        self.prefix_pos = nn.Parameter(0.02 * torch.randn(cfg.max_prefix, cfg.d))
        self.text_pos = nn.Parameter(0.02 * torch.randn(cfg.max_text, cfg.d))
        self.segment = nn.Parameter(0.02 * torch.randn(2, cfg.d))  # 0: prefix, 1: question + ANS
        self.ans = nn.Parameter(0.02 * torch.randn(cfg.d))
        self.encoder = _encoder(cfg, cfg.rx_layers)
        self.norm = nn.LayerNorm(cfg.d)
        self.head = nn.Linear(cfg.d, cfg.n_answers)

    def embed_ids(self, ids: Tensor) -> Tensor:
        """Word-level text prefix (e.g. NL summary ids (B, L)) -> prefix embeddings (B, L, d)."""
        return self.word(ids)

    def embed_scene(self, scene_ids: Tensor) -> tuple[Tensor, Tensor]:
        """Ground-truth scene description ids (B, L) -> object tokens (B, O, d) and mask (B, O)."""
        fields, mask = self.scene_tokenizer(scene_ids)  # (B, O, 7)
        if self.cfg.object_embedding == "concat":
            emb = self.word(fields).flatten(2)  # (B, O, 7 d); PAD fields embed to zero
            return self.object_proj(emb), mask
        n_attr = len(SCENE_FIELDS) - len(POSITION_FIELDS)
        attrs = self.word(fields[..., :n_attr]).sum(dim=2)  # (B, O, d); PAD embeds to zero
        pos = fields[..., n_attr:]  # (B, O, 3) word ids of the x, y, row values
        offset = torch.arange(len(POSITION_FIELDS), device=pos.device) * (MAX_BIN + 1)
        pos_emb = self.position_fields(self.digit_of_word[pos] + offset) * (pos != PAD).unsqueeze(-1)
        return attrs + pos_emb.sum(dim=2), mask

    def forward(self, prefix: Tensor, prefix_mask: Tensor | None, question_ids: Tensor) -> Tensor:
        """prefix (B, P, d), prefix_mask (B, P) bool (True = real; None = all real), question (B, Lq)."""
        b, p, _ = prefix.shape
        lq = question_ids.shape[1]
        if p > self.cfg.max_prefix or lq > self.cfg.max_text:
            raise ValueError(f"prefix {p} / question {lq} longer than "
                             f"{self.cfg.max_prefix} / {self.cfg.max_text}")
        pre = prefix + self.prefix_pos[:p] + self.segment[0]
        # ANS has no position of its own: it sits after the padding, so a position would depend on the
        # batch's longest question (and the answer with it).
        q = torch.cat([self.word(question_ids) + self.text_pos[:lq], self.ans.expand(b, 1, -1)], dim=1)
        q = q + self.segment[1]
        x = torch.cat([pre, q], dim=1)
        if prefix_mask is None:
            prefix_mask = torch.ones(b, p, dtype=torch.bool, device=prefix.device)
        valid = torch.cat([prefix_mask, question_ids != PAD,
                           torch.ones(b, 1, dtype=torch.bool, device=prefix.device)], dim=1)
        h = self.encoder(x, src_key_padding_mask=~valid)
        return self.head(self.norm(h[:, -1]))  # the ANS position answers

    def answer_text(self, prefix_ids: Tensor, question_ids: Tensor) -> Tensor:
        """Word-level text path (NL summary): (B, P) ids + (B, Lq) ids -> logits (B, A)."""
        return self(self.embed_ids(prefix_ids), prefix_ids != PAD, question_ids)

    def answer_scene(self, scene_ids: Tensor, question_ids: Tensor) -> Tensor:
        """Ground-truth scene description path: (B, L) ids + (B, Lq) ids -> logits (B, A)."""
        prefix, mask = self.embed_scene(scene_ids)
        return self(prefix, mask, question_ids)


class SensorAgent(nn.Module):
    """Transmitter: image (B, 3, S, S) + vague description ids (B, Lv) -> K tokens (B, K, d)."""

    def __init__(self, cfg: SmallConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = VisionStem(cfg)
        self.word = nn.Embedding(cfg.vocab_size, cfg.d, padding_idx=PAD)
        self.text_pos = nn.Parameter(0.02 * torch.randn(cfg.max_text, cfg.d))
        self.queries = nn.Parameter(0.02 * torch.randn(cfg.k_tokens, cfg.d))
        self.encoder = _encoder(cfg, cfg.tx_layers)
        self.norm = nn.LayerNorm(cfg.d)

    def forward(self, images: Tensor, vague_ids: Tensor) -> Tensor:
        b, lv = vague_ids.shape
        if lv > self.cfg.max_text:
            raise ValueError(f"vague description of {lv} ids > max_text={self.cfg.max_text}")
        patches = self.stem(images)
        text = self.word(vague_ids) + self.text_pos[:lv]
        k = self.cfg.k_tokens
        x = torch.cat([patches, text, self.queries.expand(b, -1, -1)], dim=1)
        valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        valid[:, patches.shape[1]: patches.shape[1] + lv] = vague_ids != PAD
        h = self.norm(self.encoder(x, src_key_padding_mask=~valid))
        return h[:, -k:]  # last-layer hidden states at the final K positions


class RawVQA(nn.Module):
    """Raw-image VQA: image (B, 3, S, S) + detailed question (B, Lq) -> logits (B, A).

    A transmitter-size encoder reads ``[patches][question]``; its whole output sequence is the prefix of a
    receiver-size transformer (a ``TaskAgent``) that reads the question again and answers. So it has the
    vision backbone and total size of the token pipeline, but no bottleneck and no channel.
    """

    def __init__(self, cfg: SmallConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = VisionStem(cfg)
        self.word = nn.Embedding(cfg.vocab_size, cfg.d, padding_idx=PAD)
        self.text_pos = nn.Parameter(0.02 * torch.randn(cfg.max_text, cfg.d))
        self.encoder = _encoder(cfg, cfg.tx_layers)
        self.norm = nn.LayerNorm(cfg.d)
        self.task = TaskAgent(cfg)

    def forward(self, images: Tensor, question_ids: Tensor) -> Tensor:
        lq = question_ids.shape[1]
        patches = self.stem(images)
        x = torch.cat([patches, self.word(question_ids) + self.text_pos[:lq]], dim=1)
        valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        valid[:, patches.shape[1]:] = question_ids != PAD
        h = self.norm(self.encoder(x, src_key_padding_mask=~valid))
        return self.task(h, valid, question_ids)


class TokenPipeline(nn.Module):
    """Sensor agent -> link (JTCC or raw tokens, channel inside) -> frozen task agent.

    forward(images (B,3,S,S), vague_ids (B,Lv), question_ids (B,Lq)) -> logits (B, A). The receiver is
    frozen here (``requires_grad_(False)`` and eval mode), but gradients flow through it to the link and
    the transmitter.
    """

    def __init__(self, sensor: SensorAgent, link: nn.Module, receiver: TaskAgent) -> None:
        super().__init__()
        self.sensor, self.link, self.receiver = sensor, link, receiver
        self.receiver.requires_grad_(False)
        self.receiver.eval()

    def train(self, mode: bool = True) -> TokenPipeline:
        super().train(mode)
        self.receiver.eval()  # frozen receiver never goes back to training mode
        return self

    def forward(self, images: Tensor, vague_ids: Tensor, question_ids: Tensor,
                channel: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """``channel`` overrides the link's own for this call (e.g. one with a per-sample SNR)."""
        tokens = self.sensor(images, vague_ids)  # (B, K, d)
        decoded = self.link(tokens, channel=channel)  # (B, K, d), after the channel
        return self.receiver(decoded, None, question_ids)
