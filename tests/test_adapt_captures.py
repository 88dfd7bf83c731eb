"""Channel captures: round trip through the file format, refusal of corrupted or mismatched files, and
the flowgraph's side information meaning what it says (noise variance, SNR, equaliser error)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from semcom.adapt.captures import CaptureError, Captures, capture, capture_paths, load_captures
from semcom.adapt.cgan import re_condition, subcarrier_stats
from semcom.channels import OfatChannel
from semcom.ofat.frame import make_layout


def _values(n: int, seed: int = 0) -> torch.Tensor:
    v = torch.randn(n, 256, generator=torch.Generator().manual_seed(seed))
    return v / v.pow(2).mean(1, keepdim=True).sqrt() / np.sqrt(2)


@pytest.fixture(scope="module")
def torch_caps() -> Captures:
    ch = OfatChannel(15.0, equalizer="mmse", csi="denoised", channel_kwargs=dict(n_taps=3))
    return capture(ch, _values(12), 15.0, seed=4, note="test")


def test_round_trip(tmp_path, torch_caps):
    npz, js = torch_caps.save(tmp_path / "cap")
    assert (npz, js) == capture_paths(tmp_path / "cap.json")
    back = load_captures(tmp_path / "cap", provenance="torch", layout=make_layout("wifi64"), n_values=256,
                         equalizer="mmse")
    for name in ("x", "y", "h_est", "noise_var", "scale", "snr_setting_db", "delivered"):
        np.testing.assert_array_equal(getattr(back, name), getattr(torch_caps, name))
    assert back.meta == json.loads(json.dumps(torch_caps.meta))
    assert back.h_est.shape == (12, 48, 4, 2) and back.x.dtype == np.float32
    both = back.concat(torch_caps)
    assert both.n_frames == 24


def test_refuses_corrupted_and_mismatched_files(tmp_path, torch_caps):
    npz, js = torch_caps.save(tmp_path / "cap")
    with pytest.raises(CaptureError, match="provenance"):
        load_captures(tmp_path / "cap", provenance="flowgraph")
    with pytest.raises(CaptureError, match="layout"):
        load_captures(tmp_path / "cap", layout=make_layout("wifi64", n_rx=2))
    with pytest.raises(CaptureError, match="values per frame"):
        load_captures(tmp_path / "cap", n_values=512)
    with pytest.raises(CaptureError, match="equaliser"):
        load_captures(tmp_path / "cap", equalizer="zf")
    raw = bytearray(npz.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    npz.write_bytes(bytes(raw))
    with pytest.raises(CaptureError, match="SHA-256"):
        load_captures(tmp_path / "cap")
    torch_caps.save(tmp_path / "cap")
    doc = json.loads(js.read_text())
    doc["format_version"] = 99
    js.write_text(json.dumps(doc))
    with pytest.raises(CaptureError, match="format_version"):
        load_captures(tmp_path / "cap")
    js.write_text(js.read_text()[:20])
    with pytest.raises(CaptureError, match="not valid JSON"):
        load_captures(tmp_path / "cap")
    npz.unlink()
    with pytest.raises(CaptureError, match="not found"):
        load_captures(tmp_path / "cap")


def test_inconsistent_captures_are_refused(torch_caps):
    bad = {k: getattr(torch_caps, k) for k in ("x", "y", "delivered", "h_est", "noise_var", "snr_est_db",
                                               "scale", "snr_setting_db")}
    with pytest.raises(CaptureError, match="h_est"):
        Captures(**{**bad, "h_est": bad["h_est"][:, :10]}, meta=torch_caps.meta)
    with pytest.raises(CaptureError, match="provenance"):
        Captures(**bad, meta={**torch_caps.meta, "provenance": "dream"})
    with pytest.raises(CaptureError, match="NaN"):
        Captures(**{**bad, "y": np.full_like(bad["y"], np.nan)}, meta=torch_caps.meta)


def test_flowgraph_capture_side_information():
    from semcom.flowgraph_channel import FlowgraphChannel

    with FlowgraphChannel(15.0, seed=5) as fg:
        cap = capture(fg, _values(48, seed=1), 15.0)
    assert cap.meta["provenance"] == "flowgraph" and cap.delivered.all() and fg.sent == 48
    # The receiver's noise and SNR estimates against the setting (unit noise reference, 15 dB).
    assert abs(10 * np.log10(np.median(cap.noise_var)) + 15.0) < 1.5
    assert abs(np.median(cap.snr_est_db) - 15.0) < 1.5
    # The equaliser error the side information predicts matches the measured one (within 1.5 dB; the
    # estimate's own error and the residual CFO add a little).
    a, cg = subcarrier_stats(torch.as_tensor(cap.h_est), torch.as_tensor(cap.noise_var), "mmse")
    _, std, _ = re_condition(a, cg, torch.as_tensor(cap.noise_var), torch.as_tensor(cap.scale), 64)
    a_x = cap.y  # MMSE shrinks: compare the error after the response A x
    from semcom.adapt.cgan import apply_response

    rows = torch.as_tensor(cap.x).reshape(48, 64, 4)
    resp = apply_response(a[:, torch.arange(64) % 48], rows).reshape(48, -1).numpy()
    measured = np.mean((a_x - resp) ** 2)
    predicted = float((std**2).mean())
    assert abs(10 * np.log10(measured / predicted)) < 1.5


def test_captures_from_receiver_frames_match_the_flowgraph_path():
    """ofat_tx -> mimo_channel -> ofat_rx frames (as a replayed recording gives them) become captures whose
    values and side information agree with what the receiver reported; an unsent frame counts as lost."""
    from semcom.adapt.captures import captures_from_frames
    from semcom.loopback import run_burst

    lay = make_layout("wifi64")
    sent = {s: v.numpy() for s, v in enumerate(_values(6, seed=2))}
    frames = run_burst(lay, {s: v for s, v in sent.items() if s != 3}, snr_db=20.0, seed=3)
    cap = captures_from_frames(lay, frames, sent, 20.0)
    assert cap.meta["provenance"] == "recording"
    assert cap.delivered.tolist() == [True, True, True, False, True, True]
    d = cap.delivered
    nmse = np.sum((cap.y[d] - cap.x[d]) ** 2) / np.sum(cap.x[d] ** 2)
    assert 10 * np.log10(nmse) < -15  # MMSE at 20 dB over 2x4: about -23 dB
    assert np.all(np.abs(cap.snr_est_db[d] - 20.0) < 3)


def test_captures_from_the_shipped_recording_replay_every_frame():
    """The shipped SigMF fixture (12 frames, 2x2 loopback at 20 dB, `semcom record-loopback`) replayed
    into captures: every frame delivered, each frame's values as far from the seeded payload as the
    receiver decoded them live, the side information is the receiver's."""
    from semcom.adapt.captures import captures_from_recording
    from semcom.capture import LIVE_TOLERANCE_DB, load_recording

    fixture = Path(__file__).parent / "fixtures" / "loopback_2x2"
    cap = captures_from_recording(fixture, 20.0)
    assert cap.meta["provenance"] == "recording" and cap.x.shape[0] == 12
    assert cap.delivered.all()
    nmse_db = 10 * np.log10(np.sum((cap.y - cap.x) ** 2) / np.sum(cap.x**2))
    assert nmse_db < -10  # 2x2 MMSE at 20 dB with LS CSI
    per_frame = 10 * np.log10(np.sum((cap.y - cap.x) ** 2, axis=1) / np.sum(cap.x**2, axis=1))
    live = [r["nmse_db"] for r in load_recording(fixture).meta["semcom:live_results"]]
    np.testing.assert_allclose(per_frame, live, atol=LIVE_TOLERANCE_DB)
    assert abs(np.median(cap.snr_est_db) - 20.0) < 2  # per frame it follows the Rayleigh draw
    fewer = captures_from_recording(fixture, 20.0, n_sent=5)
    np.testing.assert_array_equal(fewer.x, cap.x[:5])


def test_a_recording_without_payload_description_is_refused(tmp_path):
    from semcom.adapt.captures import captures_from_recording
    from semcom.capture import write_recording

    lay = make_layout("wifi64", n_tx=2, n_rx=2)
    path = write_recording(tmp_path / "noise", np.zeros((2, 4000), np.complex64), layout=lay,
                           sample_rate=1e6)
    with pytest.raises(CaptureError, match="semcom:payload"):
        captures_from_recording(path, 20.0)
