"""The flowgraph as a channel module: same interface and statistics as the torch OFAT channel."""

import numpy as np
import torch

from semcom.channels import OfatChannel
from semcom.flowgraph_channel import FlowgraphChannel
from semcom.ofat.frame import make_layout


def test_flowgraph_channel_matches_torch_ofat_channel_statistics():
    torch.manual_seed(0)
    z = torch.randn(40, 5, 64)
    with FlowgraphChannel(snr_db=20.0, seed=3) as fg:
        out = fg(z)
        assert out.shape == z.shape and out.dtype == z.dtype
        assert fg.sent == 40 and fg.lost == 0
        nmse_fg = float(((out - z) ** 2).sum() / (z**2).sum())
        out_10 = fg(z, snr_db=10.0)  # the SNR is changed on the running flowgraph
        nmse_fg_10 = float(((out_10 - z) ** 2).sum() / (z**2).sum())
    torch_channel = OfatChannel(20.0, layout=make_layout("wifi64"), seed=3,
                                channel_kwargs=dict(n_taps=3, frac_delay=0.5))
    nmse_torch = float(((torch_channel(z) - z) ** 2).sum() / (z**2).sum())
    # Same layout, SNR and MMSE reconstruction: within 1.5 dB (the flowgraph also has CFO and timing).
    assert abs(10 * np.log10(nmse_fg / nmse_torch)) < 1.5
    assert nmse_fg_10 > 3 * nmse_fg


def test_flowgraph_channel_imports_no_command_module(loaded_modules):
    """FlowgraphChannel uses the library part (semcom.transfer), not the `semcom loopback` command module,
    whose names stay importable as the same objects."""
    watched = ("semcom.loopback", "semcom.cli", "semcom.transfer")
    assert loaded_modules("semcom.flowgraph_channel", watched) == ["semcom.transfer"]
    import semcom.loopback
    import semcom.transfer

    for name in ("start_loopback_flowgraph", "transfer", "reconstruct_frames", "loopback_flowgraph_name"):
        assert getattr(semcom.loopback, name) is getattr(semcom.transfer, name)
