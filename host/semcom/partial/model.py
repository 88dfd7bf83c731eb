"""The edge agents' patch encoder, the base-station receiver, the sampling grid and the whole-image baseline.

Sampling grid. A ``p x p`` patch (p = 4 or 8) may start at every ``STRIDE`` = 4 pixels: top-left
``(4 gy, 4 gx)`` with ``gy, gx`` in ``0 .. G-1``, ``G = (S - p) / 4 + 1`` (28 px canvas: 7 places per side
for 4 x 4, 6 for 8 x 8; 112 px: 28 and 27). A place is named by its index ``gy G + gx``, which is what the
feedback message carries.

Edge agent (``PatchEncoder``, the small model an edge device runs): a patch's ``p^2`` pixels ->
``2 k`` reals (k complex channel uses, ``k = p^2 / 4``: 4 for 4 x 4, 16 for 8 x 8), power-normalised.

Receiver (``Receiver``, the stronger base-station agent): every patch received so far becomes a token
(decoded content + Fourier features of where it lies on the canvas); a small transformer fuses them
with a class token that knows the source size; the class token gives the digit's logits, and a
cross-attention head scores every grid place by how much task-relevant ink (ink of the digit, not of the
clutter) a patch there would add: the receiver asks for the best places it has not asked for yet.

Baseline (``WholeImageJSCC``): the edge encodes the whole source image, DeepJSCC-like (strided convs,
power normalisation, analog symbols), into up to ``k_max`` complex channel uses; the first ``k`` are
sent, so one model serves every budget, and the receiver classifies from what it gets.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from semcom.jscc.model import PowerNormalize

Tensor = torch.Tensor
STRIDE = 4             # pixels between neighbouring sampling places
MAX_SOURCE = 112       # canvas coordinates are scaled by MAX_SOURCE / 2
N_CLASSES = 10


def grid_side(size: int, patch: int) -> int:
    """Sampling places per side, G = (S - p) / 4 + 1."""
    if patch % STRIDE or patch < STRIDE or size < patch or (size - patch) % STRIDE:
        raise ValueError(f"patch {patch} on a {size} px canvas: need patch a multiple of {STRIDE} and "
                         f"(size - patch) a multiple of {STRIDE}")
    return (size - patch) // STRIDE + 1


def channel_uses_per_patch(patch: int) -> int:
    """Complex channel uses k of one patch: p^2 / 4 (k/n = 1/4 per pixel)."""
    return patch * patch // 4


def place_centres(size: int, patch: int) -> Tensor:
    """(G*G, 2) centre (row, col) of every sampling place in canvas units (centre 0, +-1 at 112 px)."""
    g = grid_side(size, patch)
    c = torch.arange(g, dtype=torch.float32) * STRIDE + patch / 2.0 - size / 2.0
    rows, cols = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1) / (MAX_SOURCE / 2.0)


def extract_patches(image: Tensor, places: Tensor, patch: int) -> Tensor:
    """image (B, S, S), places (B, A) grid indices -> patches (B, A, p, p)."""
    b, s, _ = image.shape
    g = grid_side(s, patch)
    top = (places // g) * STRIDE
    left = (places % g) * STRIDE
    ar = torch.arange(patch)
    rows = (top[..., None] + ar)[..., :, None]        # (B, A, p, 1)
    cols = (left[..., None] + ar)[..., None, :]       # (B, A, 1, p)
    return image[torch.arange(b)[:, None, None, None], rows, cols]


def cover(covered: Tensor, places: Tensor, patch: int) -> Tensor:
    """covered (B, S, S) bool with the patches at ``places`` (B, A) marked as received (new tensor)."""
    b, s, _ = covered.shape
    g = grid_side(s, patch)
    out = covered.clone()
    top = (places // g) * STRIDE
    left = (places % g) * STRIDE
    ar = torch.arange(patch)
    rows = (top[..., None] + ar)[..., :, None].expand(*places.shape, patch, patch)
    cols = (left[..., None] + ar)[..., None, :].expand(*places.shape, patch, patch)
    out[torch.arange(b)[:, None, None, None].expand_as(rows), rows, cols] = True
    return out


def relevance_target(digit: Tensor, covered: Tensor, patch: int) -> Tensor:
    """Digit ink a patch at each place would newly reveal: (B, S, S), (B, S, S) bool -> (B, G*G)."""
    new_ink = (digit * (~covered)).unsqueeze(1)
    return (F.avg_pool2d(new_ink, patch, stride=STRIDE) * patch * patch).flatten(1)


COARSE_CELL = 14      # pixels per cell of the coarse view
DIGIT_BOX = 28        # the digit's side: the window where the receiver looks for its centre of mass


def coarse_side(size: int) -> int:
    """Cells per side of the coarse view: S / 14 (2 at 28 px, 8 at 112 px)."""
    if size % COARSE_CELL:
        raise ValueError(f"source size {size} is not a multiple of {COARSE_CELL} (the coarse view's cell)")
    return size // COARSE_CELL


def coarse_view(image: Tensor) -> Tensor:
    """(B, S, S) -> (B, T*T) mean of every 14 x 14 cell: what a low-resolution camera sees."""
    coarse_side(image.shape[-1])
    return F.avg_pool2d(image.unsqueeze(1), COARSE_CELL).flatten(1)


@dataclass(frozen=True)
class PartialConfig:
    """Everything that rebuilds the edge encoder and receiver from a checkpoint."""

    patch: int = 4
    hidden: int = 64          # edge encoder hidden width
    d: int = 64               # receiver token width
    layers: int = 2
    heads: int = 4
    freqs: int = 6            # Fourier frequencies of the position features

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PartialConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown partial-sampling config keys {sorted(unknown)}")
        cfg = cls(**d)
        channel_uses_per_patch(cfg.patch)
        if cfg.patch % STRIDE or cfg.d % cfg.heads:
            raise ValueError(f"patch must be a multiple of {STRIDE} and d of heads, got {cfg}")
        return cfg


class PatchEncoder(nn.Module):
    """Edge agent: patches (B, A, p, p) in [0, 1] -> channel reals (B, A, 2k), unit mean power per patch."""

    def __init__(self, cfg: PartialConfig) -> None:
        super().__init__()
        p2 = cfg.patch * cfg.patch
        self.net = nn.Sequential(nn.Linear(p2, cfg.hidden), nn.PReLU(), nn.Linear(cfg.hidden, 2 * p2 // 4))
        self.norm = PowerNormalize()

    def encode_coarse(self, image: Tensor) -> Tensor:
        """(B, S, S) -> (B, T*T) reals: the coarse view, centred and power-normalised (uncoded analog)."""
        v = coarse_view(image)
        return self.norm(v - v.mean(dim=1, keepdim=True))

    def forward(self, patches: Tensor) -> Tensor:
        b, a = patches.shape[:2]
        z = self.net(patches.reshape(b * a, -1) - 0.5)
        return self.norm(z).reshape(b, a, -1)


def fourier(pos: Tensor, freqs: int) -> Tensor:
    """pos (..., 2) -> (..., 2 + 4 freqs): the coordinates and sin/cos at 1, 2, 4, ... cycles per 112 px."""
    scales = (2.0 ** torch.arange(freqs, dtype=pos.dtype)) * (math.pi / 2.0)
    ang = pos[..., None] * scales                                  # (..., 2, F)
    return torch.cat([pos, ang.sin().flatten(-2), ang.cos().flatten(-2)], dim=-1)


def nearest_place(point: Tensor, size: int, patch: int) -> Tensor:
    """(B, 2) pixel (row, col) -> (B,) index of the sampling place whose patch centre is nearest."""
    g = grid_side(size, patch)
    cell = ((point.float() - patch / 2.0) / STRIDE).round().long().clamp(0, g - 1)
    return cell[:, 0] * g + cell[:, 1]


def location_target(top_left: Tensor, size: int, patch: int, width: float = 6.0) -> Tensor:
    """(B, 2) digit top-left pixels -> (B, G*G) target distribution of the digit's centre over the places:
    a Gaussian of ``width`` pixels around the centre (a one-hot over up to 784 places learns slowly)."""
    centres = place_centres(size, patch) * (MAX_SOURCE / 2.0) + size / 2.0             # pixels
    d2 = ((centres[None] - (top_left.float() + DIGIT_BOX / 2.0)[:, None]) ** 2).sum(-1)
    w = torch.exp(-d2 / (2 * width**2))
    return w / w.sum(dim=1, keepdim=True)


@dataclass
class ReceiverState:
    """What the receiver holds between rounds.

    memory (B, 2, S, S): decoded pixels of every received patch and a mask of where they are;
    content (B, J, d): one feature per received patch; pos (B, J, 2): their centres (canvas units);
    prior (B, 2, G*G): the coarse view's relevance and location maps at every place (zeros without one).
    """

    memory: Tensor
    content: Tensor
    pos: Tensor
    prior: Tensor


class Receiver(nn.Module):
    """Base-station agent: fuses the received patches, classifies, and scores where to sample next.

    * Each received patch is decoded to its p x p pixels (``decode``) and written into a memory canvas;
      a feature of it (``content``) says how relevant it looks.
    * Two maps over the sampling places, each the sum of a learned place bias, the coarse view's map
      (when one was received) and a kernel term high near relevant received patches
      (log-sum-exp over patches of a learned weight minus squared distance over a learned width):
      ``scores`` (where a new patch would add most of the digit's ink: the feedback) and ``locate``
      (where the digit's centre is).
    * The class comes from a small CNN on a 32 x 32 window of the memory around the located centre, so
      it does not depend on where the digit sits nor on the source size.

    start(batch, size, coarse=None) -> state; update(state, received (B, A, 2k), places (B, A), size)
    -> (logits (B, 10), state, decoded (B, A, p, p)); scores / locate(state, size) -> (B, G*G).
    """

    WINDOW = 32

    def __init__(self, cfg: PartialConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, p2 = cfg.d, cfg.patch * cfg.patch
        k2 = 2 * channel_uses_per_patch(cfg.patch)
        self.decode = nn.Sequential(nn.Linear(k2, d), nn.GELU(), nn.Linear(d, d), nn.GELU(), nn.Linear(d, p2))
        self.content = nn.Sequential(nn.Linear(p2 + k2, d), nn.GELU(), nn.Linear(d, 2))
        self.place_bias = nn.Sequential(nn.Linear(3 + 4 * cfg.freqs, d), nn.GELU(), nn.Linear(d, 2))
        self.log_width = nn.Parameter(torch.full((2,), math.log(10.0 / (MAX_SOURCE / 2.0))))
        self.coarse = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.GELU(),
                                    nn.Conv2d(16, 16, 3, padding=1),
                                    nn.GELU(), nn.Conv2d(16, 2, 3, padding=1))
        w = cfg.hidden // 4
        self.classifier = nn.Sequential(
            nn.Conv2d(2, w, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.GELU(),
            nn.Flatten(), nn.Linear(2 * w * (self.WINDOW // 4) ** 2, N_CLASSES))
        self._places: dict[int, Tensor] = {}

    def _centres(self, size: int) -> Tensor:
        if size not in self._places:
            self._places[size] = place_centres(size, self.cfg.patch)
        return self._places[size]

    def start(self, batch: int, size: int, coarse: Tensor | None = None) -> ReceiverState:
        """The state before any patch arrived; ``coarse`` (B, T*T) is the received coarse view, if any."""
        g2 = grid_side(size, self.cfg.patch) ** 2
        prior = torch.zeros(batch, 2, g2)
        if coarse is not None:
            t = coarse_side(size)
            heat = self.coarse(coarse.reshape(batch, 1, t, t))                            # (B, 2, T, T)
            # grid_sample's (x, y) in [-1, 1] over the canvas = place centres * (112 / S).
            xy = (self._centres(size) * (MAX_SOURCE / size)).flip(-1)
            grid = xy.reshape(1, 1, g2, 2).expand(batch, -1, -1, -1)
            prior = F.grid_sample(heat, grid, mode="bilinear", align_corners=False).reshape(batch, 2, g2)
        return ReceiverState(memory=torch.zeros(batch, 2, size, size), content=torch.zeros(batch, 0, 2),
                             pos=torch.zeros(batch, 0, 2), prior=prior)

    def _maps(self, state: ReceiverState, size: int) -> Tensor:
        """(B, 2, G*G): [relevance scores, location logits]."""
        centres = self._centres(size)
        feats = torch.cat([fourier(centres, self.cfg.freqs),
                           torch.full((centres.shape[0], 1), size / MAX_SOURCE)], dim=1)
        out = state.prior + self.place_bias(feats).T.unsqueeze(0)
        if state.pos.shape[1]:
            d2 = ((centres[None, :, None, :] - state.pos[:, None, :, :]) ** 2).sum(-1)       # (B, C, J)
            width2 = (2 * self.log_width.exp() ** 2)[None, :, None, None]
            near = state.content.transpose(1, 2)[:, :, None, :] - d2[:, None] / width2     # (B, 2, C, J)
            out = out + near.logsumexp(dim=-1)
        return out

    def scores(self, state: ReceiverState, size: int) -> Tensor:
        """Relevance logits of every place (B, G*G): where the next patch adds most of the digit."""
        return self._maps(state, size)[:, 0]

    def locate(self, state: ReceiverState, size: int) -> Tensor:
        """Location logits (B, G*G): which place's patch centre is nearest the digit's centre."""
        return self._maps(state, size)[:, 1]

    def update(self, state: ReceiverState, received: Tensor, places: Tensor, size: int
               ) -> tuple[Tensor, ReceiverState, Tensor]:
        b, a = places.shape
        p = self.cfg.patch
        decoded = torch.sigmoid(self.decode(received)).reshape(b, a, p, p)
        g = grid_side(size, p)
        ar = torch.arange(p)
        rows = ((places // g) * STRIDE)[..., None, None] + ar[:, None]
        cols = ((places % g) * STRIDE)[..., None, None] + ar[None, :]
        bidx = torch.arange(b)[:, None, None, None].expand(b, a, p, p)
        rows, cols = rows.expand(b, a, p, p), cols.expand(b, a, p, p)
        memory = state.memory.clone()
        memory[bidx, torch.zeros_like(rows), rows, cols] = decoded
        memory[bidx, torch.ones_like(rows), rows, cols] = 1.0
        content = self.content(torch.cat([decoded.reshape(b, a, -1), received], dim=-1))
        state = ReceiverState(memory=memory, content=torch.cat([state.content, content], dim=1),
                              pos=torch.cat([state.pos, self._centres(size)[places]], dim=1),
                              prior=state.prior)
        # The window is centred on the place the receiver believes is nearest the digit's centre, then
        # moved to the centre of mass of the ink received around it (MNIST centres digits by mass).
        centre = self._centres(size)[self.locate(state, size).detach().argmax(dim=1)] * (MAX_SOURCE / size)
        with torch.no_grad():
            win, off = self._window(memory, centre, size, DIGIT_BOX)
            ink = win[:, 0] * win[:, 1]                                            # (B, W, W)
            mass = ink.sum(dim=(1, 2))
            shift = torch.einsum("bhw,hwc->bc", ink, off) / mass.clamp_min(1e-6)[:, None]
            centre = centre + torch.where(mass[:, None] > 0.5, shift, torch.zeros_like(shift))
        window, _ = self._window(memory, centre, size, self.WINDOW)
        return self.classifier(window), state, decoded

    @staticmethod
    def _window(memory: Tensor, centre: Tensor, size: int, side: int) -> tuple[Tensor, Tensor]:
        """A side x side window of memory (B, 2, S, S) around centre (B, 2) (grid_sample units, (row,
        col)) -> (window (B, 2, side, side), offsets (side, side, 2) of its pixels in the same units)."""
        offs = (torch.arange(side, dtype=torch.float32) - side / 2 + 0.5) * (2.0 / size)
        oy, ox = torch.meshgrid(offs, offs, indexing="ij")
        rc = torch.stack([oy, ox], dim=-1)
        grid = (rc[None] + centre[:, None, None, :]).flip(-1)
        return F.grid_sample(memory, grid, mode="bilinear", align_corners=False), rc


class WholeImageJSCC(nn.Module):
    """DeepJSCC-like baseline: the edge sends the whole image as ``k`` analog symbols, the BS classifies.

    forward(image (B, S, S), k, channel=None, snr_db=None) -> logits (B, 10). The encoder's first ``2k``
    of its ``2 k_max`` reals are sent (power-normalised over those ``2k``); the receiver sees them
    zero-padded to ``2 k_max`` plus a mask of which were sent.
    """

    def __init__(self, k_max: int, width: int = 24, hidden: int = 128) -> None:
        super().__init__()
        self.k_max = int(k_max)
        w = width
        # Batch-normalised convs: without normalisation the mixed-size training stayed at chance.
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 5, stride=2, padding=2), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, w, 5, stride=2, padding=2), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU())
        # Global max + mean pooling: the digit may be anywhere on the canvas.
        self.project = nn.Linear(4 * w, 2 * self.k_max)
        self.norm = PowerNormalize()
        self.decode = nn.Sequential(nn.Linear(4 * self.k_max, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                    nn.GELU(), nn.Linear(hidden, N_CLASSES))

    def encode(self, image: Tensor, k: int) -> Tensor:
        """(B, S, S) -> (B, 2k) reals, unit mean complex-symbol power."""
        if not 1 <= k <= self.k_max:
            raise ValueError(f"k = {k} channel uses outside 1..{self.k_max}")
        f = self.features(image.unsqueeze(1))
        z = self.project(torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1))
        return self.norm(z[:, :2 * k])

    def forward(self, image: Tensor, k: int, channel: nn.Module | None = None,
                snr_db: float | Tensor | None = None) -> Tensor:
        z = self.encode(image, k)
        if channel is not None:
            z = channel(z) if snr_db is None else channel(z, snr_db=snr_db)
        pad = torch.zeros(z.shape[0], 2 * self.k_max - z.shape[1])
        mask = torch.cat([torch.ones_like(z), pad], dim=1)
        return self.decode(torch.cat([z, pad, mask], dim=1))


class PartialSampler(nn.Module):
    """The trained pair, saved as one checkpoint: ``edge`` (PatchEncoder) and ``receiver`` (Receiver)."""

    def __init__(self, cfg: PartialConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.edge = PatchEncoder(cfg)
        self.receiver = Receiver(cfg)
