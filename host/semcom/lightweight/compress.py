"""Compressing the DeepJSCC encoder (what an edge agent runs): pruning, int8 quantization, distillation.

* Magnitude pruning (``magnitude_prune``): ``torch.nn.utils.prune.global_unstructured`` with the L1 criterion
  over all encoder conv weights; the stated fraction of them is zeroed (a dense tensor with zeros: the
  file and the dense MAC count do not shrink, the non-zero count does).
* Structured pruning (``channel_prune``): ``prune.ln_structured`` (L1 norm of each output filter) on the
  four hidden conv layers; the last layer keeps its ``c`` filters because they *are* the channel symbols
  (k/n = c/96). The bias of a pruned filter is masked too, so its PReLU output is exactly 0 and
  ``compact`` can cut the filter (and the next layer's matching input channels) out: the result is a
  smaller dense ``JSCCEncoder`` (``JSCCConfig.hidden`` shrinks) that is genuinely smaller and faster.
* Int8 (``Int8Encoder``): eager-mode ``torch.ao.quantization`` (post-training with calibration images,
  or quantization-aware training with fake quantization): every conv runs as an int8 ``x86`` kernel with
  per-channel weights and per-tensor uint8 activations. What stays in floating point, and why:
  - PReLU: torch 2.13's quantized PReLU kernel scales the *positive* side wrongly (0.028 -> 0.024 and
    0.1 -> 0.088 at unit slope, every engine), so the int8 PReLU costs 6 dB PSNR; each conv's output is
    dequantized, the PReLU runs in fp32 and the next conv's input is quantized again.
  - The power normalisation (``PowerNormalize``): a per-sample norm and division, and the symbol power
    it sets is what the SNR is defined against; in int8 its rounding would be transmit-power error.
  - The channel and the decoder (the base station, not the edge): real-valued symbols on the OFAT frame.
* Distillation (``distill_loss``): a smaller student ``JSCCEncoder`` learns to send the teacher's
  symbols (MSE to the teacher's power-normalised z) while the teacher's frozen decoder reconstructs what
  it sent through the channel (image MSE), so the base station keeps one decoder for every edge encoder.

Everything trains through ``semcom.training.fit`` (``fine_tune``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.ao import quantization as tq
from torch.ao.quantization import observer as obs
from torch.nn.utils import prune

from semcom.jscc.model import DeepJSCC, JSCCConfig, JSCCEncoder, PowerNormalize
from semcom.training import fit

Tensor = torch.Tensor

# The x86 quantized engine (fbgemm + oneDNN). Full 8-bit activation range: x86's default qconfig
# reduces it to 7 bits to avoid 16-bit accumulator saturation on CPUs without VNNI; the machines this
# runs on have AVX512-VNNI / AVX-VNNI (32-bit accumulation), and the 8th bit is worth 0.1 dB here.
ENGINE = "x86"


@contextmanager
def quiet_quantization() -> Iterator[None]:
    """torch 2.13 warns on every eager-quantization call that it is deprecated in favour of torchao
    (which is not installed: it would be a second toolkit for the same thing); the API still works."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\.quantization")
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message=r".*must run observer before calling calculate_qparams.*")
        yield


def convs(encoder: nn.Module) -> list[nn.Conv2d]:
    """The encoder's conv layers in order (float, QAT or pruned; not yet int8-converted)."""
    return [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]


def prelus(encoder: nn.Module) -> list[nn.PReLU]:
    return [m for m in encoder.modules() if isinstance(m, nn.PReLU)]


# ----------------------------------------------------------------------------------------- pruning
def magnitude_prune(encoder: JSCCEncoder, amount: float) -> JSCCEncoder:
    """Zero the fraction ``amount`` (0..1) of all conv weights with the smallest |w| (global L1), in place.

    The pruning stays a re-parametrisation (``weight = weight_orig * weight_mask``) so fine-tuning keeps
    the zeros; ``make_permanent`` folds it before saving. Biases are not pruned.
    """
    _check_amount(amount)
    if amount > 0:
        prune.global_unstructured([(c, "weight") for c in convs(encoder)],
                                  pruning_method=prune.L1Unstructured, amount=amount)
    return encoder


def channel_prune(encoder: JSCCEncoder, amount: float) -> JSCCEncoder:
    """Remove the fraction ``amount`` of the output filters (lowest L1 norm) of each hidden conv, in place.

    The last conv (the ``c`` channel-symbol filters) is left whole. The filters' biases are masked with
    them so a pruned channel is exactly zero after its PReLU (``compact`` relies on that).
    """
    _check_amount(amount)
    for conv in convs(encoder)[:-1]:
        n_cut = round(amount * conv.out_channels)
        if n_cut == 0:
            continue
        if n_cut >= conv.out_channels:
            raise ValueError(f"amount {amount} would remove all {conv.out_channels} filters of a layer")
        prune.ln_structured(conv, "weight", amount=n_cut, n=1, dim=0)
        keep = conv.weight_mask.flatten(1).any(dim=1).to(conv.bias.dtype)
        prune.custom_from_mask(conv, "bias", keep)
    return encoder


def make_permanent(module: nn.Module) -> nn.Module:
    """Fold every pruning re-parametrisation into a plain ``weight`` / ``bias`` (zeros kept), in place."""
    for m in module.modules():
        for name in ("weight", "bias"):
            if prune.is_pruned(m) and hasattr(m, f"{name}_orig"):
                prune.remove(m, name)
    return module


def compact(encoder: JSCCEncoder) -> JSCCEncoder:
    """A channel-pruned encoder -> a new, smaller dense ``JSCCEncoder`` computing the same function.

    A hidden filter counts as removed when its weights and bias are all zero (``channel_prune``); it is
    cut with the next layer's matching input channels and its PReLU slope. The three stride-1 hidden
    layers must keep the same number of filters (``JSCCConfig.hidden`` has one width for them).
    """
    enc = plain_copy(encoder)
    layers, acts = convs(enc), prelus(enc)
    keeps = [((c.weight.flatten(1) != 0).any(dim=1) | (c.bias != 0)).nonzero().flatten() for c in layers[:-1]]
    keeps.append(torch.arange(layers[-1].out_channels))
    widths = [int(k.numel()) for k in keeps]
    if len(set(widths[1:4])) != 1:
        raise ValueError(f"hidden widths {widths[:4]}: the stride-1 layers must keep equal filter counts")
    cfg = JSCCConfig(c=widths[-1], hidden=(widths[0], widths[1]), kernel=layers[0].kernel_size[0],
                     in_channels=layers[0].in_channels, power=_power_of(enc))
    out = JSCCEncoder(cfg)
    prev = torch.arange(cfg.in_channels)
    with torch.no_grad():
        for src, dst, a_src, a_dst, keep in zip(layers, convs(out), acts, prelus(out), keeps, strict=True):
            dst.weight.copy_(src.weight[keep][:, prev])
            dst.bias.copy_(src.bias[keep])
            a_dst.weight.copy_(a_src.weight[keep])
            prev = keep
    return out.eval()


def plain_copy(module: nn.Module) -> nn.Module:
    """A deep copy with any pruning folded into plain weights (``module`` keeps its re-parametrisation)."""
    for m in module.modules():
        for name in ("weight", "bias"):
            if hasattr(m, f"{name}_orig"):
                # the masked weight is a non-leaf tensor that deepcopy refuses; the pruning hook
                # recomputes it before the next forward anyway
                setattr(m, name, getattr(m, name).detach())
    return make_permanent(copy.deepcopy(module))


def encoder_config(encoder: nn.Module) -> JSCCConfig:
    """The ``JSCCConfig`` of an encoder's architecture (filter widths read from its convs, float or int8)."""
    nnq = torch.ao.nn.quantized
    layers = [m for m in encoder.modules() if isinstance(m, (nn.Conv2d, nnq.Conv2d))]
    if len(layers) != 5:
        raise ValueError(f"expected the 5 conv layers of a JSCCEncoder, found {len(layers)}")
    widths = [m.out_channels for m in layers]
    if len(set(widths[1:4])) != 1:
        raise ValueError(f"hidden widths {widths[:4]}: the stride-1 layers must have equal filter counts")
    return JSCCConfig(c=widths[-1], hidden=(widths[0], widths[1]), kernel=layers[0].kernel_size[0],
                      in_channels=layers[0].in_channels, power=_power_of(encoder))


def sparsity(module: nn.Module) -> float:
    """Fraction of exactly-zero conv / linear weights (the pruned share)."""
    ws = [m.weight for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    total = sum(w.numel() for w in ws)
    return sum(int((w == 0).sum()) for w in ws) / total if total else 0.0


def _check_amount(amount: float) -> None:
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"pruning amount must be in [0, 1), got {amount}")


def _power_of(encoder: nn.Module) -> float:
    norms = [m for m in encoder.modules() if isinstance(m, PowerNormalize)]
    return norms[0].power if norms else 1.0


# ------------------------------------------------------------------------------------ int8 encoder
def int8_qconfig(qat: bool = False) -> tq.QConfig:
    """Per-tensor uint8 activations (full range), per-channel symmetric int8 weights; fake-quant for QAT."""
    if qat:
        act = tq.FakeQuantize.with_args(observer=obs.MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                        dtype=torch.quint8, qscheme=torch.per_tensor_affine,
                                        reduce_range=False)
        return tq.QConfig(activation=act, weight=tq.default_per_channel_weight_fake_quant)
    return tq.QConfig(activation=obs.MinMaxObserver.with_args(reduce_range=False),
                      weight=obs.default_per_channel_weight_observer)


class QuantConv(nn.Module):
    """One int8 conv stage: x (B, Cin, H, W) fp32 -> quantize, conv, dequantize -> (B, Cout, H', W') fp32."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv = conv
        self.dequant = tq.DeQuantStub()

    def forward(self, x: Tensor) -> Tensor:
        return self.dequant(self.conv(self.quant(x)))


class Int8Encoder(nn.Module):
    """x (B, 3, H, W) in [0, 1] -> z (B, c, H/4, W/4): the ``JSCCEncoder`` with int8 convs.

    Built from a float encoder (its weights are copied); ``prepare`` -> calibrate or train -> ``convert``
    makes it int8. PReLU and the power normalisation stay fp32 (module docstring says why).
    """

    def __init__(self, encoder: JSCCEncoder) -> None:
        super().__init__()
        enc = plain_copy(encoder)
        layers: list[nn.Module] = []
        for conv, act in zip(convs(enc), prelus(enc), strict=True):
            layers += [QuantConv(conv), act]
        self.net = nn.Sequential(*layers)
        self.norm = PowerNormalize(_power_of(enc))

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.net(x))


def _prepare(encoder: JSCCEncoder, qat: bool) -> Int8Encoder:
    torch.backends.quantized.engine = ENGINE
    q = Int8Encoder(encoder)
    for stage in q.net:
        if isinstance(stage, QuantConv):
            stage.qconfig = int8_qconfig(qat)
    with quiet_quantization():
        if qat:
            q.train()
            tq.prepare_qat(q, inplace=True)
        else:
            q.eval()
            tq.prepare(q, inplace=True)
    return q


def _convert(q: Int8Encoder) -> Int8Encoder:
    q.eval()
    with quiet_quantization():
        tq.convert(q, inplace=True)
    return q


@torch.no_grad()
def quantize_ptq(encoder: JSCCEncoder, calibration: Tensor, batch_size: int = 128) -> Int8Encoder:
    """Post-training int8: observe activation ranges on ``calibration`` (N, 3, H, W) images, convert."""
    q = _prepare(encoder, qat=False)
    for i in range(0, calibration.shape[0], batch_size):
        q(calibration[i:i + batch_size])
    return _convert(q)


def prepare_qat(encoder: JSCCEncoder) -> Int8Encoder:
    """Quantization-aware training: fake-quantized convs (straight-through rounding) to fine-tune."""
    return _prepare(encoder, qat=True)


def convert_qat(q: Int8Encoder) -> Int8Encoder:
    """A QAT-trained ``prepare_qat`` encoder -> the int8 encoder."""
    return _convert(q)


def int8_skeleton(cfg: JSCCConfig) -> Int8Encoder:
    """An int8 encoder of architecture ``cfg`` with placeholder weights, for loading a checkpoint into."""
    return _convert(_prepare(JSCCEncoder(cfg), qat=False))


# ------------------------------------------------------------------------------ codec assembly
def with_encoder(codec: DeepJSCC, encoder: nn.Module) -> DeepJSCC:
    """A copy of ``codec`` whose encoder is ``encoder`` (the decoder, i.e. the base station, unchanged)."""
    out = copy.deepcopy(codec)
    out.encoder = plain_copy(encoder)
    return out.eval()


def fp16_round_trip(encoder: nn.Module) -> nn.Module:
    """The encoder after fp16 storage: weights rounded to float16, computed in fp32 (CPU fp16 convs are
    about 10x slower than fp32 in torch 2.13, so fp16 is a storage format here, not a compute one)."""
    out = plain_copy(encoder)
    with torch.no_grad():
        for p in out.parameters():
            p.copy_(p.half().float())
    return out.eval()


# ------------------------------------------------------------------------------ fine-tuning
@dataclass
class FineTuneConfig:
    """Fine-tuning / QAT / distillation schedule (read by ``semcom.training.fit``)."""

    epochs: int = 2
    batch_size: int = 32
    lr: float = 3e-4
    lr_min: float = 1e-5
    seed: int = 0
    max_seconds: float | None = None
    snr_db: tuple[float, float] = (0.0, 20.0)    # per-image training SNR, uniform in dB (as the teacher)
    distill_weight: float = 1.0                  # weight of the symbol-matching term (distillation only)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["snr_db"] = list(self.snr_db)
        return d


@dataclass
class DistillConfig:
    """The student encoder: ``hidden`` filter widths (the teacher's are (16, 32)); same ``c`` and kernel."""

    hidden: tuple[int, int] = (8, 16)
    train: FineTuneConfig = field(default_factory=lambda: FineTuneConfig(epochs=6, lr=2e-3))


def distill_loss(student_z: Tensor, teacher_z: Tensor, x: Tensor, x_hat: Tensor, weight: float) -> Tensor:
    """Image MSE through the frozen decoder + ``weight`` x MSE of the student's symbols to the teacher's.

    student_z, teacher_z (B, c, h, w) power-normalised; x, x_hat (B, 3, H, W). The symbol term is divided
    by the mean symbol power (1 per real pair -> 0.5 per real) so the two terms are on a like scale.
    """
    code = nn.functional.mse_loss(student_z, teacher_z) / 0.5
    return nn.functional.mse_loss(x_hat, x) + weight * code


def fine_tune(codec: DeepJSCC, encoder: nn.Module, images: Tensor, channel: nn.Module, cfg: FineTuneConfig,
              teacher: nn.Module | None = None, progress: bool = True, desc: str = "fine-tune") -> list[dict]:
    """Train ``encoder`` (pruned, QAT or a distillation student) in place against ``codec``'s frozen decoder.

    images (N, 3, H, W) in [0, 1]; random SNR per image in ``cfg.snr_db``; horizontal flips. With
    ``teacher`` (the teacher encoder) the loss is ``distill_loss``; without it the image MSE. Returns
    ``fit``'s per-epoch records.
    """
    decoder = codec.decoder.eval()
    for p in decoder.parameters():
        p.requires_grad_(False)
    params = [p for p in encoder.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    lo, hi = cfg.snr_db
    torch.manual_seed(cfg.seed)

    def step(idx: Tensor, gen: torch.Generator) -> float:
        x = images[idx]
        flip = torch.rand(x.shape[0], generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        snr = lo + (hi - lo) * torch.rand(x.shape[0], generator=gen)
        encoder.train()
        opt.zero_grad(set_to_none=True)
        z = encoder(x)
        x_hat = decoder(channel(z, snr_db=snr))
        if teacher is None:
            loss = nn.functional.mse_loss(x_hat, x)
        else:
            with torch.no_grad():
                z_t = teacher(x)
            loss = distill_loss(z, z_t, x, x_hat, cfg.distill_weight)
        loss.backward()
        opt.step()
        return float(loss.detach())

    history = fit(opt, images.shape[0], cfg, step, progress=progress, desc=desc)
    encoder.eval()
    for p in decoder.parameters():
        p.requires_grad_(True)
    return history


# ------------------------------------------------------------------------------ counting
def count_params(module: nn.Module) -> tuple[int, int]:
    """(all weights + biases, non-zero ones) of the conv / linear / PReLU layers, float or int8."""
    total = nonzero = 0
    for t in _weight_tensors(module):
        total += t.numel()
        nonzero += int((t != 0).sum())
    return total, nonzero


def _weight_tensors(module: nn.Module) -> Iterator[Tensor]:
    for m in module.modules():
        w = getattr(m, "weight", None)
        w = w() if callable(w) and not isinstance(w, Tensor) else w   # int8 modules: weight() accessor
        if isinstance(w, Tensor):
            yield w.dequantize() if w.is_quantized else w.detach()
        b = getattr(m, "bias", None)
        b = b() if callable(b) and not isinstance(b, Tensor) else b
        if isinstance(b, Tensor):
            yield b.detach()


def count_macs(module: nn.Module, x: Tensor) -> tuple[int, int]:
    """(dense, non-zero-weight) multiply-accumulates per sample of ``module(x)``, x (B, ...), for convs
    and linear layers (float or int8); elementwise work (PReLU, normalisation) is not counted."""
    dense = [0]
    nonzero = [0]

    def hook(m: nn.Module, inputs: tuple, out: Tensor) -> None:
        w = m.weight() if callable(m.weight) and not isinstance(m.weight, Tensor) else m.weight
        w = w.dequantize() if w.is_quantized else w
        positions = out[0, 0].numel() if out.ndim > 2 else 1   # output positions per channel, one sample
        dense[0] += w.numel() * positions
        nonzero[0] += int((w != 0).sum()) * positions

    nnq = torch.ao.nn.quantized
    kinds: tuple[type, ...] = (nn.Conv2d, nn.Linear, nnq.Conv2d, nnq.Linear)
    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            module(x[:1])
    finally:
        for h in handles:
            h.remove()
    return dense[0], nonzero[0]


def bitmask_sparse_bytes(module: nn.Module, bytes_per_value: int = 4) -> int:
    """Bytes of the weights stored sparse as non-zero values + a 1-bit-per-weight mask (a computed figure,
    not a file: torch's sparse formats spend 8-byte indices per value and would be larger)."""
    total, nonzero = count_params(module)
    return nonzero * bytes_per_value + (total + 7) // 8

