"""SigMF capture and replay: the shipped loopback recording replays to the same frames and NMSE; a
truncated or mislabelled recording gets a clear error."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from semcom.capture import RecordingError, load_recording, record_loopback, replay, write_recording
from semcom.ofat.frame import make_layout

FIXTURE = Path(__file__).parent / "fixtures" / "loopback_2x2"


def test_shipped_recording_replays_like_live():
    rec = load_recording(FIXTURE)
    live = rec.meta["semcom:live_results"]
    assert len(live) == 12
    rows = replay(rec)
    assert [r["seq"] for r in rows] == [r["seq"] for r in live]
    for got, was in zip(rows, live, strict=True):
        assert abs(got["nmse_db"] - was["nmse_db"]) <= 0.1


def test_record_then_replay_round_trip(tmp_path):
    live = record_loopback(tmp_path / "rec", n_frames=4, snr_db=25.0, seed=1)
    assert [r["seq"] for r in live] == [0, 1, 2, 3]
    rows = replay(load_recording(tmp_path / "rec"))
    assert [round(r["nmse_db"], 3) for r in rows] == [round(r["nmse_db"], 3) for r in live]


def _copy(tmp_path: Path) -> Path:
    for suffix in (".sigmf-meta", ".sigmf-data"):
        shutil.copy(FIXTURE.with_suffix(suffix), tmp_path / f"rec{suffix}")
    return tmp_path / "rec"


def test_truncated_recording_is_rejected(tmp_path):
    base = _copy(tmp_path)
    data = base.with_suffix(".sigmf-data")
    data.write_bytes(data.read_bytes()[:-12])
    with pytest.raises(RecordingError, match="sha512|truncated"):
        load_recording(base)
    with pytest.raises(RecordingError, match="truncated"):
        load_recording(base, verify_hash=False)


@pytest.mark.parametrize("field,value,match", [
    ("core:num_channels", 3, "mislabelled"),
    ("core:datatype", "ci16_le", "datatype"),
    ("semcom:layout", {"fft_len": 48}, "layout"),
])
def test_mislabelled_recording_is_rejected(tmp_path, field, value, match):
    base = _copy(tmp_path)
    meta_path = base.with_suffix(".sigmf-meta")
    doc = json.loads(meta_path.read_text())
    doc["global"][field] = value
    meta_path.write_text(json.dumps(doc))
    with pytest.raises(RecordingError, match=match):
        load_recording(base)


def test_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(RecordingError, match="no such SigMF metadata"):
        load_recording(tmp_path / "nothing")


def test_write_recording_interleaves_channels(tmp_path):
    layout = make_layout("wifi64", n_tx=1, n_rx=3)
    samples = (np.arange(30) + 1j * np.arange(30)).astype(np.complex64).reshape(3, 10)
    write_recording(tmp_path / "x", samples, layout=layout, sample_rate=2e6, center_freq=2.4e9)
    rec = load_recording(tmp_path / "x")
    np.testing.assert_array_equal(rec.samples, samples)
    assert rec.sample_rate == 2e6
    raw = np.fromfile(tmp_path / "x.sigmf-data", dtype="<c8")
    assert raw[1] == samples[1, 0]  # interleaved: sample 0 of channel 0, 1, 2, then sample 1 ...
