"""PAPR of OFAT frames against the Gaussian theory, envelope clipping against Bussgang, back-off."""

import math

import numpy as np
import pytest

from semcom.ofat import papr
from semcom.ofat.frame import frame_grid, make_layout, modulate_frame, ofdm_demodulate


@pytest.fixture(scope="module")
def wifi_frames():
    """300 full OFAT frames (wifi64, 2 TX, complex mode) with Gaussian payloads: (F, Nt, frame_len).

    64 data symbols x 2 antennas per frame -> 38 400 data-symbol PAPRs (~38 above the 1e-3 quantile).
    """
    layout = make_layout("wifi64", n_tx=2, n_rx=4)
    rng = np.random.default_rng(11)
    frames = np.stack([modulate_frame(layout, rng.standard_normal(layout.capacity), seq=s)[0]
                       for s in range(300)])
    return layout, frames


# ------------------------------------------------------------------------------- CCDF vs theory
@pytest.mark.parametrize("oversampling", [1, 4])
def test_data_symbol_ccdf_within_half_db_of_gaussian_theory(wifi_frames, oversampling):
    layout, frames = wifi_frames
    values = papr.papr_db(frames, layout, "symbol", symbols="data", oversampling=oversampling)
    assert values.shape == (300, 2, 64)
    for prob in (1e-2, 1e-3):
        measured = papr.papr_quantile_db(values, prob)
        theory = papr.gaussian_papr_db(prob, layout.n_used, oversampling)
        assert abs(measured - theory) < 0.5, (prob, measured, theory)
    # The CCDF at the theoretical 1e-3 point, read the other way round (probability axis).
    at = papr.ccdf(values, [papr.gaussian_papr_db(1e-3, layout.n_used, oversampling)])[0]
    assert 3e-4 < at < 3e-3


def test_interpolation_finds_the_peak_between_native_samples():
    # Every used subcarrier in phase at t = 0.5 samples: the analog peak (sum |X_k|)^2 / N lies between
    # two native samples; 4x interpolation hits it exactly, the native samples are well below.
    layout = make_layout("wifi64", n_tx=1, n_rx=1)
    n, bins = layout.fft_len, layout.used_bins
    signed = np.where(bins >= n // 2, bins - n, bins)
    grid = np.zeros((1, 1, n), complex)
    grid[0, 0, bins] = np.exp(-2j * np.pi * signed * 0.5 / n)
    x = np.fft.ifft(grid, norm="ortho")
    frame = np.concatenate([x[..., n - layout.cp_len:], x], axis=-1)[0]  # (1, symbol_len)
    analog = 10 * np.log10(layout.n_used)  # peak Nu^2/N over the layout power Nu/N
    assert papr.papr_db(frame, layout, oversampling=4)[0, 0] == pytest.approx(analog, abs=1e-9)
    assert papr.papr_db(frame, layout, oversampling=1)[0, 0] < analog - 1.0
    bodies = papr.symbol_bodies(frame, layout, oversampling=4)
    np.testing.assert_allclose(bodies[..., ::4], papr.symbol_bodies(frame, layout), atol=1e-12)


def test_papr_reference_power_and_per_frame():
    layout = make_layout("wifi64", n_tx=2, n_rx=2)
    grid, _ = frame_grid(layout, np.random.default_rng(0).standard_normal(700), seq=0)
    x = np.fft.ifft(grid, axis=-1, norm="ortho")
    frame = np.concatenate([x[..., layout.fft_len - layout.cp_len:], x], axis=-1).reshape(2, -1)
    per_symbol = papr.papr_db(frame, layout)
    assert per_symbol.shape == (2, grid.shape[1])
    np.testing.assert_allclose(papr.papr_db(frame, layout, "frame"), per_symbol.max(axis=1))
    # The preamble carries exactly the nominal power (sqrt(2) on half of the used subcarriers), so its
    # PAPR against its own measured mean equals the one against the layout power.
    own = papr.papr_db(frame, layout, symbols=[0], mean_power="measured")[:, 0]
    np.testing.assert_allclose(own, per_symbol[:, 0], atol=0.05)
    np.testing.assert_allclose(papr.papr_db(frame, layout, mean_power=2 * papr.layout_power(layout)),
                               per_symbol - 10 * np.log10(2))
    data = papr.papr_db(frame, layout, symbols="data")
    np.testing.assert_array_equal(data, per_symbol[:, layout.n_sync_symbols:])


def test_ccdf_and_theory_functions():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(papr.ccdf(values, [0.0, 1.0, 2.5, 4.0]), [1.0, 0.75, 0.5, 0.0])
    # One subcarrier, alpha = 1: |x|^2 is exponential, P(PAPR > z) = exp(-z).
    z_db = np.array([0.0, 3.0, 8.0])
    np.testing.assert_allclose(papr.gaussian_ccdf(z_db, 1), np.exp(-10 ** (z_db / 10)), rtol=1e-12)
    for n, os_ in [(52, 1), (52, 4), (108, 4)]:
        for p in (1e-1, 1e-3, 1e-6):
            assert papr.gaussian_ccdf(papr.gaussian_papr_db(p, n, os_), n, os_) == pytest.approx(p, rel=1e-9)
    # More (effective) samples, higher PAPR at the same probability.
    assert papr.gaussian_papr_db(1e-3, 52, 4) > papr.gaussian_papr_db(1e-3, 52, 1)
    assert papr.gaussian_papr_db(1e-3, 108) > papr.gaussian_papr_db(1e-3, 52)


# ------------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("dtype,tol", [(np.complex64, 1e-6), (np.complex128, 1e-14)])
def test_clip_limits_the_envelope_and_leaves_small_samples_untouched(dtype, tol):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 50_000)) + 1j * rng.standard_normal((2, 50_000))) / np.sqrt(2)
    x = x.astype(dtype)
    x[0, :5] = 0  # zeros stay zeros (no 0/0)
    before = x.copy()
    for ratio_db in (-3.0, 0.0, 3.0, 6.0, 9.0):
        level = 10 ** (ratio_db / 20)
        y = papr.clip(x, ratio_db, rms=1.0)
        assert y.dtype == x.dtype and y.shape == x.shape
        np.testing.assert_array_equal(x, before)  # input not modified
        assert np.abs(y).max() <= level * (1 + tol)
        small = np.abs(x) <= level
        assert 0 < small.sum() < x.size
        np.testing.assert_array_equal(y[small], x[small])  # bit for bit
        np.testing.assert_allclose(np.abs(y[~small]), level, rtol=tol)
        np.testing.assert_allclose(np.angle(y[~small] * np.conj(x[~small])), 0, atol=1e-5)
    unclipped = papr.clip(x, math.inf, rms=1.0)
    assert unclipped is not x
    np.testing.assert_array_equal(unclipped, x)


def test_clip_level_scales_with_rms_per_antenna():
    x = np.full((2, 4), 3.0 + 4.0j)  # |x| = 5
    y = papr.clip(x, 0.0, rms=np.array([[1.0], [10.0]]))
    np.testing.assert_allclose(y[0], 0.6 + 0.8j)
    np.testing.assert_array_equal(y[1], x[1])
    np.testing.assert_allclose(papr.clip(x, 20 * np.log10(2.5), rms=1.0), 0.5 * x)


def test_clipped_frame_papr_is_below_the_clip_level(wifi_frames):
    layout, frames = wifi_frames
    for ratio_db in (8.0, 5.0):
        y = papr.clip(frames[:20], ratio_db, papr.layout_rms(layout))
        assert papr.papr_db(y, layout).max() <= ratio_db + 1e-5
        # Between the samples the analog envelope grows back above the level (peak regrowth).
        assert papr.papr_db(y, layout, oversampling=4).max() > ratio_db + 0.1


def test_clip_frame_all_or_data_only(wifi_frames):
    layout, frames = wifi_frames
    x = 0.3 * frames[:3]  # a digital scale the clipper is told about
    d0 = layout.n_sync_symbols * layout.symbol_len
    level_rms = 0.3 * papr.layout_rms(layout)
    np.testing.assert_array_equal(papr.clip_frame(x, layout, 5.0, scale=0.3), papr.clip(x, 5.0, level_rms))
    data_only = papr.clip_frame(x, layout, 5.0, scale=0.3, symbols="data")
    np.testing.assert_array_equal(data_only[..., :d0], x[..., :d0])  # preamble, training, header intact
    np.testing.assert_array_equal(data_only[..., d0:], papr.clip(x[..., d0:], 5.0, level_rms))
    assert papr.papr_db(data_only, layout, symbols="data", mean_power=0.09 * papr.layout_power(layout)
                        ).max() <= 5.0 + 1e-5
    with pytest.raises(ValueError, match="symbols must be"):
        papr.clip_frame(x, layout, 5.0, symbols="header")
    with pytest.raises(ValueError, match="whole number"):
        papr.clip_frame(x[..., :-3], layout, 5.0)


@pytest.mark.parametrize("ratio_db", [0.0, 3.0, 6.0])
def test_bussgang_formulas_against_monte_carlo(ratio_db):
    rng = np.random.default_rng(int(ratio_db) + 5)
    n = 1_000_000
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * np.sqrt(0.5 * 3.0)  # power P = 3
    y = papr.clip(x, ratio_db, rms=np.sqrt(3.0))
    p = np.mean(np.abs(x) ** 2)
    alpha_mc = np.real(np.vdot(x, y)) / np.vdot(x, x).real
    distortion_mc = np.mean(np.abs(y - alpha_mc * x) ** 2) / p
    th = papr.clipping_noise_theory(ratio_db)
    assert papr.bussgang_gain(ratio_db) == pytest.approx(float(th.alpha))
    assert alpha_mc == pytest.approx(float(th.alpha), abs=2e-3)
    assert distortion_mc == pytest.approx(float(th.distortion_power), rel=0.05)
    assert np.mean(np.abs(y) ** 2) / p == pytest.approx(float(th.output_power), rel=5e-3)
    assert np.mean(np.abs(x) > np.sqrt(3.0) * th.gamma) == pytest.approx(float(th.clip_probability), rel=0.05)
    # d is uncorrelated with x by construction of alpha
    assert abs(np.vdot(x, y - alpha_mc * x)) / n < 1e-9


def test_bussgang_limits():
    th = papr.clipping_noise_theory(np.array([math.inf, 40.0, -40.0]))
    np.testing.assert_allclose(th.alpha[:2], 1.0)
    np.testing.assert_allclose(th.distortion_power[:2], 0.0, atol=1e-12)
    # gamma -> 0: the limiter outputs A e^{j phi}; alpha -> (sqrt(pi)/2) gamma, output power -> gamma^2.
    assert th.alpha[2] == pytest.approx(math.sqrt(math.pi) / 2 * 0.01, rel=1e-3)
    assert th.output_power[2] == pytest.approx(1e-4, rel=1e-3)
    assert np.all(np.diff(papr.bussgang_gain(np.array([0.0, 3.0, 6.0, 9.0]))) > 0)


@pytest.mark.parametrize("ratio_db", [4.0, 6.0])
def test_clipping_error_on_data_subcarriers_matches_bussgang_prediction(wifi_frames, ratio_db):
    """No channel: clip the transmitted frames, demodulate, compare data subcarriers with alpha * X."""
    layout, frames = wifi_frames
    x = frames[:40]
    y = papr.clip(x, ratio_db, papr.layout_rms(layout))
    n_sym = x.shape[-1] // layout.symbol_len
    sel = (Ellipsis, slice(layout.n_sync_symbols, None), layout.data_bins)
    xd, yd = ofdm_demodulate(layout, x, n_sym)[sel], ofdm_demodulate(layout, y, n_sym)[sel]
    alpha = np.real(np.vdot(xd, yd)) / np.vdot(xd, xd).real
    assert alpha == pytest.approx(papr.bussgang_gain(ratio_db), abs=2e-3)
    nmse = np.mean(np.abs(yd / alpha - xd) ** 2) / np.mean(np.abs(xd) ** 2)
    assert 10 * np.log10(nmse / papr.predicted_clipping_nmse(ratio_db, layout)) == pytest.approx(0, abs=0.5)


# ------------------------------------------------------------------------------- back-off
def test_backoff_recommendation_is_monotonic_and_puts_the_target_peak_at_full_scale(wifi_frames):
    layout, frames = wifi_frames
    targets = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]
    free = [papr.backoff_recommendation(layout, t, include_sync=False).scale for t in targets]
    assert np.all(np.diff(free) < 0)  # rarer peaks allowed -> more back-off
    with_sync = [papr.backoff_recommendation(layout, t).scale for t in targets]
    assert np.all(np.diff(with_sync) <= 0) and np.all(np.array(with_sync) <= np.array(free) + 1e-15)
    rec = papr.backoff_recommendation(layout, 1e-2, dac_full_scale=1.0)
    assert rec.design_papr_db == pytest.approx(rec.papr_db)  # 10 dB at 1e-2 > the fixed ~7.9 dB sync peak
    # Scaled frames: the fraction of data symbols whose analog peak passes full scale is ~ the target.
    bodies = papr.symbol_bodies(rec.scale * frames[:100, :, layout.n_sync_symbols * layout.symbol_len:],
                                layout, oversampling=4)
    over = np.mean(np.abs(bodies).max(axis=-1) > 1.0)
    assert 1e-2 / 2 < over < 1e-2 * 2
    assert rec.rms_dbfs == pytest.approx(-rec.design_papr_db)
    # An amplifier compressing 6 dB below full scale halves the scale; one above full scale changes nothing.
    amp = papr.backoff_recommendation(layout, 1e-2, amplifier_p1db_dbfs=-6.0)
    assert amp.scale == pytest.approx(rec.scale * 10 ** (-6 / 20))
    above_fs = papr.backoff_recommendation(layout, 1e-2, amplifier_p1db_dbfs=3.0)
    assert above_fs.scale == pytest.approx(rec.scale)
    half_fs = papr.backoff_recommendation(layout, 1e-2, dac_full_scale=0.5)
    assert half_fs.scale == pytest.approx(rec.scale / 2)
    assert "DAC full scale" in rec.explanation and "52 used subcarriers" in rec.explanation


def test_sync_peak_is_a_fixed_layout_property():
    layout = make_layout("wifi64", n_tx=2, n_rx=2)
    x, _ = modulate_frame(layout, np.ones(10), seq=3)
    n_fixed = 1 + layout.n_train_symbols
    measured = papr.papr_db(x, layout, "frame", oversampling=4, symbols=slice(0, n_fixed)).max()
    assert papr.sync_papr_db(layout) == pytest.approx(measured, abs=1e-4)


# ------------------------------------------------------------------------------- errors
def test_bad_arguments_raise_clear_errors():
    layout = make_layout("wifi64", n_tx=2, n_rx=2)
    x, _ = modulate_frame(layout, np.ones(10), seq=0)
    with pytest.raises(ValueError, match="symbol boundary"):
        papr.papr_db(x[:, :-1], layout)
    with pytest.raises(ValueError, match="per must be"):
        papr.papr_db(x, layout, per="antenna")
    with pytest.raises(ValueError, match="oversampling"):
        papr.papr_db(x, layout, oversampling=0)
    with pytest.raises(ValueError, match="oversampling"):
        papr.gaussian_ccdf([10.0], 52, oversampling=2.5)
    with pytest.raises(ValueError, match="mean_power"):
        papr.papr_db(x, layout, mean_power=-1.0)
    with pytest.raises(ValueError, match="mean_power"):
        papr.papr_db(x, layout, mean_power="peak")
    with pytest.raises(ValueError, match="symbols must be"):
        papr.papr_db(x, layout, symbols="header")
    with pytest.raises(ValueError, match="no data symbol"):
        papr.papr_db(x[:, : layout.n_sync_symbols * layout.symbol_len], layout, symbols="data")
    with pytest.raises(TypeError, match="complex or float"):
        papr.papr_db(np.zeros((2, layout.symbol_len), int), layout)
    with pytest.raises(ValueError, match="no PAPR values"):
        papr.ccdf([], [1.0])
    with pytest.raises(ValueError, match="cannot resolve"):
        papr.papr_quantile_db(np.ones(100), 1e-3)
    with pytest.raises(ValueError, match="n_subcarriers"):
        papr.gaussian_ccdf([10.0], 0)
    with pytest.raises(ValueError, match="prob"):
        papr.gaussian_papr_db(0.0, 52)
    with pytest.raises(ValueError, match="ratio_db"):
        papr.clip(x, float("nan"), 1.0)
    with pytest.raises(ValueError, match="rms"):
        papr.clip(x, 6.0, 0.0)
    with pytest.raises(ValueError, match="rms"):
        papr.clip(x, 6.0, float("inf"))
    with pytest.raises(TypeError, match="complex or float"):
        papr.clip(np.arange(4), 6.0, 1.0)
    with pytest.raises(ValueError, match="ratio_db"):
        papr.clipping_noise_theory([3.0, float("nan")])
    with pytest.raises(ValueError, match="target_ccdf"):
        papr.backoff_recommendation(layout, 1.0)
    with pytest.raises(ValueError, match="dac_full_scale"):
        papr.backoff_recommendation(layout, 1e-3, dac_full_scale=-1.0)
    with pytest.raises(ValueError, match="amplifier_p1db_dbfs"):
        papr.backoff_recommendation(layout, 1e-3, amplifier_p1db_dbfs=float("nan"))
