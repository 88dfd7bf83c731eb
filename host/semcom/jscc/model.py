"""DeepJSCC codec of Bourtsoulatze, Kurka and Gündüz, "Deep joint source-channel coding for wireless
image transmission", IEEE TCCN 2019.

Encoder (input normalised to [0, 1]):  5 conv layers, 5x5 kernels, PReLU after each,
strides 2, 2, 1, 1, 1, filters 16, 32, 32, 32, c  ->  average power normalisation.
Decoder: 5 transposed conv layers, strides 1, 1, 1, 2, 2, filters 32, 32, 32, 16, 3, PReLU after the first
four and a sigmoid at the output.

Bandwidth ratio. An image of H x W x 3 has n = 3 H W source values. The two stride-2 layers leave a
(H/4) x (W/4) x c real tensor, i.e. k = c H W / 32 complex channel uses (two reals per complex symbol), so

    k / n = (c H W / 32) / (3 H W) = c / 96 = c / (2 * 3 * 4 * 4),

independent of H and W (H, W multiples of 4). For 32x32x3 images: n = 3072, k = 32 c; k/n = 1/6 <=> c = 16
(k = 512 complex channel uses).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import torch
from torch import nn

Tensor = torch.Tensor

# Total spatial down-sampling of the encoder (two stride-2 layers) and reals per complex symbol.
DOWNSAMPLE = 4
REALS_PER_SYMBOL = 2


def bandwidth_ratio(c: int) -> Fraction:
    """k/n for ``c`` filters in the last encoder layer: ``c / (2 * 3 * 4 * 4) = c / 96``."""
    return Fraction(c, REALS_PER_SYMBOL * 3 * DOWNSAMPLE * DOWNSAMPLE)


def filters_for_ratio(ratio: float | Fraction) -> int:
    """Inverse of ``bandwidth_ratio``: the integer ``c`` with ``c/96 == ratio`` (error if none exists)."""
    c = Fraction(ratio).limit_denominator(10_000) * REALS_PER_SYMBOL * 3 * DOWNSAMPLE * DOWNSAMPLE
    if c.denominator != 1 or c < 1:
        raise ValueError(f"bandwidth ratio {ratio} needs c = {float(c):g} filters, not a positive integer")
    return int(c)


def channel_uses(c: int, height: int, width: int) -> int:
    """Complex channel uses k per image: ``c * (H/4) * (W/4) / 2``."""
    if height % DOWNSAMPLE or width % DOWNSAMPLE:
        raise ValueError(f"image size must be a multiple of {DOWNSAMPLE}, got {height}x{width}")
    reals = c * (height // DOWNSAMPLE) * (width // DOWNSAMPLE)
    if reals % REALS_PER_SYMBOL:
        raise ValueError(f"c*(H/4)*(W/4) = {reals} reals is odd: cannot pair into complex symbols")
    return reals // REALS_PER_SYMBOL


class PowerNormalize(nn.Module):
    """Average power normalisation: ``z_tilde = sqrt(k P) z / ||z||`` per sample.

    z: (B, *dims) real with ``2k = prod(dims)`` reals = ``k`` complex symbols -> same shape, with
    ``sum(z_tilde^2) = k P`` exactly, i.e. mean complex-symbol power ``P`` (default 1).
    """

    def __init__(self, power: float = 1.0, eps: float = 1e-12) -> None:
        super().__init__()
        self.power = float(power)
        self.eps = eps

    def forward(self, z: Tensor) -> Tensor:
        flat = z.reshape(z.shape[0], -1)
        k = flat.shape[1] / REALS_PER_SYMBOL
        norm = flat.norm(dim=1, keepdim=True).clamp_min(self.eps)
        return (flat * ((k * self.power) ** 0.5 / norm)).reshape(z.shape)


@dataclass(frozen=True)
class JSCCConfig:
    """Architecture hyper-parameters (everything needed to rebuild the model from a checkpoint)."""

    c: int = 16                 # filters of the last encoder layer: k/n = c/96
    hidden: tuple[int, int] = (16, 32)  # filters of the stride-2 layers / the stride-1 layers
    kernel: int = 5
    in_channels: int = 3
    power: float = 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> JSCCConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown JSCC config keys {sorted(unknown)}")
        d = dict(d)
        if "hidden" in d:
            d["hidden"] = tuple(d["hidden"])
        return cls(**d)


def _conv(cin: int, cout: int, k: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int, stride: int) -> nn.ConvTranspose2d:
    # output_padding = stride - 1 gives exactly stride x the input size ("same" transposed conv).
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=k // 2, output_padding=stride - 1)


class JSCCEncoder(nn.Module):
    """x (B, 3, H, W) in [0, 1] -> z (B, c, H/4, W/4) real, power-normalised (mean |symbol|^2 = P)."""

    def __init__(self, cfg: JSCCConfig) -> None:
        super().__init__()
        h1, h2 = cfg.hidden
        k = cfg.kernel
        layers: list[nn.Module] = []
        for cin, cout, s in ((cfg.in_channels, h1, 2), (h1, h2, 2), (h2, h2, 1), (h2, h2, 1), (h2, cfg.c, 1)):
            layers += [_conv(cin, cout, k, s), nn.PReLU(cout)]
        self.net = nn.Sequential(*layers)
        self.norm = PowerNormalize(cfg.power)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.net(x))


class JSCCDecoder(nn.Module):
    """z_hat (B, c, H/4, W/4) real (received, equalised symbols) -> x_hat (B, 3, H, W) in (0, 1)."""

    def __init__(self, cfg: JSCCConfig) -> None:
        super().__init__()
        h1, h2 = cfg.hidden
        k = cfg.kernel
        layers: list[nn.Module] = []
        for cin, cout, s in ((cfg.c, h2, 1), (h2, h2, 1), (h2, h2, 1), (h2, h1, 2)):
            layers += [_deconv(cin, cout, k, s), nn.PReLU(cout)]
        layers += [_deconv(h1, cfg.in_channels, k, 2), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class DeepJSCC(nn.Module):
    """Encoder -> channel -> decoder.

    forward(x, channel=None, snr_db=None): x (B, 3, H, W) in [0, 1] -> x_hat (B, 3, H, W).
    ``channel`` is any module mapping the real symbol tensor (B, c, H/4, W/4) to what the receiver gets
    (``semcom.channels``); ``None`` is a noiseless link.
    """

    def __init__(self, cfg: JSCCConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or JSCCConfig()
        self.encoder = JSCCEncoder(self.cfg)
        self.decoder = JSCCDecoder(self.cfg)

    @property
    def ratio(self) -> Fraction:
        return bandwidth_ratio(self.cfg.c)

    def forward(self, x: Tensor, channel: nn.Module | None = None, snr_db: float | Tensor | None = None
                ) -> Tensor:
        z = self.encoder(x)
        if channel is not None:
            z = channel(z) if snr_db is None else channel(z, snr_db=snr_db)
        return self.decoder(z)
