"""The receiver's channel estimate (step 3 of semcom.ofat.receiver) at fractional delays: on the delay
grid shifted by the channel's fractional delay it is as good half a sample off the grid as on it.

Theory for the numbers: the LS estimate from T training symbols has error sigma^2 Nt / T per element;
the projection onto s delay taps keeps s / Nu of it. For three paths (s = 3), 2x4 wifi64 (T = 4,
Nu = 52) at 30 dB that is an estimate NMSE of 10 log10(1e-3 * 2 * 3 / (4 * 52)) = -45.4 dB, whatever
the paths' fractional delay. The integer grid before spread a path half a sample off it over 8-12 taps
(-36.9 dB measured, experiments/phy/README.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semcom.ofat.receiver import FrameReceiver, ReferenceFrameReceiver

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "phy" / "channel_estimate.py"


@pytest.fixture(scope="module")
def ce(load_script):
    return load_script(SCRIPT)


def _estimate_nmse_db(ce, rx, frac: float, snr_db: float, n: int = 30, seed: int = 7) -> tuple[float, float]:
    """Estimate NMSE (dB) and mean taps kept over n 3-tap Rayleigh channels through a pure delay."""
    fir, bulk = ce.response("delay", frac)
    rng = np.random.default_rng(seed)
    err = power = taps = 0.0
    for _ in range(n):
        h = ce.true_response(rng, fir, bulk, ce.WINDOW_OFFSET)
        est = rx._estimate_channel(ce.training_symbols(rng, h, 10 ** (-snr_db / 10)))[0].transpose(2, 0, 1)
        err += float(np.sum(np.abs(est - h) ** 2))
        power += float(np.sum(np.abs(h) ** 2))
        taps += len(rx.last_taps)
    return 10 * np.log10(err / power), taps / n


def test_half_sample_delay_estimate_matches_the_three_tap_theory(ce) -> None:
    lay = ce.LAYOUT
    theory = 10 * np.log10(1e-3 * lay.n_tx * 3 / (lay.n_train_symbols * lay.n_used))  # -45.4 dB
    rx = FrameReceiver(lay)
    on_grid, taps_on = _estimate_nmse_db(ce, rx, 0.0, 30.0)
    half, taps_half = _estimate_nmse_db(ce, rx, 0.5, 30.0)
    quarter, _ = _estimate_nmse_db(ce, rx, 0.25, 30.0)
    # Measured -45.0 for all three: within 1 dB of the theory (one extra tap on average would cost
    # 10 log10(4 / 3) = 1.25 dB) and within 0.5 dB of the on-grid estimate.
    assert abs(on_grid - theory) < 1.0
    assert abs(half - theory) < 1.0 and abs(quarter - theory) < 1.0
    assert half - on_grid < 0.5 and quarter - on_grid < 0.5
    assert taps_on == 3.0 and taps_half < 3.3
    # The integer grid alone (the estimator before) is far from it at half a sample: -36.9 dB, 9-12 taps.
    rx.align_fraction = False
    old_half, old_taps = _estimate_nmse_db(ce, rx, 0.5, 30.0)
    assert old_half - theory > 5.0 and old_taps > 6


def test_fraction_estimate_and_fast_path_equal_to_reference(ce) -> None:
    """The fractional delay is found to 0.01 sample at 20 dB, and FrameReceiver's estimate (Gram-based
    selection, no LAPACK) equals ReferenceFrameReceiver's within float rounding."""
    fast, ref = FrameReceiver(ce.LAYOUT), ReferenceFrameReceiver(ce.LAYOUT)
    rng = np.random.default_rng(3)
    for frac in (0.1, 0.3, 0.5, 0.8):
        fir, bulk = ce.response("delay", frac)
        for _ in range(4):
            h = ce.true_response(rng, fir, bulk, ce.WINDOW_OFFSET)
            yt = ce.training_symbols(rng, h, 1e-2)
            h_fast, h_ref = fast._estimate_channel(yt)[0], ref._estimate_channel(yt)[0]
            np.testing.assert_allclose(h_fast, h_ref, atol=1e-5)
            assert fast.last_fraction == pytest.approx(ref.last_fraction, abs=1e-9)
            assert abs((fast.last_fraction - frac + 0.5) % 1.0 - 0.5) < 0.01


def test_on_grid_estimate_unchanged_and_low_snr_not_worse(ce) -> None:
    """On the sample grid the shifted fit is not taken (the estimate stays the integer grid's within
    0.1 dB), and at 10 dB half a sample off the shifted grid is not worse than the integer one."""
    new, old = FrameReceiver(ce.LAYOUT), FrameReceiver(ce.LAYOUT)
    old.align_fraction = False
    for snr in (10.0, 30.0):
        assert abs(_estimate_nmse_db(ce, new, 0.0, snr)[0] - _estimate_nmse_db(ce, old, 0.0, snr)[0]) < 0.1
    assert _estimate_nmse_db(ce, new, 0.5, 10.0)[0] < _estimate_nmse_db(ce, old, 0.5, 10.0)[0]


def test_quick_run_writes_its_tables(ce, tmp_path: Path) -> None:
    assert ce.main(["--quick", "--out", str(tmp_path)]) == 0
    for name in ("channel_estimate.csv", "channel_estimate_runs.csv", "channel_estimate_floor.csv",
                 "channel_estimate_summary.json", "channel_estimate.png"):
        assert (tmp_path / name).stat().st_size > 0
    with pytest.raises(SystemExit) as err:
        ce.main(["--seeds", "0", "--out", str(tmp_path)])
    assert err.value.code == 2
