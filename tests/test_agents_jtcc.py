"""JTCC: shapes, power normalisation, the two gradient modes, and that it learns over AWGN."""

from __future__ import annotations

import math

import pytest
import torch

from semcom.agents.jtcc import JTCC, RawTokenLink, normalize_power, through_channel
from semcom.channels import AWGNChannel


def test_shapes_and_per_token_unit_power() -> None:
    torch.manual_seed(0)
    jtcc = JTCC(d=48, m=12, hidden=32)
    tokens = 5.0 * torch.randn(4, 5, 48) + 3.0
    z = jtcc.encode(tokens)
    assert z.shape == (4, 5, 12)
    # Every token: m/2 = 6 complex symbols of unit average power.
    torch.testing.assert_close(z.pow(2).sum(-1), torch.full((4, 5), 6.0))
    c = torch.view_as_complex(z.reshape(4, 5, 6, 2))
    torch.testing.assert_close(c.abs().pow(2).mean(-1), torch.ones(4, 5))
    assert jtcc(tokens).shape == (4, 5, 48)
    with pytest.raises(ValueError):
        JTCC(d=48, m=7)
    with pytest.raises(ValueError):
        jtcc.encode(torch.randn(2, 5, 40))


def test_normalize_power_rejects_odd() -> None:
    with pytest.raises(ValueError):
        normalize_power(torch.randn(2, 3))


def test_awgn_noise_matches_snr() -> None:
    """The received code has error power 10^(-SNR/10) per complex symbol (channel convention)."""
    jtcc = JTCC(d=16, m=64, hidden=16)
    z = jtcc.encode(torch.randn(256, 5, 16))
    y = AWGNChannel(snr_db=15.0, seed=0)(z)
    err = (y - z).pow(2).reshape(256, -1, 2).sum(-1).mean()
    assert err.item() == pytest.approx(10 ** -1.5, rel=0.03)


def test_raw_token_link_is_lossless_without_channel_and_scales_noise() -> None:
    link = RawTokenLink(d=16)
    tokens = torch.randn(8, 5, 16) * 4
    torch.testing.assert_close(link(tokens), tokens)
    link.channel = AWGNChannel(snr_db=20.0, seed=1)
    out = link(tokens)
    # Relative error power per complex symbol = 1/SNR: noise is scaled back by the token's norm.
    rel = ((out - tokens).pow(2).sum(-1) / tokens.pow(2).sum(-1)).mean()
    assert rel.item() == pytest.approx(0.01, rel=0.1)


def test_gradient_modes() -> None:
    z = torch.randn(3, 5, 8, requires_grad=True)

    def gain(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x

    (through_channel(z, gain, "exact").sum()).backward()
    torch.testing.assert_close(z.grad, torch.full_like(z, 0.5))
    z.grad = None
    (through_channel(z, gain, "straight_through").sum()).backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))  # dL/dz := dL/dy
    with pytest.raises(ValueError):
        through_channel(z, gain, "nope")  # type: ignore[arg-type]


def test_channel_is_not_part_of_the_state() -> None:
    jtcc = JTCC(d=8, m=4, hidden=8, channel=AWGNChannel(10.0, seed=0))
    keys = set(jtcc.state_dict())
    jtcc.channel = lambda x: x  # a plain callable may replace a module channel
    assert set(jtcc.state_dict()) == keys and not any(k.startswith("channel") for k in keys)


def test_jtcc_learns_to_reconstruct_over_awgn() -> None:
    """Training with the channel in the loop cuts the reconstruction error well below the token variance."""
    torch.manual_seed(0)
    # Tokens on a 4-dim manifold in 32 dims: compressible to m = 8 reals (4 complex symbols).
    basis = torch.randn(4, 32)
    jtcc = JTCC(d=32, m=8, hidden=64, channel=AWGNChannel(20.0, seed=0), grad_mode="straight_through")
    opt = torch.optim.Adam(jtcc.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        x = torch.randn(64, 5, 4) @ basis
        loss = (jtcc(x) - x).pow(2).mean() / x.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.2 * first and last < 0.15, (first, last)
    assert math.isfinite(last)
