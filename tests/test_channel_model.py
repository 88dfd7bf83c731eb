"""Statistics of semcom.ofat.channel_model against theory (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from semcom.ofat import channel_model as cm

N_DRAWS = 20000


def _many(rng: np.random.Generator, n: int, **kw) -> np.ndarray:
    """(n, n_rx, n_tx, n_taps) stack of multipath draws."""
    n_rx = kw.pop("n_rx", 2)
    n_tx = kw.pop("n_tx", 2)
    return np.stack([cm.draw_multipath(rng, n_rx, n_tx, **kw) for _ in range(n)])


def test_pdp_shape_and_decay():
    p = cm.exponential_pdp(4, 2.0)
    assert p.shape == (4,)
    assert p.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(p[1:] / p[:-1], np.exp(-1 / 2.0))
    np.testing.assert_allclose(cm.exponential_pdp(3, np.inf), np.full(3, 1 / 3))
    np.testing.assert_allclose(cm.exponential_pdp(1, 1.0), [1.0])
    with pytest.raises(ValueError):
        cm.exponential_pdp(0, 1.0)
    with pytest.raises(ValueError):
        cm.exponential_pdp(3, 0.0)


def test_rayleigh_tap_powers_follow_pdp_and_pair_power_is_one():
    rng = np.random.default_rng(1)
    h = _many(rng, N_DRAWS, n_taps=3, decay=1.5)
    p = cm.exponential_pdp(3, 1.5)
    power = np.abs(h) ** 2
    np.testing.assert_allclose(power.mean(axis=(0, 1, 2)), p, rtol=0.03)
    # Each (rx, tx) pair has total average power 1.
    np.testing.assert_allclose(power.sum(-1).mean(0), np.ones((2, 2)), rtol=0.03)
    # Rayleigh: E|h|^4 / E|h|^2^2 = 2, and the taps are zero mean, circular.
    m2 = power[..., 0].mean()
    m4 = (power[..., 0] ** 2).mean()
    assert m4 / m2**2 == pytest.approx(2.0, rel=0.05)
    assert abs(h.mean()) < 0.02
    assert abs((h[..., 0] ** 2).mean()) < 0.03 * m2  # E[h^2] = 0 for circular symmetry


def test_pair_power_is_one_with_every_option():
    rng = np.random.default_rng(2)
    spec = cm.ChannelSpec(n_rx=3, n_tx=2, n_taps=3, decay=2.0, rician_k=2.0, corr_tx=0.5, corr_rx=0.8,
                          frac_delay=True, max_int_delay=5)
    e = np.stack([np.sum(np.abs(spec.draw(rng).taps) ** 2, -1) for _ in range(8000)])
    np.testing.assert_allclose(e.mean(0), np.ones((3, 2)), rtol=0.04)


@pytest.mark.parametrize("rho_rx, rho_tx", [(0.7, 0.5), (0.6 * np.exp(0.5j), 0.9)])
def test_kronecker_correlation_matches_exponential_model(rho_rx, rho_tx):
    rng = np.random.default_rng(3)
    n_rx, n_tx = 4, 3
    h = _many(rng, N_DRAWS // 2, n_rx=n_rx, n_tx=n_tx, n_taps=2, decay=1.0, corr_rx=rho_rx, corr_tx=rho_tx)
    # Summed over taps (powers sum to 1) and averaged over the other array.
    r_rx = np.einsum("nitl,njtl->ij", h, h.conj()) / (h.shape[0] * n_tx)
    r_tx = np.einsum("nrsl,nrtl->st", h, h.conj()) / (h.shape[0] * n_rx)
    np.testing.assert_allclose(r_rx, cm.exponential_correlation(n_rx, rho_rx), atol=0.03)
    np.testing.assert_allclose(r_tx, cm.exponential_correlation(n_tx, rho_tx), atol=0.03)
    # Spot-check the model itself: R[0, 2] = rho^2, R[2, 0] = conj(rho^2).
    r = cm.exponential_correlation(3, rho_rx)
    assert r[0, 2] == pytest.approx(rho_rx**2)
    assert r[2, 0] == pytest.approx(np.conj(rho_rx**2))


def test_fully_correlated_limit_is_allowed_and_rank_one():
    rng = np.random.default_rng(4)
    h = cm.draw_multipath(rng, 3, 2, n_taps=1, corr_rx=1.0, corr_tx=1.0)
    assert np.linalg.matrix_rank(h[..., 0], tol=1e-9) == 1
    with pytest.raises(ValueError):
        cm.exponential_correlation(3, 1.2)


def test_rician_ones_los_mean_and_scatter_variance():
    rng = np.random.default_rng(5)
    k, decay = 4.0, 1.0
    p0 = cm.exponential_pdp(3, decay)[0]
    h0 = _many(rng, N_DRAWS, n_taps=3, decay=decay, rician_k=k, los="ones")[..., 0]
    np.testing.assert_allclose(h0.mean(0), np.full((2, 2), np.sqrt(p0 * k / (k + 1))), atol=0.015)
    assert np.var(h0) == pytest.approx(p0 / (k + 1), rel=0.04)
    # The other taps stay zero-mean Rayleigh.
    h1 = _many(rng, 2000, n_taps=3, decay=decay, rician_k=k, los="ones")[..., 1]
    assert abs(h1.mean()) < 0.03


@pytest.mark.parametrize("k", [1.0, 3.0, 10.0])
def test_rician_ula_k_factor_from_moments(k):
    rng = np.random.default_rng(6)
    p0 = cm.exponential_pdp(2, 1.0)[0]
    h0 = _many(rng, N_DRAWS, n_taps=2, decay=1.0, rician_k=k, los="ula")[..., 0]
    pw = np.abs(h0) ** 2
    m2, m4 = pw.mean(), (pw**2).mean()
    assert m2 == pytest.approx(p0, rel=0.03)
    # Rician: E|h|^4 / E|h|^2^2 = (K^2 + 4K + 2) / (K+1)^2; invert the moment estimator.
    assert m4 / m2**2 == pytest.approx((k * k + 4 * k + 2) / (k + 1) ** 2, rel=0.03)
    s = np.sqrt(max(2 - m4 / m2**2, 0.0))
    assert s / (1 - s) == pytest.approx(k, rel=0.15)
    # Random LOS phase / angles: the tap is zero mean.
    assert abs(h0.mean()) < 0.03


def test_ula_steering_is_unit_modulus_with_linear_phase():
    a = cm.ula_steering(5, 0.3)
    np.testing.assert_allclose(np.abs(a), 1.0)
    np.testing.assert_allclose(np.angle(a[1:] / a[:-1]), np.pi * np.sin(0.3))


@pytest.mark.parametrize("frac", [0.0, 0.1, 0.37, 0.5, 0.83, 0.99])
def test_fractional_delay_is_linear_phase_in_band(frac):
    h = cm.fractional_delay_fir(frac)
    assert len(h) == cm.FD_LEN <= 8
    assert np.sum(h**2) == pytest.approx(1.0)
    d = cm.fd_bulk_delay() + frac
    f = np.linspace(-0.35, 0.35, 141)
    resp = np.exp(-2j * np.pi * np.outer(f, np.arange(len(h)))) @ h
    # Phase is -2 pi f d up to a small error, i.e. constant group delay d.
    assert np.max(np.abs(np.angle(resp * np.exp(2j * np.pi * f * d)))) < 0.03
    slope = np.polyfit(f, np.unwrap(np.angle(resp)), 1)[0]
    assert -slope / (2 * np.pi) == pytest.approx(d, abs=0.01)
    mag_db = 20 * np.log10(np.abs(resp))
    assert np.ptp(mag_db) < 1.0


def test_fractional_delay_zero_is_a_delta_and_bad_frac_raises():
    h = cm.fractional_delay_fir(0.0)
    expected = np.zeros(cm.FD_LEN)
    expected[cm.fd_bulk_delay()] = 1.0
    np.testing.assert_allclose(h, expected, atol=1e-12)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError):
            cm.fractional_delay_fir(bad)


def test_fractional_delay_firs_are_the_single_filters_row_by_row():
    """The batched filters (one np.i0 call for all) are each filter alone, bit for bit, and the
    Kaiser-windowed sinc written out here; a bad frac anywhere in the batch is refused."""
    fracs = np.random.default_rng(2).uniform(0.0, 1.0, 50)
    rows = cm.fractional_delay_firs(fracs)
    assert rows.shape == (50, cm.FD_LEN)
    for frac, row in zip(fracs, rows, strict=True):
        np.testing.assert_array_equal(row, cm.fractional_delay_fir(float(frac)))
        t = np.arange(cm.FD_LEN) - (cm.fd_bulk_delay() + frac)
        kaiser = np.i0(cm.FD_KAISER_BETA * np.sqrt(np.clip(1 - (2 * t / cm.FD_LEN) ** 2, 0, None)))
        expected = np.sinc(t) * kaiser
        np.testing.assert_allclose(row, expected / np.linalg.norm(expected), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="frac must be in"):
        cm.fractional_delay_firs(np.array([0.2, 1.0, 0.3]))


@pytest.mark.parametrize("batches", [(1, 9), (4, 1, 5), (10,)])
def test_draw_many_is_successive_draws_in_draw_order(batches):
    """draw_many (mimo_channel's batched redraws) = the draws made one by one in draw's order from the
    same stream: multipath, frac delay, integer delay, CFO jitter; the stream is left where they leave it."""
    spec = cm.ChannelSpec(n_rx=4, n_tx=2, rician_k=2.0, max_int_delay=40, cfo=0.001, cfo_jitter=0.01)
    rng, ref = np.random.default_rng(3), np.random.default_rng(3)
    drawn = [real for count in batches for real in spec.draw_many(rng, count)]
    assert len(drawn) == 10
    for real in drawn:
        h = cm.draw_multipath(ref, 4, 2, n_taps=3, rician_k=2.0)
        frac = float(ref.uniform(0.0, 1.0))
        taps = cm.convolve_taps(h, cm.fractional_delay_fir(frac))
        int_delay = int(ref.integers(0, 41))
        cfo = 0.001 + float(ref.uniform(-0.01, 0.01))
        assert (real.frac_delay, real.int_delay, real.cfo) == (frac, int_delay, cfo)
        np.testing.assert_array_equal(real.taps, taps)
    assert rng.random() == ref.random()
    assert len({real.int_delay for real in drawn}) > 1  # a new draw each, not one repeated


def test_fir_length_bound_and_integer_delay_zeros():
    rng = np.random.default_rng(7)
    for n_taps in (1, 3, 5):
        for int_delay in (0, 4):
            h = cm.draw_channel(rng, 4, 2, n_taps=n_taps, frac_delay=0.3, int_delay=int_delay)
            assert h.shape == (4, 2, int_delay + n_taps + cm.FD_LEN - 1)
            assert h.shape[-1] - int_delay == cm.fir_length(n_taps, True) <= n_taps + 7
            assert np.all(h[..., :int_delay] == 0)
            assert np.all(np.abs(h[..., int_delay]) > 0)
        h = cm.draw_channel(rng, 4, 2, n_taps=n_taps, frac_delay=None)
        assert h.shape == (4, 2, n_taps) and cm.fir_length(n_taps, False) == n_taps
    spec = cm.ChannelSpec(n_rx=4, n_tx=2, n_taps=3, frac_delay=True, max_int_delay=6)
    assert spec.fir_len == 10 and spec.max_total_len == 16
    seen = set()
    for _ in range(300):
        r = spec.draw(rng)
        assert r.taps.shape == (4, 2, spec.fir_len)
        assert r.full_taps.shape[-1] <= spec.max_total_len
        assert 0.0 <= r.frac_delay < 1.0
        assert r.delay == pytest.approx(r.int_delay + cm.fd_bulk_delay() + r.frac_delay)
        seen.add(r.int_delay)
    assert seen == set(range(7))


def test_frac_delay_filter_is_convolved_into_the_taps():
    """draw_channel with a fractional delay = the same multipath draw convolved with the FD filter."""
    h_mp = cm.draw_multipath(np.random.default_rng(8), 2, 2, n_taps=3)
    h = cm.draw_channel(np.random.default_rng(8), 2, 2, n_taps=3, frac_delay=0.42, int_delay=2)
    fd = cm.fractional_delay_fir(0.42)
    for r in range(2):
        for t in range(2):
            np.testing.assert_allclose(h[r, t, 2:], np.convolve(h_mp[r, t], fd), atol=1e-12)


def test_frequency_response_diagonalises_cp_ofdm():
    rng = np.random.default_rng(9)
    fft_len, cp = 64, 16
    taps = cm.draw_channel(rng, 4, 2, n_taps=3, frac_delay=0.6, int_delay=3)
    assert taps.shape[-1] <= cp
    h = cm.channel_frequency_response(taps, fft_len)
    assert h.shape == (fft_len, 4, 2)
    # Direct DFT definition.
    k = np.arange(fft_len)
    dft = np.exp(-2j * np.pi * np.outer(k, np.arange(taps.shape[-1])) / fft_len)
    direct = np.einsum("rtl,kl->krt", taps, dft)
    np.testing.assert_allclose(h, direct, atol=1e-12)
    # One CP-OFDM symbol per transmit antenna through the FIR: Y[k] = H[k] X[k] with unitary FFTs.
    x_f = (rng.standard_normal((2, fft_len)) + 1j * rng.standard_normal((2, fft_len))) / np.sqrt(2)
    body = np.fft.ifft(x_f, axis=-1, norm="ortho")
    sym = np.concatenate([body[:, -cp:], body], axis=-1)
    rx = cm.Realisation(taps=taps).apply(sym)[:, : cp + fft_len]
    y_f = np.fft.fft(rx[:, cp:], axis=-1, norm="ortho")
    np.testing.assert_allclose(y_f.T, np.einsum("krt,tk->kr", h, x_f), atol=1e-10)
    with pytest.raises(ValueError):
        cm.channel_frequency_response(np.zeros((1, 1, 65)), 64)


def test_apply_is_the_direct_sum_over_taps_delay_and_cfo_ramp():
    """Realisation.apply on a tiny case against the definition written out sample by sample."""
    rng = np.random.default_rng(12)
    taps = rng.standard_normal((3, 2, 4)) + 1j * rng.standard_normal((3, 2, 4))
    real = cm.Realisation(taps=taps, int_delay=2, frac_delay=None, cfo=0.03)
    x = (rng.standard_normal((2, 5)) + 1j * rng.standard_normal((2, 5))).astype(np.complex64)
    y = real.apply(x, phase=0.7)
    assert real.extra_samples == 2 + 4 - 1
    assert y.shape == (3, 5 + real.extra_samples) and y.dtype == np.complex128
    expected = np.zeros(y.shape, complex)
    for r in range(3):
        for m in range(y.shape[1]):
            for t in range(2):
                for k in range(4):
                    if 0 <= m - 2 - k < 5:
                        expected[r, m] += taps[r, t, k] * x[t, m - 2 - k]
            expected[r, m] *= np.exp(1j * (0.7 + 2 * np.pi * 0.03 * m))
    np.testing.assert_allclose(y, expected, atol=1e-12)
    # Linear in x and causal: an impulse on one antenna reads out that antenna's delayed taps.
    impulse = np.zeros((2, 3), complex)
    impulse[1, 0] = 1.0
    np.testing.assert_allclose(cm.Realisation(taps=taps, int_delay=2).apply(impulse)[:, 2:6], taps[:, 1])


def test_apply_rejects_wrong_antenna_count_and_real_input():
    real = cm.ChannelSpec(n_rx=4, n_tx=2).draw(np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_tx=2"):
        real.apply(np.zeros((3, 10), complex))
    with pytest.raises(ValueError, match="n_tx=2"):
        real.apply(np.zeros(10, complex))
    with pytest.raises(ValueError, match="complex"):
        real.apply(np.zeros((2, 10)))


def test_seeded_draws_are_reproducible_and_cfo_jitter_in_range():
    spec = cm.ChannelSpec(n_rx=4, n_tx=2, rician_k=1.0, corr_rx=0.3, max_int_delay=3, cfo=0.01,
                          cfo_jitter=0.002)
    a = [spec.draw(np.random.default_rng(11)) for _ in range(2)]
    np.testing.assert_array_equal(a[0].taps, a[1].taps)
    assert (a[0].int_delay, a[0].frac_delay, a[0].cfo) == (a[1].int_delay, a[1].frac_delay, a[1].cfo)
    b = spec.draw(np.random.default_rng(12))
    assert not np.allclose(a[0].taps, b.taps)
    rng = np.random.default_rng(13)
    cfos = np.array([spec.draw(rng).cfo for _ in range(2000)])
    assert cfos.min() >= 0.008 and cfos.max() <= 0.012
    assert cfos.mean() == pytest.approx(0.01, abs=1e-4)
    assert cfos.std() == pytest.approx(0.002 / np.sqrt(3), rel=0.06)  # uniform distribution


def test_invalid_specs_raise():
    for kw in (dict(max_int_delay=-1), dict(cfo_jitter=-0.1), dict(corr_rx=1.5), dict(los="bogus"),
               dict(n_taps=0), dict(decay=-1.0)):
        with pytest.raises(ValueError):
            cm.ChannelSpec(n_rx=2, n_tx=2, **kw)
    with pytest.raises(ValueError):
        cm.draw_multipath(np.random.default_rng(0), 2, 2, rician_k=-1.0)


# --------------------------------------------------------------------- front-end impairments
@pytest.mark.parametrize("gain_db, phase_deg", [(0.5, 3.0), (1.0, 0.0), (0.0, -5.0), (0.0, 0.0)])
def test_iq_imbalance_image_rejection_of_a_tone_matches_theory(gain_db, phase_deg):
    """A tone at +f through y = k1 x + k2 conj(x) leaves an image at -f whose power ratio is the image
    rejection ratio |k1|^2 / |k2|^2 (28.3 dB for 0.5 dB / 3 degrees), measured by FFT."""
    n, f_bin = 4096, 300
    x = np.exp(2j * np.pi * f_bin * np.arange(n) / n)[None]
    k1, k2 = cm.iq_coefficients(gain_db, phase_deg, 1)
    spec = np.abs(np.fft.fft(cm.apply_iq(x, k1, k2)[0])) ** 2
    irr = cm.image_rejection_db(gain_db, phase_deg)
    if gain_db == phase_deg == 0:
        assert irr == pytest.approx(3000, abs=1) and spec[-f_bin] < 1e-20 * spec[f_bin]
        return
    assert 10 * np.log10(spec[f_bin] / spec[-f_bin]) == pytest.approx(irr, abs=1e-6)
    if (gain_db, phase_deg) == (0.5, 3.0):
        assert irr == pytest.approx(28.2, abs=0.05)
    # The textbook form: IRR = (1 + 2 g cos(phi) + g^2) / (1 - 2 g cos(phi) + g^2).
    g, phi = 10 ** (gain_db / 20), np.deg2rad(phase_deg)
    textbook = (1 + 2 * g * np.cos(phi) + g**2) / (1 - 2 * g * np.cos(phi) + g**2)
    assert irr == pytest.approx(10 * np.log10(textbook), abs=1e-9)


def test_wiener_phase_noise_variance_grows_as_two_pi_linewidth_per_sample():
    rng = np.random.default_rng(4)
    lw = 1e-4
    phi = cm.wiener_phase(rng, 64, 4000, lw)
    for d in (1, 80, 1000):
        var = np.var(phi[:, d:] - phi[:, :-d])
        assert var == pytest.approx(2 * np.pi * lw * d, rel=0.05)
    # Continuation: the same draws cut into two calls give the same path.
    a = cm.wiener_phase(np.random.default_rng(5), 2, 300, lw)
    rng = np.random.default_rng(5)
    first = cm.wiener_phase(rng, 2, 100, lw)
    second = cm.wiener_phase(rng, 2, 200, lw, first[:, -1])
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), a, atol=1e-12)


@pytest.mark.parametrize("ppm", [20.0, -20.0, 4.0, 500.0])
def test_sfo_resampler_is_the_ideal_resampled_tone_across_calls(ppm):
    """A tone through SfoResampler in random chunks equals the tone at the ideal reading positions
    n - latency + tau(n) (tau the wrapped drift of -ppm 1e-6 / (1 + ppm 1e-6) per sample) within -70 dB
    at 0.41 cycles/sample (wifi64's band edge), and its frequency is f / (1 + ppm 1e-6)."""
    n, f = 40000, 0.41
    x = np.exp(2j * np.pi * f * np.arange(n))[None].astype(np.complex64)
    res = cm.SfoResampler(1, ppm)
    rng = np.random.default_rng(1)
    cuts = np.cumsum(rng.integers(1, 3000, 40))
    y = np.concatenate([res.process(part) for part in np.split(x, cuts[cuts < n], axis=1)], axis=1)[0]
    rate = ppm * 1e-6 / (1 + ppm * 1e-6)
    raw = -rate * np.arange(1, n + 1)
    raw -= np.trunc(raw)
    ideal = np.exp(2j * np.pi * f * (np.arange(n) - res.latency + raw))
    ok = np.abs(np.diff(np.trunc(-rate * np.arange(n + 1)))) == 0  # away from the whole-sample jumps
    ok[:100] = False
    err = np.mean(np.abs(y - ideal)[ok] ** 2)
    assert 10 * np.log10(err) < -70
    steps = np.angle(y[101:] * np.conj(y[100:-1]))[ok[101:] & ok[100:-1]]
    assert np.mean(steps) / (2 * np.pi) == pytest.approx(f / (1 + ppm * 1e-6), rel=2e-7)


def test_sfo_resampler_recentres_at_a_burst_start():
    res = cm.SfoResampler(1, 1000.0)  # 1 000 ppm: a whole sample every 1 000 samples
    res.process(np.zeros((1, 700), np.complex64))
    assert res.tau == pytest.approx(-0.7, abs=1e-3)  # no reset: the drift accumulates
    res.process(np.zeros((1, 10), np.complex64), resets=[5])
    assert res.tau == pytest.approx(1 - 0.71, abs=1e-3)  # -0.705 at the reset, one whole sample added
    with pytest.raises(ValueError):
        cm.Impairments(sfo_ppm=5000)
    with pytest.raises(ValueError):
        cm.Impairments(phase_noise_linewidth=-1)
