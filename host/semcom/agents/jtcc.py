"""Joint Token and Channel Coding (JTCC): per-token FC autoencoder, channel in the loop.

Each machine-language token (a d-dim hidden state) is encoded on its own into ``m`` real channel values,
power-normalised, sent through a channel, and decoded back to d dims::

    tokens (B, K, d) --encoder--> (B, K, m) --normalise--> z (B, K, m) --channel--> y (B, K, m)
                     --decoder--> decoded (B, K, d)

Power convention (the project's, see ``semcom.channels``): adjacent reals ``(z[2i], z[2i+1])`` are the real
and imaginary parts of one complex baseband symbol, and every *token* is scaled so that its ``m / 2``
complex symbols have unit average power: ``sum(z_token ** 2) = m / 2``, i.e. mean square per real value
1/2. A sample's K tokens therefore also have unit average power per complex symbol, which is what the
channels (AWGN, Rayleigh, OFAT MIMO) assume when they set the noise from the SNR. ``m`` must be even.

Gradient through the channel (``grad_mode``):

* ``"exact"``: plain back-propagation through a differentiable channel (``semcom.channels``).
* ``"straight_through"``: the paper's approximation. The channel runs under ``no_grad`` (so it may be
  non-differentiable: hardware, a GNU Radio flowgraph, numpy) and the gradient that arrives at the
  *received* values ``y`` is passed unchanged to the *transmitted* values ``z`` (d y / d z := I).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

Tensor = torch.Tensor
GradMode = Literal["exact", "straight_through"]
GRAD_MODES: tuple[str, ...] = ("exact", "straight_through")
ChannelFn = Callable[[Tensor], Tensor]


class _StraightThroughChannel(torch.autograd.Function):
    """y = channel(z) in the forward pass; dL/dz = dL/dy in the backward pass (paper's approximation)."""

    @staticmethod
    def forward(ctx, z: Tensor, channel: ChannelFn) -> Tensor:  # type: ignore[override]
        with torch.no_grad():
            y = channel(z.detach())
        if y.shape != z.shape:
            raise ValueError(f"channel changed the shape {tuple(z.shape)} -> {tuple(y.shape)}")
        return y.to(z.dtype)

    @staticmethod
    def backward(ctx, grad_y: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad_y, None


def through_channel(z: Tensor, channel: ChannelFn | None, grad_mode: GradMode = "exact") -> Tensor:
    """Send ``z`` (B, ...) through ``channel`` with the chosen gradient mode; ``None`` = ideal channel."""
    if channel is None:
        return z
    if grad_mode == "exact":
        return channel(z)
    if grad_mode == "straight_through":
        return _StraightThroughChannel.apply(z, channel)
    raise ValueError(f"grad_mode must be one of {GRAD_MODES}, got {grad_mode!r}")


def normalize_power(z: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale every token to unit average power per complex symbol (pair of reals).

    z: (..., m) real, m even -> (..., m) with ``sum(z**2, -1) = m / 2`` for every token.
    """
    m = z.shape[-1]
    if m % 2:
        raise ValueError(f"m must be even (pairs of reals are complex symbols), got {m}")
    power = z.pow(2).sum(dim=-1, keepdim=True)  # (..., 1)
    return z * torch.sqrt((m / 2) / (power + eps))


class _ChannelHolder(nn.Module):
    """Keeps the channel as a plain attribute, not a child module.

    The channel is not part of the codec: it must not appear in the state_dict, follow ``.to()``, or
    refuse a plain callable (a numpy / flowgraph channel) after an nn.Module channel was set.
    """

    @property
    def channel(self) -> ChannelFn | None:
        return self.__dict__.get("_channel")

    def __setattr__(self, name: str, value: object) -> None:
        if name == "channel":
            self.__dict__["_channel"] = value
        else:
            super().__setattr__(name, value)


class JTCC(_ChannelHolder):
    """Per-token FC autoencoder ``d -> hidden -> m -> (channel) -> hidden -> d``.

    Args:
        d: token dimension (the transmitter's hidden size, which is also the receiver's).
        m: real channel values per token (even). Compression ratio of the channel use: d / m.
        hidden: width of the single hidden layer on each side.
        channel: any callable / nn.Module mapping (B, K, m) real -> (B, K, m) real, e.g.
            ``semcom.channels.AWGNChannel``; ``None`` is the ideal channel. Settable later
            (``jtcc.channel = ...``), and overridable per call.
        grad_mode: ``"exact"`` or ``"straight_through"`` (see module docstring).

    forward: tokens (B, K, d) -> decoded (B, K, d). ``encode`` gives the normalised channel values
    (B, K, m) and ``decode`` maps received values (B, K, m) back to (B, K, d).
    """

    def __init__(self, d: int, m: int, hidden: int = 256, channel: ChannelFn | None = None,
                 grad_mode: GradMode = "exact") -> None:
        super().__init__()
        if m % 2 or m <= 0:
            raise ValueError(f"m must be a positive even number, got {m}")
        if grad_mode not in GRAD_MODES:
            raise ValueError(f"grad_mode must be one of {GRAD_MODES}, got {grad_mode!r}")
        self.d, self.m, self.hidden = d, m, hidden
        self.grad_mode: GradMode = grad_mode
        # The LayerNorm keeps the code well scaled whatever the token statistics (LLM hidden states have
        # a few very large channels); the power normalisation after it sets the transmit power.
        self.encoder = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, m))
        self.decoder = nn.Sequential(nn.Linear(m, hidden), nn.GELU(), nn.Linear(hidden, d))
        self.channel = channel

    def encode(self, tokens: Tensor) -> Tensor:
        """tokens (B, K, d) -> power-normalised channel values (B, K, m)."""
        if tokens.shape[-1] != self.d:
            raise ValueError(f"expected tokens (..., {self.d}), got {tuple(tokens.shape)}")
        return normalize_power(self.encoder(tokens))

    def decode(self, received: Tensor) -> Tensor:
        """received channel values (B, K, m) -> decoded tokens (B, K, d)."""
        return self.decoder(received)

    def forward(self, tokens: Tensor, channel: ChannelFn | None = None,
                grad_mode: GradMode | None = None) -> Tensor:
        """tokens (B, K, d) -> decoded tokens (B, K, d) after the channel (``self.channel`` by default)."""
        ch = self.channel if channel is None else channel
        z = self.encode(tokens)
        y = through_channel(z, ch, self.grad_mode if grad_mode is None else grad_mode)
        return self.decode(y)

    def config(self) -> dict[str, int | str]:
        """JSON-able constructor arguments (the channel is not part of the model)."""
        return {"d": self.d, "m": self.m, "hidden": self.hidden, "grad_mode": self.grad_mode}


class RawTokenLink(_ChannelHolder):
    """The "tokens without JTCC" baseline: each token's d values go over the channel as they are.

    The token is power-normalised like a JTCC code (unit average power per complex symbol, d even), sent,
    and the receiver multiplies back by the token's norm, which it is assumed to get error-free as side
    information (one scalar per token, as the OFAT frame header carries a scale). d real channel values per
    token.

    forward: tokens (B, K, d) -> received tokens (B, K, d).
    """

    def __init__(self, d: int, channel: ChannelFn | None = None, grad_mode: GradMode = "exact") -> None:
        super().__init__()
        if d % 2:
            raise ValueError(f"d must be even to pair reals into complex symbols, got {d}")
        if grad_mode not in GRAD_MODES:
            raise ValueError(f"grad_mode must be one of {GRAD_MODES}, got {grad_mode!r}")
        self.d = d
        self.m = d
        self.channel = channel
        self.grad_mode: GradMode = grad_mode

    def forward(self, tokens: Tensor, channel: ChannelFn | None = None,
                grad_mode: GradMode | None = None) -> Tensor:
        ch = self.channel if channel is None else channel
        scale = torch.sqrt(tokens.pow(2).sum(dim=-1, keepdim=True) / (self.d / 2) + 1e-8)  # (B, K, 1)
        y = through_channel(tokens / scale, ch, self.grad_mode if grad_mode is None else grad_mode)
        return y * scale

    def config(self) -> dict[str, int | str]:
        return {"d": self.d, "grad_mode": self.grad_mode}
