"""SigMF capture and replay: metadata through the `sigmf` package (schema-valid, start time, chunked
sha512 equal to hashlib's), streamed replay equal to a whole-file replay wherever the chunks are cut, the
shipped regression recording replaying like live, the hand-written SigMF 1.0.0 recording still loading,
`semcom replay`'s exit status, and a one-line error (exit 2) for every bad recording."""

import hashlib
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sigmf import SigMFFile
from sigmf.hashing import calculate_sha512
from sigmf.utils import parse_iso8601_datetime
from sigmf.validate import validate

from semcom.capture import (
    LIVE_TOLERANCE_DB,
    RecordingError,
    RecordingWriter,
    _PayloadTruths,
    decoded_frames,
    load_recording,
    payload_tensors,
    record_loopback,
    replay,
    replay_rows,
    write_recording,
)
from semcom.cli import main as cli_main
from semcom.errors import UsageError
from semcom.ofat.frame import DEFAULT_GAP_SAMPLES, make_layout
from semcom.ofat.receiver import FrameReceiver

# The regression fixture: `semcom record-loopback tests/fixtures/loopback_2x2` (12 frames, 2x2, 20 dB).
FIXTURE = Path(__file__).parent / "fixtures" / "loopback_2x2"
# Hand-written SigMF 1.0.0 metadata from before the sigmf package wrote it (recorded 2026-11-23 with the
# receiver of then): kept only to prove old metadata still loads; not a regression fixture.
LEGACY = Path(__file__).parent / "fixtures" / "legacy_sigmf_1_0_0"
RERECORD = ("the receiver no longer decodes the regression fixture as it was decoded live when recorded; if "
            "the change is intended, record it again: semcom record-loopback tests/fixtures/loopback_2x2")


def _noise(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_shipped_recording_replays_like_live():
    # The regression check: the receiver of today decodes the shipped recording as the receiver that
    # recorded it decoded it live (same seqs, NMSE within the replay's tolerance).
    rec = load_recording(FIXTURE)
    live = rec.meta["semcom:live_results"]
    assert [r["seq"] for r in live] == list(range(12))
    rows = replay(rec)
    assert [r["seq"] for r in rows] == [r["seq"] for r in live], RERECORD
    for got, was in zip(rows, live, strict=True):
        assert abs(got["nmse_db"] - was["nmse_db"]) <= LIVE_TOLERANCE_DB, RERECORD
    assert max(r["nmse_db"] for r in rows) < -9  # 20 dB, 2x2 MMSE: the payloads really came through


def test_legacy_sigmf_1_0_0_metadata_still_loads():
    # What this checks is the reader, not the receiver: metadata written by hand as SigMF 1.0.0 (before
    # the sigmf package wrote ours) passes validation and its sha512, and the 12 frames it holds decode.
    # Its live NMSEs came from the receiver of 2026-11-23 (integer delay grid); today's decodes it
    # differently (up to 0.49 dB), so they are not compared here: FIXTURE is the regression check.
    assert json.loads(LEGACY.with_suffix(".sigmf-meta").read_text())["global"]["core:version"] == "1.0.0"
    rec = load_recording(LEGACY)
    assert rec.n_samples == 16360 and rec.layout.n_tx == rec.layout.n_rx == 2
    assert rec.start_time == "2026-11-23T15:17:01.448505Z"
    rows = replay(rec)
    assert [r["seq"] for r in rows] == [r["seq"] for r in rec.meta["semcom:live_results"]] == list(range(12))
    assert all("nmse_db" in r for r in rows)  # semcom:payload read: every frame scored


def test_record_then_replay_round_trip(tmp_path):
    # What this checks is the recording, not the receiver: every sample the channel emitted is stored
    # (run_burst streams 4 x (frame + default gap) + 1000 samples), in channel order, bit exact, so
    # the replay decodes the frames the live receiver decoded, to the same NMSE (within float32 rounding:
    # ofat_rx decodes live with the compiled receiver where it is built, the replay with numpy's; 8e-6 dB
    # apart on the shipped fixture, where rounding both to 3 decimals could still differ).
    layout = make_layout("wifi64", n_tx=2, n_rx=2)
    live = record_loopback(tmp_path / "rec", n_frames=4, snr_db=25.0, seed=1, layout=layout)
    assert [r["seq"] for r in live] == [0, 1, 2, 3]
    rec = load_recording(tmp_path / "rec")
    assert rec.n_samples == 4 * (layout.frame_len(4 * 48) + DEFAULT_GAP_SAMPLES) + 1000
    rows = replay(rec)
    assert [r["seq"] for r in rows] == [0, 1, 2, 3]
    assert [r["nmse_db"] for r in rows] == pytest.approx([r["nmse_db"] for r in live], abs=1e-3)
    assert max(r["nmse_db"] for r in rows) < -10  # 25 dB, 2x2 MMSE: the payloads really came through


def _frames_equal(got, want) -> None:
    assert [f.header for f in got] == [f.header for f in want]
    assert [f.start for f in got] == [f.start for f in want]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.y, b.y, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(a.h, b.h, rtol=1e-6, atol=1e-7)
        assert a.noise_var == pytest.approx(b.noise_var, rel=1e-6)
        assert a.cfo == pytest.approx(b.cfo, rel=1e-6, abs=1e-12)


def test_chunked_replay_equals_whole_file_replay():
    rec = load_recording(FIXTURE)
    lay = rec.layout
    whole = FrameReceiver(lay).process(rec.read())
    assert len(whole) == 12
    # Explicit cuts: one where the Schmidl & Cox window ends half way along frame 3's plateau (the
    # plateau spans the preamble's cyclic prefix, so the metric's first fft_len + cp_len / 2 samples
    # are in the first chunk, the rest of the plateau in the next), one in the middle of frame 5.
    f3, f5 = whole[3].start, whole[5].start
    cuts = [0, f3 + lay.fft_len + lay.cp_len // 2, f5 + lay.frame_len(whole[5].header.n_values) // 2,
            rec.n_samples]
    rx = FrameReceiver(lay)
    cut_frames = [f for a, b in zip(cuts[:-1], cuts[1:], strict=True) for f in rx.process(rec.read(a, b - a))]
    _frames_equal(cut_frames, whole)
    # The streamed path itself, at chunk sizes that cut frames and plateaus everywhere.
    for chunk in (29, 97, 1000, 4096, 2**18):
        _frames_equal(list(decoded_frames(rec, chunk)), whole)


def test_replay_rows_do_not_depend_on_the_chunk():
    rec = load_recording(FIXTURE)
    assert list(replay_rows(rec, chunk_samples=333, progress=True)) == replay(rec)


def test_written_metadata_is_valid_sigmf_with_the_start_time(tmp_path):
    layout = make_layout("wifi64", n_tx=2, n_rx=2)
    before = datetime.now(UTC)
    writer = RecordingWriter(tmp_path / "r", layout, sample_rate=2e6, center_freq=2.45e9, hardware="test")
    after_start = datetime.now(UTC)
    time.sleep(0.01)  # the capture goes on: the end is later than the start
    writer.write(_noise((2, 1000)))
    writer.close()
    doc = json.loads((tmp_path / "r.sigmf-meta").read_text())
    validate(doc)  # the SigMF schema, as the sigmf package checks it
    SigMFFile(metadata=doc).validate()
    stamp = parse_iso8601_datetime(doc["captures"][0]["core:datetime"])
    assert before <= stamp <= after_start  # the start, not the time the file was closed
    assert load_recording(tmp_path / "r").start_time == doc["captures"][0]["core:datetime"]
    assert doc["captures"][0]["core:frequency"] == 2.45e9
    assert doc["global"]["core:num_channels"] == 2 and doc["global"]["core:hw"] == "test"


def test_a_base_name_with_dots_keeps_them(tmp_path):
    layout = make_layout("wifi64", n_tx=1, n_rx=1)
    write_recording(tmp_path / "rx_2.45GHz", _noise((1, 64)), layout=layout, sample_rate=1e6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rx_2.45GHz.sigmf-data", "rx_2.45GHz.sigmf-meta"]
    assert load_recording(tmp_path / "rx_2.45GHz.sigmf-meta").n_samples == 64


def test_chunked_hash_equals_hashlib_on_the_whole_file(tmp_path):
    layout = make_layout("wifi64", n_tx=1, n_rx=2)
    samples = _noise((2, 10_007), seed=1)
    with RecordingWriter(tmp_path / "h", layout, sample_rate=1e6) as writer:
        for a, b in zip([0, 1, 500, 4096, 9000], [1, 500, 4096, 9000, 10_007], strict=True):  # uneven chunks
            writer.write(samples[:, a:b])
    data = (tmp_path / "h.sigmf-data").read_bytes()
    assert len(data) == 2 * 10_007 * 8
    digest = json.loads((tmp_path / "h.sigmf-meta").read_text())["global"]["core:sha512"]
    assert digest == hashlib.sha512(data).hexdigest() == calculate_sha512(tmp_path / "h.sigmf-data")
    np.testing.assert_array_equal(load_recording(tmp_path / "h").read(), samples)


def test_write_recording_interleaves_channels(tmp_path):
    layout = make_layout("wifi64", n_tx=1, n_rx=3)
    samples = (np.arange(30) + 1j * np.arange(30)).astype(np.complex64).reshape(3, 10)
    write_recording(tmp_path / "x", samples, layout=layout, sample_rate=2e6, center_freq=2.4e9)
    rec = load_recording(tmp_path / "x")
    np.testing.assert_array_equal(rec.read(), samples)
    np.testing.assert_array_equal(rec.read(3, 4), samples[:, 3:7])
    np.testing.assert_array_equal(np.concatenate(list(rec.chunks(4)), axis=1), samples)
    assert [c.shape[1] for c in rec.chunks(4)] == [4, 4, 2]
    assert rec.sample_rate == 2e6
    raw = np.fromfile(tmp_path / "x.sigmf-data", dtype="<c8")
    assert raw[1] == samples[1, 0]  # interleaved: sample 0 of channel 0, 1, 2, then sample 1 ...


def test_payload_truths_any_order():
    payload = {"seed": 5, "shape": [3, 2], "first_seq": 2}
    truths, want = _PayloadTruths(payload, max_frames=6), payload_tensors(payload, 6)
    assert sorted(want) == [2, 3, 4, 5, 6, 7]
    for seq in (4, 7, 2, 6, 6, 3):  # forward, then back (regenerated from the seed)
        np.testing.assert_array_equal(truths.get(seq), want[seq])
    assert truths.get(1) is None  # before first_seq: no tensor
    assert truths.get(8) is None  # beyond max_frames (a seq from a header that passed its CRC by chance)
    assert truths.get(2**32 - 1) is None


# ---------------------------------------------------------------------------------- bad recordings
def _copy(tmp_path: Path) -> Path:
    for suffix in (".sigmf-meta", ".sigmf-data"):
        shutil.copy(FIXTURE.with_suffix(suffix), tmp_path / f"rec{suffix}")
    return tmp_path / "rec"


def _edit_meta(base: Path, edit) -> None:
    meta_path = base.with_suffix(".sigmf-meta")
    doc = json.loads(meta_path.read_text())
    edit(doc)
    meta_path.write_text(json.dumps(doc))


def test_truncated_recording_is_rejected(tmp_path):
    base = _copy(tmp_path)
    data = base.with_suffix(".sigmf-data")
    data.write_bytes(data.read_bytes()[:-12])
    with pytest.raises(RecordingError, match="truncated"):
        load_recording(base)
    with pytest.raises(RecordingError, match="truncated"):
        load_recording(base, verify_hash=False)


def test_altered_data_fails_the_hash(tmp_path):
    base = _copy(tmp_path)
    data = base.with_suffix(".sigmf-data")
    raw = bytearray(data.read_bytes())
    raw[1000] ^= 0x01  # one bit of one sample
    data.write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match="sha512 does not match"):
        load_recording(base)
    assert load_recording(base, verify_hash=False).n_samples == 16360  # the size is still right


@pytest.mark.parametrize("field,value,match", [
    ("core:num_channels", 3, "mislabelled"),
    ("core:datatype", "ci16_le", "datatype"),
    ("semcom:layout", {"fft_len": 48}, "layout"),
    ("core:sample_rate", "fast", "SigMF validation failed"),
    ("core:version", "2.0.0", "'2.0.0' is not SigMF 1.x"),
    ("core:trailing_bytes", 16, "non-conforming"),
])
def test_mislabelled_recording_is_rejected(tmp_path, field, value, match):
    base = _copy(tmp_path)
    _edit_meta(base, lambda doc: doc["global"].__setitem__(field, value))
    with pytest.raises(RecordingError, match=match):
        load_recording(base)


def test_missing_and_corrupt_files_are_clear_errors(tmp_path):
    with pytest.raises(RecordingError, match="no such SigMF metadata"):
        load_recording(tmp_path / "nothing")
    base = _copy(tmp_path)
    base.with_suffix(".sigmf-data").unlink()
    with pytest.raises(RecordingError, match="no such SigMF data file"):
        load_recording(base)
    base.with_suffix(".sigmf-meta").write_text("{ not json")
    with pytest.raises(RecordingError, match="not SigMF metadata"):
        load_recording(base)
    base.with_suffix(".sigmf-meta").write_text("[1, 2]")
    with pytest.raises(RecordingError, match="not SigMF metadata"):
        load_recording(base)


@pytest.mark.parametrize("damage", ["missing", "cut", "bad json", "version"])
def test_semcom_replay_bad_recording_one_line_exit_2(tmp_path, capsys, damage):
    base = _copy(tmp_path)
    if damage == "missing":
        base = tmp_path / "absent"
    elif damage == "cut":
        data = base.with_suffix(".sigmf-data")
        data.write_bytes(data.read_bytes()[:-8])
    elif damage == "bad json":
        base.with_suffix(".sigmf-meta").write_bytes(b"\x00\xff garbage")
    else:
        _edit_meta(base, lambda doc: doc["global"].__setitem__("core:version", "0.0.1"))
    assert issubclass(RecordingError, UsageError)
    assert cli_main(["replay", str(base)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("semcom: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_semcom_replay_of_the_fixture_matches_live(capsys):
    # The README's example: exit 0.
    assert cli_main(["replay", str(FIXTURE), "--chunk", "1000", "--no-progress"]) == 0, RERECORD
    out = capsys.readouterr().out
    assert "12 frames decoded" in out and "same sequence numbers: True" in out


def _shift_live(base: Path, seq: int, by_db: float) -> None:
    def edit(doc):
        doc["global"]["semcom:live_results"][seq]["nmse_db"] += by_db
    _edit_meta(base, edit)


def test_semcom_replay_exit_status_against_live(tmp_path, capsys):
    # Exit 1 when one frame's NMSE is further from live than the tolerance, 0 just inside it.
    base = _copy(tmp_path)
    _shift_live(base, 5, 0.8 * LIVE_TOLERANCE_DB)
    assert cli_main(["replay", str(base), "--no-progress"]) == 0
    _shift_live(base, 5, 0.4 * LIVE_TOLERANCE_DB)  # now 1.2x the tolerance away
    assert cli_main(["replay", str(base), "--no-progress"]) == 1
    assert "largest NMSE difference 0.120 dB" in capsys.readouterr().out
    # A frame live decoded that the replay does not: other sequence numbers, exit 1.
    base = _copy(tmp_path)
    _edit_meta(base, lambda doc: doc["global"]["semcom:live_results"].append({"seq": 12, "nmse_db": -15.0}))
    assert cli_main(["replay", str(base), "--no-progress"]) == 1
    assert "same sequence numbers: False" in capsys.readouterr().out


def test_semcom_replay_of_a_recording_with_no_frame_exits_1(tmp_path, capsys):
    # Noise only, no live results: nothing to compare against and nothing decoded is a failed replay
    # (e.g. a capture with the wrong layout), not exit 0.
    layout = make_layout("wifi64", n_tx=2, n_rx=2)
    write_recording(tmp_path / "noise", _noise((2, 20_000), seed=3), layout=layout, sample_rate=1e6)
    assert cli_main(["replay", str(tmp_path / "noise"), "--no-progress"]) == 1
    assert "no frame decoded" in capsys.readouterr().out


def test_semcom_replay_compares_nmse_only_with_the_live_method(capsys):
    # The live results are MMSE decodes; a ZF replay of the same frames is several dB off (7.2 dB here)
    # and is not a regression: the seqs are still compared, the NMSE is not.
    rows = {r["seq"]: r["nmse_db"] for r in replay(load_recording(FIXTURE), method="zf")}
    live = {r["seq"]: r["nmse_db"] for r in load_recording(FIXTURE).meta["semcom:live_results"]}
    assert max(abs(rows[s] - live[s]) for s in live) > LIVE_TOLERANCE_DB
    assert cli_main(["replay", str(FIXTURE), "--method", "zf", "--no-progress"]) == 0
    assert "NMSE not compared" in capsys.readouterr().out


def test_base_install_replays_without_tqdm_and_refuses_record_without_torch(monkeypatch, capsys):
    # The blocks' base install (numpy, pyzmq, sigmf) has neither tqdm nor torch.
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("tqdm", "torch") else real_find_spec(name, *a))
    rec = load_recording(FIXTURE)
    assert len(list(decoded_frames(rec, 4096, progress=True))) == 12  # no bar, same frames
    assert cli_main(["record-loopback", "/nonexistent/rec"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'gr-semcom[host]'" in err
