"""The cGAN channel: the channel interface (shapes, dtype, per-call SNR, seeding, errors), a gradient
through it to the encoder, its error statistics against theory and the two-sample test's behaviour."""

import numpy as np
import pytest
import torch

from semcom.adapt.captures import capture
from semcom.adapt.cgan import CGANChannel, GanConfig
from semcom.adapt.fidelity import awgn_control, fidelity_rows, mmd_test
from semcom.channels import OfatChannel
from semcom.jscc.model import DeepJSCC, JSCCConfig


def _values(n: int, seed: int = 0) -> torch.Tensor:
    v = torch.randn(n, 512, generator=torch.Generator().manual_seed(seed))
    return v / v.pow(2).mean(1, keepdim=True).sqrt() / np.sqrt(2)


@pytest.fixture(scope="module")
def caps():
    ch = OfatChannel(21.0, equalizer="mmse", csi="denoised", channel_kwargs=dict(n_taps=3), seed=1)
    return {s: capture(ch, _values(24, seed=int(s)), s, seed=int(s)) for s in (9.0, 21.0)}


@pytest.fixture(scope="module")
def cgan(caps):
    g = CGANChannel(OfatChannel(21.0).layout, "mmse", snr_db=21.0, seed=0)
    g.set_bank(caps[21.0])
    g.set_bank(caps[9.0])
    return g


def test_channel_interface(cgan):
    z = torch.randn(6, 8, 8, 8)
    out = cgan(z)
    assert out.shape == z.shape and out.dtype == z.dtype
    cgan.reseed(3)
    a = cgan(z, snr_db=9.0)
    cgan.reseed(3)
    assert torch.equal(a, cgan(z, snr_db=9.0))
    assert not torch.equal(a, cgan(z, snr_db=9.0))  # the stream moves on
    # Per-call SNR, scalar or one per sample: 12 dB more noise at 9 dB than at 21 dB (within 3 dB,
    # the frames' own channels differ).
    err = lambda y: float(((y - z) ** 2).mean())  # noqa: E731
    gap = 10 * np.log10(err(cgan(z, snr_db=9.0)) / err(cgan(z, snr_db=21.0)))
    assert 9.0 < gap < 15.0
    per = cgan(z, snr_db=torch.tensor([9.0, 9.0, 9.0, 21.0, 21.0, 21.0]))
    assert ((per[:3] - z[:3]) ** 2).mean() > 4 * ((per[3:] - z[3:]) ** 2).mean()
    with pytest.raises(ValueError, match="within"):
        cgan(z, snr_db=0.0)
    with pytest.raises(ValueError, match="shape"):
        cgan(z, snr_db=torch.zeros(2))
    with pytest.raises(ValueError, match="real"):
        cgan(torch.randn(2, 4, dtype=torch.complex64))
    with pytest.raises(RuntimeError, match="no side information"):
        CGANChannel(cgan.layout)(z)


def test_gradient_reaches_the_encoder_and_not_the_cgan(cgan):
    torch.manual_seed(0)
    codec = DeepJSCC(JSCCConfig(c=8, in_channels=1))
    x = torch.rand(4, 1, 32, 32)
    loss = ((codec(x, cgan, snr_db=21.0) - x) ** 2).mean()
    loss.backward()
    first = codec.encoder.net[0].weight.grad
    assert first is not None and float(first.abs().sum()) > 0
    assert all(p.grad is None for p in cgan.parameters())


def test_error_statistics_match_the_real_channel_before_and_after_fitting(caps):
    """The untrained generator is the receiver's Gaussian model of its MMSE error; fitting keeps it
    within 0.5 dB of the held-out real error power, and the AWGN-only control is told apart by MMD."""
    ch = OfatChannel(9.0, equalizer="mmse", csi="denoised", channel_kwargs=dict(n_taps=3), seed=7)
    held = capture(ch, _values(96, seed=99), 9.0, seed=11)
    g = CGANChannel(ch.layout, "mmse", snr_db=9.0, seed=0)
    g.set_bank(caps[9.0])
    rows0 = fidelity_rows(g, held, awgn_control(caps[9.0]), n_samples=600, n_perm=100)
    assert abs(rows0["cgan_err_var_db"] - rows0["real_err_var_db"]) < 0.5
    # Weak subcarriers (large expected noise) carry more error than strong ones (2x4 MMSE: about 5 dB
    # between the quartiles); the AWGN control misses that.
    assert rows0["real_err_var_weak_db"] - rows0["real_err_var_strong_db"] > 3
    assert abs(rows0["cgan_err_var_weak_db"] - rows0["real_err_var_weak_db"]) < 1.0
    assert rows0["awgn_mmd_p"] < 0.05
    assert abs(rows0["awgn_err_var_weak_db"] - rows0["real_err_var_weak_db"]) > 1.5
    g.fit(caps[9.0], GanConfig(epochs=1, mle_epochs=1, batch_size=256))
    rows1 = fidelity_rows(g, held, awgn_control(caps[9.0]), n_samples=600, n_perm=100)
    assert abs(rows1["cgan_err_var_db"] - rows1["real_err_var_db"]) < 0.5
    assert abs(rows1["cgan_err_var_weak_db"] - rows1["real_err_var_weak_db"]) < 1.0


def test_mmd_permutation_test():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 3))
    _, p_same = mmd_test(a, rng.standard_normal((300, 3)), n_perm=200)
    _, p_diff = mmd_test(a, 1.5 * rng.standard_normal((300, 3)), n_perm=200)
    assert p_same > 0.05 and p_diff < 0.01
    with pytest.raises(ValueError):
        mmd_test(a, a[:, :2])
