"""Issue 14's impairments against theory and against GNU Radio's own impairment blocks, through the real
chain (ofat_tx -> channel -> ofat_rx, `run_burst`), with the functions of experiments/phy/impairments.py
(the experiment runs the same over 5 seeds):

* `channels.phase_noise_gen` and `channels.iqbal_gen`, on their own (their statistics against the closed
  forms) and between ofat_tx and ofat_rx (what they cost the 2x4 link against what the same impairment
  in mimo_channel costs). The sampling-clock offset through `channels.channel_model`'s epsilon and
  iqbal_gen's receive model are cross-checked in tests/test_loopback.py.
* A sampling-clock offset's residual is the fractional timing it moves the frames to, not the drift the
  tracking follows; a transmit IQ imbalance costs its image rejection, which the receiver's
  iq_correction does not remove."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gnuradio import analog, blocks, channels, gr, semcom

from semcom.loopback import burst_nmse, run_burst, seeded_payloads
from semcom.ofat.channel_model import ar1_phase_structure, image_rejection_db, phase_noise_gen_magnitude

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "phy" / "impairments.py"


@pytest.fixture(scope="module")
def imp(load_script):
    """experiments/phy/impairments.py (a script, loaded as a module): the one definition of the runs."""
    return load_script(SCRIPT)


LINEWIDTH = 1e-5  # cycles/sample: the experiment's phase noise (experiments/phy/impairments.py)
ALPHA = 1e-4  # phase_noise_gen's IIR pole: 1 / alpha = 10 000 samples, six frames, so a frame sees a walk


def _phase_of(block: gr.basic_block, n: int) -> np.ndarray:
    """The phase (rad, unwrapped) `block` puts on n samples of a constant 1."""
    tb = gr.top_block()
    sink = blocks.vector_sink_c()
    ones = analog.sig_source_c(1, analog.GR_CONST_WAVE, 0, 1.0, 0.0)
    tb.connect(ones, blocks.head(gr.sizeof_gr_complex, n), block, sink)
    tb.run()
    return np.unwrap(np.angle(np.array(sink.data())))


def _structure(phase: np.ndarray, lag: int) -> float:
    """var(phi[n + lag] - phi[n]), measured."""
    return float(np.var(phase[lag:] - phase[:-lag]))


def test_phase_noise_gen_is_the_ar1_phase_of_its_parameters_and_walks_like_mimo_channels_over_a_symbol():
    """GNU Radio's phase_noise_gen(noise_mag, alpha) low-passes Gaussian noise into the phase (one-pole
    IIR: an AR(1) process, stationary), mimo_channel's phase noise is a Wiener process. With noise_mag
    from phase_noise_gen_magnitude both wander alike over an OFDM symbol (80 samples: the common phase
    error the receiver tracks per symbol), within 8 %; over a frame (1 600 samples) the AR(1) wanders
    8 % less (1 - (1 - alpha)^1600 against 1600 alpha) and each matches its own closed form."""
    mag = phase_noise_gen_magnitude(LINEWIDTH, ALPHA)
    warm_up = int(5 / ALPHA)  # the IIR starts at 0: drop e^-5 of its transient
    theirs = _phase_of(channels.phase_noise_gen(mag, ALPHA), warm_up + 600_000)[warm_up:]
    ch = semcom.mimo_channel(1, 1, fading="held", n_taps=1, frac_delay=False, noise_ref_power=0.0, seed=2,
                             phase_noise_linewidth=LINEWIDTH)
    ours = _phase_of(ch, 600_000)  # the one tap's phase is a constant, it leaves the increments alone
    for lag, tolerance in ((80, 0.06), (1600, 0.2)):  # 7 500 and 375 independent increments
        assert _structure(theirs, lag) == pytest.approx(float(ar1_phase_structure(mag, ALPHA, lag)),
                                                        rel=tolerance)
        assert _structure(ours, lag) == pytest.approx(2 * np.pi * LINEWIDTH * lag, rel=tolerance)
    assert _structure(theirs, 80) == pytest.approx(_structure(ours, 80), rel=0.08)
    # Far beyond 1 / alpha the AR(1) phase stops wandering; the Wiener phase does not.
    assert _structure(theirs, 100_000) < 0.5 * _structure(ours, 100_000)


def test_phase_noise_through_gnu_radio_phase_noise_gen_costs_what_mimo_channels_does(imp):
    """ofat_tx -> channel_model -> phase_noise_gen on every receive antenna (its noise source's seed is
    fixed, so all four get one phase: one oscillator, as mimo_channel models it) -> ofat_rx with the
    per-symbol common phase, against mimo_channel's Wiener phase noise of the matched linewidth 1e-5.
    Measured (seeds 8 / 9): 0.38 / 0.37 dB through GNU Radio, 0.38 / 0.41 through mimo_channel."""
    loss = imp.gr_block_loss(8, 60, *imp.GR_CROSS_CHECKS["phase noise 1e-5, phase_noise_gen"])
    assert 0.15 < loss["gr"] < 1.0
    assert loss["gr"] == pytest.approx(loss["mimo_channel"], abs=0.15)


def test_tx_iq_imbalance_through_gnu_radio_iqbal_gen_costs_what_mimo_channels_does(imp):
    """iqbal_gen's transmit model (mode 0, 0.5 dB / 3 degrees: image -28.2 dB) on both transmit antennas
    before channel_model, against mimo_channel's TX imbalance (the same coefficients, qa_mimo_channel):
    the same cost to the link, which the receiver does not undo. Measured (seeds 8 / 9): 0.27 / 0.42 dB
    through GNU Radio, 0.29 / 0.45 through mimo_channel."""
    assert image_rejection_db(0.5, 3.0) == pytest.approx(28.2, abs=0.05)
    loss = imp.gr_block_loss(8, 60, *imp.GR_CROSS_CHECKS["TX IQ 0.5 dB / 3 deg, iqbal_gen mode 0"])
    assert 0.1 < loss["gr"] < 1.0
    assert loss["gr"] == pytest.approx(loss["mimo_channel"], abs=0.1)


def test_sfo_residual_is_the_fractional_timing_not_the_drift(imp):
    """20 ppm through GNU Radio's channels.channel_model, 30 dB, 60 frames: with tracking the loss per
    data symbol is flat along the frame (without it, it grows), and against 0-ppm runs at the same
    fractional timings (GR's own interpolator folded into the taps) it is well under the issue's 0.5 dB,
    while against the on-grid 0-ppm run it is not. Measured: 0.20 dB against the same timings, 0.61 dB
    against the grid; per symbol 0.54-0.67 dB tracked, 2.2 -> 3.5 dB untracked."""
    path, seed, snr, n = "gr_channel_model", 1, 30.0, 60
    runs = {(ppm, tr): imp.sfo_run(path, seed, snr, ppm, tr, n) for ppm, tr in ((0.0, True), (20.0, True),
                                                                              (20.0, False))}
    nmse = {k: np.array(imp.burst_nmse(imp.LAYOUT, *v, "zf")) for k, v in runs.items()}
    assert all(len(v) == n for v in nmse.values())
    per_symbol = {k: 10 * np.log10(imp.per_symbol_nmse(*v).mean(axis=0)) for k, v in runs.items()}
    tracked = (per_symbol[20.0, True] - per_symbol[0.0, True])[:6]  # the 7th symbol is partly filled
    untracked = (per_symbol[20.0, False] - per_symbol[0.0, True])[:6]
    assert np.ptp(tracked) < 0.3
    assert untracked[-1] - untracked[0] > 1.0

    bins = 8
    ref = imp.same_timing_reference(path, seed, snr, 10, bins)
    on_grid = imp.frame_delay(runs[0.0, True][0][0][1]["H"])
    frames = runs[20.0, True][0]
    timing_bin = [int(np.mod(imp.frame_delay(t["H"]) - on_grid, 1.0) * bins) % bins for _, t in frames]
    same_timing = np.mean([ref[b]["nmse"] for b in timing_bin])
    loss_same_timing = 10 * np.log10(nmse[20.0, True].mean() / same_timing)
    loss_on_grid = 10 * np.log10(nmse[20.0, True].mean() / nmse[0.0, True].mean())
    assert loss_same_timing < 0.5
    assert loss_on_grid > loss_same_timing + 0.3


def test_tx_iq_imbalance_costs_its_image_rejection_and_iq_correction_does_not_remove_it(imp):
    """0.5 dB / 3 degrees at the transmitter (image -28.2 dB), 2x4 at 20 dB, mimo_channel redrawn per
    frame, 60 frames: the image reaches subcarrier k through the same channel as the signal, so ZF leaves
    NMSE_0 + 10^(-IRR/10): measured -19.30 dB against -19.29 from theory; with the blind receive-side
    correction (built for a receive imbalance) -19.21 against -19.14: it removes none of the image."""
    sent = seeded_payloads(60, 1280, seed=301)
    image = 10 ** (-image_rejection_db(0.5, 3.0) / 10)

    def nmse(iq_correction: bool, **tx_iq) -> float:
        frames = run_burst(imp.LAYOUT, sent, rx_options={"iq_correction": iq_correction}, snr_db=20.0,
                           seed=1, n_taps=3, **tx_iq)
        assert len(frames) == len(sent)
        return float(np.mean(burst_nmse(imp.LAYOUT, frames, sent, "zf")))

    for iq_correction in (False, True):  # the correction's own bias raises NMSE_0, the image stays whole
        without, with_image = nmse(iq_correction), nmse(iq_correction, **imp.TX_IQ)
        assert 10 * np.log10(with_image / without) > 0.3
        assert 10 * np.log10(with_image) == pytest.approx(10 * np.log10(without + image), abs=0.15)
