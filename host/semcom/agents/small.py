"""Small default agents that train on a CPU in minutes (the paper's architecture at toy scale).

* ``VisionEncoder``: the shared vision backbone (a hybrid-ViT stem, 64x64 -> 4x4 patches of d dims, +
  ``vision_layers`` transformer layers), pre-trained once by scene parsing (``SceneParser``: every patch
  names the objects whose centres it holds) and then frozen in both VQA systems below, as both
  systems of the paper start from a pre-trained vision tower.
* ``SensorAgent`` (transmitter): vision tokens + the embedded *vague* task description + K learned query
  slots -> ``tx_layers`` transformer layers -> the last-layer hidden states (after the final LayerNorm)
  at the final K positions = K machine-language tokens (B, K, d).
* ``TaskAgent`` (receiver): transformer over ``[prefix][detailed question][ANS]`` -> answer class.
  Pre-trained on ground-truth scene descriptions (one token per object: the sum of its attribute words'
  embeddings, shared with the question's words, plus position embeddings) and natural-language
  summaries as the prefix, then frozen; at use the K decoded tokens are the prefix. Prefix and question
  have their own position embeddings, like an LLM whose prompt starts with soft-prompt vectors.
* ``RawVQA``: the raw-image baseline (and, fed DeepJSCC reconstructions, the DeepJSCC baseline): the
  same vision backbone and a transmitter-size encoder over ``[vision tokens][detailed question]``, whose
  outputs at the vision positions are the prefix of a receiver-size transformer.
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
    tx_layers: int = 2       # transmitter layers above the vision backbone (and the raw-VQA fusion)
    vision_layers: int = 2   # the shared, pre-trained vision backbone
    image_size: int = 64
    patch: int = 16  # pixels per patch side: (image_size / patch)^2 image tokens
    k_tokens: int = 5
    max_prefix: int = 96  # longest prefix the receiver accepts (scene descriptions are <= 64 words)
    max_text: int = 40  # longest question / vague description
    dropout: float = 0.0
    # How a ground-truth object becomes one prefix token: "sum" = the attribute words' own embeddings
    # (shared with the question's words, so "red" in a question matches a red object by a dot product)
    # plus one learned table per position field (x, y, row); "concat" = a linear map of all seven
    # field embeddings side by side.
    object_embedding: str = "sum"
    # Where the sensor's K output positions start from: "proposals" = the K most object-like label
    # cells of the pre-trained parse head (bottom-up attention, as object-detector features feed VQA
    # models), "queries" = K learned query vectors (the transformer must find the objects itself).
    sensor_slots: str = "proposals"

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
    """Convolutional patch embedding (a hybrid-ViT stem): (B, 3, S, S) -> (B, (S/P)^2, d) patch tokens
    with positions, P = ``cfg.patch`` (a power of two: log2 P stride-2 3x3 convolutions)."""

    def __init__(self, cfg: SmallConfig) -> None:
        super().__init__()
        n_down = int(cfg.patch).bit_length() - 1
        if cfg.patch < 2 or 1 << n_down != cfg.patch or cfg.image_size % cfg.patch:
            raise ValueError(f"patch must be a power of two dividing image_size, got {cfg.patch} "
                             f"for {cfg.image_size}")
        widths = [3] + [min(32 << i, cfg.d) for i in range(n_down - 1)] + [cfg.d]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Conv2d(cin, cout, 3, stride=2, padding=1))
            if i < n_down - 1:
                layers.append(nn.GELU())
        self.conv = nn.Sequential(*layers)
        self.n_patches = (cfg.image_size // cfg.patch) ** 2
        self.pos = nn.Parameter(0.02 * torch.randn(self.n_patches, cfg.d))

    def forward(self, images: Tensor) -> Tensor:
        x = self.conv(images * 2.0 - 1.0)  # (B, d, S/P, S/P)
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
        self.text_pos = nn.Parameter(0.02 * torch.randn(cfg.max_text + 1, cfg.d))  # + the ANS position
        self.segment = nn.Parameter(0.02 * torch.randn(2, cfg.d))  # 0: prefix, 1: question + ANS
        self.ans = nn.Parameter(0.02 * torch.randn(cfg.d))
        self.encoder = _encoder(cfg, cfg.rx_layers)
        self.norm = nn.LayerNorm(cfg.d)
        self.head = nn.Linear(cfg.d, cfg.n_answers)

    def embed_ids(self, ids: Tensor) -> Tensor:
        """Word ids (B, L) -> embeddings (B, L, d) (question words, NL summary prefix, object fields)."""
        return self.word(ids)

    def embed_scene(self, scene_ids: Tensor) -> tuple[Tensor, Tensor]:
        """Ground-truth scene description ids (B, L) -> object tokens (B, O, d) and mask (B, O)."""
        fields, mask = self.scene_tokenizer(scene_ids)  # (B, O, 7)
        if self.cfg.object_embedding == "concat":
            emb = self.embed_ids(fields).flatten(2)  # (B, O, 7 d); PAD fields embed to zero
            return self.object_proj(emb), mask
        n_attr = len(SCENE_FIELDS) - len(POSITION_FIELDS)
        attrs = self.embed_ids(fields[..., :n_attr]).sum(dim=2)  # (B, O, d); PAD embeds to zero
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
        # ANS takes the position right after each question's last word (as the next token of a language
        # model), not the padded length: the answer must not depend on the batch's longest question.
        lengths = (question_ids != PAD).sum(dim=1).clamp(max=self.cfg.max_text)  # (B,)
        ans = self.ans + self.text_pos[lengths]  # (B, d)
        q = torch.cat([self.embed_ids(question_ids) + self.text_pos[:lq], ans.unsqueeze(1)], dim=1)
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


LABEL_CELL = 8  # pixels per side of one scene-parsing label cell (no two object centres share one)
PARSE_FIELDS: dict[str, tuple[str, ...]] = {
    "size": _ATTR_WORDS["size"], "color": _ATTR_WORDS["color"], "shape": _ATTR_WORDS["shape"]}


class VisionEncoder(nn.Module):
    """The shared vision backbone: stem + ``vision_layers`` transformer layers over the patches.

    images (B, 3, S, S) -> (B, N, d) with N = (S / patch)^2. Pre-trained once by scene parsing
    (``SceneParser``) and then used, frozen, by the sensor agent and the raw-image VQA baseline alike
    (as both VLMs of the paper start from a pre-trained vision tower).
    """

    def __init__(self, cfg: SmallConfig) -> None:
        super().__init__()
        self.stem = VisionStem(cfg)
        self.encoder = _encoder(cfg, cfg.vision_layers)
        self.norm = nn.LayerNorm(cfg.d)

    def forward(self, images: Tensor) -> Tensor:
        return self.norm(self.encoder(self.stem(images)))


class ParseHead(nn.Module):
    """The scene-parsing read-out of vision features: for each of a patch's (patch / 8)^2 label cells
    of 8x8 pixels, whether an object's centre lies there and that object's size, colour and shape.

    features (B, N, d) -> logits dict: "object" (B, N, C, 2), "size" (B, N, C, 2), "color" (B, N, C, 8),
    "shape" (B, N, C, 3); C = cells per patch. Targets come from ``grid_labels``.
    """

    def __init__(self, cfg: SmallConfig) -> None:
        super().__init__()
        if cfg.patch % LABEL_CELL:
            raise ValueError(f"patch must be a multiple of {LABEL_CELL}, got {cfg.patch}")
        self.cells = (cfg.patch // LABEL_CELL) ** 2
        self.sizes = {"object": 2} | {f: len(v) for f, v in PARSE_FIELDS.items()}
        self.linear = nn.Linear(cfg.d, self.cells * sum(self.sizes.values()))

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        h = self.linear(features)  # (B, N, C * F)
        b, n, _ = h.shape
        parts = h.view(b, n, self.cells, -1).split(list(self.sizes.values()), dim=-1)
        return dict(zip(self.sizes, parts, strict=True))

    @staticmethod
    def object_log_odds(parse: dict[str, Tensor]) -> Tensor:
        """A forward's logits dict -> object log-odds of every label cell (B, N * C), a patch's cells
        consecutive."""
        obj = parse["object"]  # (B, N, C, 2)
        return (obj[..., 1] - obj[..., 0]).flatten(1)

    @staticmethod
    def proposals(parse: dict[str, Tensor], k: int) -> tuple[Tensor, Tensor]:
        """The K most object-like label cells of a forward's logits dict: (log-odds (B, K), cell index
        (B, K) as ``object_log_odds`` numbers them), most object-like first."""
        return ParseHead.object_log_odds(parse).topk(k, dim=1)


class SceneParser(nn.Module):
    """Vision pre-training by scene parsing: the backbone + its ``ParseHead``.

    images (B, 3, S, S) -> the ``ParseHead`` logits dict.
    """

    def __init__(self, cfg: SmallConfig) -> None:
        super().__init__()
        self.vision = VisionEncoder(cfg)
        self.head = ParseHead(cfg)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return self.head(self.vision(images))


def grid_labels(scenes: list, image_size: int, patch: int) -> Tensor:
    """Scene graphs -> parsing targets (S, N, C, 4) long: [object 0/1, size, color, shape] per label cell,
    attributes IGNORE (-100) where no object centre lies. Patches row-major, cells row-major within."""
    g = image_size // LABEL_CELL  # label cells per side
    per = patch // LABEL_CELL
    out = torch.full((len(scenes), g, g, 4), -100, dtype=torch.long)
    out[..., 0] = 0
    index = {f: {w: i for i, w in enumerate(v)} for f, v in PARSE_FIELDS.items()}
    for s, scene in enumerate(scenes):
        for o in scene.objects:
            r, c = min(int(o.y * g), g - 1), min(int(o.x * g), g - 1)
            out[s, r, c] = torch.tensor([1, index["size"][o.size], index["color"][o.color],
                                         index["shape"][o.shape]])
    # (S, g, g, 4) -> (S, patch rows, per, patch cols, per, 4) -> (S, N, C, 4)
    n = g // per
    return out.view(len(scenes), n, per, n, per, 4).permute(0, 1, 3, 2, 4, 5).reshape(
        len(scenes), n * n, per * per, 4)


class SensorAgent(nn.Module):
    """Transmitter: image (B, 3, S, S) + vague description ids (B, Lv) -> K tokens (B, K, d).

    ``[vision tokens][vague description][K slots]`` -> ``tx_layers`` transformer layers -> the last
    layer's outputs at the final K positions (after the final norm and an output map to the receiver's
    embedding scale).

    The K slots (``cfg.sensor_slots``): ``"proposals"`` (default) start from the K label cells the
    pre-trained parse head finds most object-like: the cell's patch feature + a learned embedding of
    the cell's place in the image + its objectness + a learned map of the parse head's attribute
    probabilities for that cell (a patch may hold several objects; the cell's own read-out says which
    one the slot is about), so each slot holds one candidate object from the start (bottom-up
    attention, as detector features with their class scores feed VQA models); ``"queries"``: K learned
    query vectors that must find the objects through attention alone (a set-prediction problem that a
    small model learns slowly: see experiments/agents/README.md).
    """

    def __init__(self, cfg: SmallConfig) -> None:
        super().__init__()
        if cfg.sensor_slots not in ("proposals", "queries"):
            raise ValueError(f"sensor_slots must be 'proposals' or 'queries', got {cfg.sensor_slots!r}")
        self.cfg = cfg
        self.vision = VisionEncoder(cfg)
        self.word = nn.Embedding(cfg.vocab_size, cfg.d, padding_idx=PAD)
        self.text_pos = nn.Parameter(0.02 * torch.randn(cfg.max_text, cfg.d))
        self.queries = nn.Parameter(0.02 * torch.randn(cfg.k_tokens, cfg.d))
        if cfg.sensor_slots == "proposals":
            self.parse_head = ParseHead(cfg)  # pre-trained with the backbone (stage "vision")
            # Where the proposal's label cell is in the image (one entry per cell, numbered as
            # ``ParseHead.object_log_odds`` numbers them): finer than the patch its feature comes from.
            n_cells = self.vision.stem.n_patches * self.parse_head.cells
            self.cell_pos = nn.Parameter(0.02 * torch.randn(n_cells, cfg.d))
            self.objectness_scale = nn.Parameter(0.02 * torch.randn(cfg.d))
            self._attr_sizes = [n for f, n in self.parse_head.sizes.items() if f != "object"]
            self.attr_proj = nn.Linear(sum(self._attr_sizes), cfg.d)
        self.encoder = _encoder(cfg, cfg.tx_layers)
        self.norm = nn.LayerNorm(cfg.d)
        # The output map after the final norm lets the tokens reach the scale of the receiver's input
        # embeddings (sums of word embeddings, RMS ~2.4 per dimension, where a LayerNorm gives ~1).
        self.out = nn.Linear(cfg.d, cfg.d)

    def pretrained_parser(self, parser: SceneParser) -> None:
        """Take the backbone (and, with proposals, the parse head) of a pre-trained ``SceneParser``."""
        self.vision.load_state_dict(parser.vision.state_dict())
        if self.cfg.sensor_slots == "proposals":
            self.parse_head.load_state_dict(parser.head.state_dict())

    def freeze_pretrained(self, frozen: bool = True) -> None:
        """Keep the pre-trained backbone (and parse head) fixed while the rest trains."""
        self.vision.requires_grad_(not frozen)
        if self.cfg.sensor_slots == "proposals":
            self.parse_head.requires_grad_(not frozen)

    def slots(self, patches: Tensor) -> Tensor:
        """Vision tokens (B, N, d) -> the K slot inputs (B, K, d)."""
        b, _, d = patches.shape
        if self.cfg.sensor_slots == "queries":
            return self.queries.expand(b, -1, -1)
        parse = self.parse_head(patches)  # {field: (B, N, C, n_field)}
        score, cell = self.parse_head.proposals(parse, self.cfg.k_tokens)  # (B, K)
        feat = patches.gather(1, (cell // self.parse_head.cells).unsqueeze(-1).expand(-1, -1, d))
        # The chosen cells' attribute probabilities (B, K, sum of field sizes).
        attrs = torch.cat([parse[f].flatten(1, 2) for f in parse if f != "object"], dim=-1)
        attrs = attrs.gather(1, cell.unsqueeze(-1).expand(-1, -1, attrs.shape[-1]))
        attrs = torch.cat([a.softmax(-1) for a in attrs.split(self._attr_sizes, dim=-1)], dim=-1)
        return (feat + self.cell_pos[cell] + self.attr_proj(attrs)
                + torch.sigmoid(score).unsqueeze(-1) * self.objectness_scale + self.queries)

    def forward(self, images: Tensor, vague_ids: Tensor) -> Tensor:
        b, lv = vague_ids.shape
        if lv > self.cfg.max_text:
            raise ValueError(f"vague description of {lv} ids > max_text={self.cfg.max_text}")
        patches = self.vision(images)
        text = self.word(vague_ids) + self.text_pos[:lv]
        k = self.cfg.k_tokens
        x = torch.cat([patches, text, self.slots(patches)], dim=1)
        valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        valid[:, patches.shape[1]: patches.shape[1] + lv] = vague_ids != PAD
        h = self.norm(self.encoder(x, src_key_padding_mask=~valid))
        return self.out(h[:, -k:])  # the last layer's outputs at the final K positions


class RawVQA(nn.Module):
    """Raw-image VQA: image (B, 3, S, S) + detailed question (B, Lq) -> logits (B, A).

    The sensor's vision backbone and a transmitter-size encoder read ``[vision tokens][question]``; its
    outputs at the vision positions (one per patch: 16 for the default) are the prefix of a receiver-size
    ``TaskAgent`` that reads the question again and answers. Same vision backbone and sizes as the token
    pipeline, but a wider prefix than K tokens, no bottleneck and no channel.
    """

    def __init__(self, cfg: SmallConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vision = VisionEncoder(cfg)
        self.word = nn.Embedding(cfg.vocab_size, cfg.d, padding_idx=PAD)
        self.text_pos = nn.Parameter(0.02 * torch.randn(cfg.max_text, cfg.d))
        self.encoder = _encoder(cfg, cfg.tx_layers)
        self.norm = nn.LayerNorm(cfg.d)
        self.task = TaskAgent(cfg)

    def forward(self, images: Tensor, question_ids: Tensor) -> Tensor:
        lq = question_ids.shape[1]
        patches = self.vision(images)
        x = torch.cat([patches, self.word(question_ids) + self.text_pos[:lq]], dim=1)
        valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        valid[:, patches.shape[1]:] = question_ids != PAD
        h = self.norm(self.encoder(x, src_key_padding_mask=~valid))
        # The fused vision tokens are the task model's prefix (it reads the question itself).
        return self.task(h[:, :patches.shape[1]], None, question_ids)


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
