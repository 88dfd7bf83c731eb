"""Issue 14's impairments against their theory through the real chain (ofat_tx -> channel -> ofat_rx,
`run_burst`), with the functions of experiments/phy/impairments.py: a sampling-clock offset's residual
is the fractional timing it moves the frames to, not the drift the tracking follows; a transmit IQ
imbalance costs its image rejection, which the receiver's iq_correction does not remove."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from semcom.loopback import burst_nmse, run_burst, seeded_payloads
from semcom.ofat.channel_model import image_rejection_db

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "phy" / "impairments.py"


@pytest.fixture(scope="module")
def imp():
    spec = importlib.util.spec_from_file_location("phy_impairments", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
