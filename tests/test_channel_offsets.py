"""Per-channel offsets of one device in loopback: fixed ones are absorbed by the channel estimate,
phases drifting apart within a frame are not."""

from semcom.ofat.frame import make_layout
from semcom.offsets import FIXED, drift_profile, mean_nmse_db

LAYOUT = make_layout("wifi64", n_tx=2, n_rx=4)


def test_fixed_offsets_are_absorbed_and_drift_breaks_reconstruction():
    base = mean_nmse_db(LAYOUT, n_frames=20)
    fixed = mean_nmse_db(LAYOUT, n_frames=20, **FIXED)
    slow = mean_nmse_db(LAYOUT, n_frames=20, rx_phase_drift=drift_profile(1e-5))
    fast = mean_nmse_db(LAYOUT, n_frames=20, rx_phase_drift=drift_profile(3e-4))
    assert abs(fixed - base) < 0.5
    assert abs(slow - base) < 0.5
    assert fast > base + 10  # ~0.1 rad per 80-sample symbol between channels: the estimate goes stale
