#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""ofat_tx: tensor messages in, Nt complex sample streams of OFAT frames out."""

from __future__ import annotations

import collections
import importlib.util
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pmt
from gnuradio import gr

from semcom.ofat.frame import (
    DEFAULT_GAP_SAMPLES,
    FrameError,
    FrameHeader,
    OfatLayout,
    _tx_template,
    frame_header,
    modulate_frames,
)

from .messages import parse_tensor_message


def _checkout_build_dir() -> Path:
    """Where scripts/setup.sh builds the compiled blocks in this file's own checkout (<checkout>/build,
    or $SEMCOM_BUILD_DIR relative to it, as scripts/test.sh names it)."""
    parents = Path(__file__).resolve().parents  # <checkout>/gr-semcom/python/semcom/ofat_tx.py
    root = parents[min(3, len(parents) - 1)]
    return root / os.environ.get("SEMCOM_BUILD_DIR", "build") / "gr-semcom" / "python" / "semcom" / "bindings"


def _load_compiled():
    """The compiled blocks' module (semcom_python): beside this file when installed (cmake --install,
    ctest's package copy), else from this checkout's build tree; None when neither has it (a wheel, a
    checkout never built: the Python ofat_tx alone) or when it does not load (warned, never raised, so
    `from gnuradio import semcom` keeps working)."""
    try:
        from . import semcom_python
        return semcom_python
    except ImportError:
        pass
    build = _checkout_build_dir()
    found = sorted(build.glob("semcom_python*.so")) if build.is_dir() else []
    if not found:
        return None
    for module in list(sys.modules.values()):  # loaded already (the package imported under two names,
        if getattr(module, "__file__", None) == str(found[0]):  # as pytest's importlib mode does)
            return module
    name = f"{__package__}.semcom_python"
    try:
        spec = importlib.util.spec_from_file_location(name, found[0])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ImportError as err:
        warnings.warn(f"gnuradio.semcom: the compiled blocks in {found[0]} do not load ({err}); "
                      "rebuild them (scripts/setup.sh). Using the Python ofat_tx.", stacklevel=2)
        return None
    sys.modules[name] = module
    return module


semcom_python = _load_compiled()


def use_compiled(implementation: str, env_var: str, built: bool, fallback: str, what: str) -> bool:
    """Whether a block with a compiled and a Python (or numpy) implementation is made compiled, the one
    rule of every such block (ofat_tx, ofat_rx, mimo_channel, tensor_source / tensor_sink):
    `implementation` is "auto" (compiled where `built`; the environment variable `env_var`, auto / cxx /
    `fallback`, overrides "auto", e.g. to run a whole flowgraph or test suite through the Python path),
    "cxx" (RuntimeError naming `what` where not built) or `fallback` (never compiled); else ValueError."""
    choices = ("auto", "cxx", fallback)
    if implementation == "auto":
        implementation = os.environ.get(env_var, "auto")
    if implementation not in choices:
        raise ValueError(f"implementation must be one of {choices}, got {implementation!r}")
    if implementation == "cxx" and not built:
        raise RuntimeError(f"gnuradio.semcom was not built with {what} (run scripts/setup.sh, or "
                           f"cmake --build build): use implementation={fallback!r}")
    return implementation == "cxx" or (implementation == "auto" and built)

TX_SOB = pmt.intern("tx_sob")
TX_EOB = pmt.intern("tx_eob")
SEQ_TAG = pmt.intern("semcom_seq")


class ofat_tx(gr.sync_block):
    """Modulates each tensor message into one OFAT frame on `layout.n_tx` outputs.

    Input: message port "tensors" (one tensor per message, meta["seq"] = the frame's sequence
    number, < 2^32). Output: n_tx complex64 streams. Each frame is followed by `gap_samples` zeros
    (room for channel delay spread and timing offset); the frame's first sample carries the tags
    tx_sob and semcom_seq, the last sample of its gap tx_eob, so `uhd.usrp_sink` sends frame + gap
    as one closed burst: every sample this block emits in burst mode lies between a tx_sob and its
    tx_eob (zeros outside a burst would reach the radio as a stream with no burst to belong to).

    idle_fill=True (loopback, continuous hardware): once no frame has been queued for `idle_sleep_s`,
    `idle_chunk` zeros are emitted, and again every `idle_sleep_s` while none comes, so the channel and
    receiver keep running and the last frame is flushed; these idle zeros are outside any burst by
    design (continuous streaming). Meanwhile work() returns 0 and GNU Radio's scheduler waits for the
    next message or its input timer (set to idle_sleep_s), so a tensor that arrives is modulated at
    once (a sleep in work() held the message handler up to idle_sleep_s) and a loaded loopback, whose
    queue runs dry for less than idle_sleep_s at a time, sends no idle zeros through the channel and
    receiver. idle_fill=False (USRP bursts): nothing is produced while idle, and work() returns 0
    without sleeping: GNU Radio's scheduler then blocks the thread until the next message arrives.

    Rejected tensors (too many values for one frame, NaN/Inf, shape not representable, bad seq,
    not exactly one tensor) and frames dropped because `max_queue` frames are already waiting are
    logged and counted in `counters()`; the block keeps running.

    Speed: the message handler only checks a tensor and makes its header (`frame.frame_header`);
    work() modulates every frame waiting (up to MAX_BATCH) in one `frame.modulate_frames` call into a
    buffer the block reuses, and copies whole slices of it per port (tags per frame).
    """

    def __init__(self, layout: OfatLayout, gap_samples: int = DEFAULT_GAP_SAMPLES, idle_fill: bool = True,
                 idle_chunk: int = 1024, idle_sleep_s: float = 0.002, max_queue: int = 64):
        gr.sync_block.__init__(self, name="semcom_ofat_tx", in_sig=None,
                               out_sig=[np.complex64] * layout.n_tx)
        self.layout = layout
        if int(gap_samples) < 0:
            raise ValueError(f"gap_samples must be >= 0, got {gap_samples}")
        self.gap_samples = int(gap_samples)
        self.idle_fill = bool(idle_fill)
        self.idle_chunk = int(idle_chunk)
        self.idle_sleep_s = float(idle_sleep_s)
        self.max_queue = int(max_queue)
        # Accepted frames wait here, checked and with their header, until work() needs samples: then
        # up to MAX_BATCH of them are modulated in one batched call (frame.modulate_frames).
        self._pending: collections.deque[tuple[np.ndarray, FrameHeader]] = collections.deque()
        self._samples = np.zeros((layout.n_tx, 0), np.complex64)  # modulated frames + gaps, back to back
        self._buffer = self._samples  # reused under self._samples (a fresh array page-faults each batch)
        self._pos = 0  # next sample of self._samples to write
        self._starts = np.zeros(0, np.int64)  # each frame's first and last (end of gap) sample in it
        self._lasts = np.zeros(0, np.int64)
        self._seqs: list[int] = []
        self._next_sob = 0  # the first frame whose start is not written yet
        self._next_eob = 0  # the first frame whose last sample is not written yet
        self._counters = collections.Counter()
        self._idle_since: float | None = None  # when the queue ran dry, or the last idle chunk went out
        if self.idle_fill and self.idle_sleep_s > 0:  # an idle work() returns 0: see work()
            self.gateway.set_blkd_input_timer_value(max(1, math.ceil(self.idle_sleep_s * 1e3)))
        self.message_port_register_in(pmt.intern("tensors"))
        self.set_msg_handler(pmt.intern("tensors"), self._on_tensor)

    MAX_BATCH = 64  # frames modulated per call: large enough to amortise numpy's per-call cost

    # ------------------------------------------------------------------ messages
    def counters(self) -> dict[str, int]:
        """frames_queued, frames_sent, dropped_backpressure and one `rejected_<reason>` per error."""
        return dict(self._counters)

    def _reject(self, reason: str, detail: str) -> None:
        self._counters[f"rejected_{reason}"] += 1
        self.logger.error(f"tensor rejected ({reason}): {detail}")

    def queued(self) -> int:
        """Frames accepted whose first sample has not been written yet (what `max_queue` bounds)."""
        return len(self._pending) + len(self._seqs) - self._next_sob

    def _on_tensor(self, msg) -> None:
        try:
            meta, tensors = parse_tensor_message(msg)
        except ValueError as err:
            self._reject("malformed", str(err))
            return
        if len(tensors) != 1:
            self._reject("tensor_count", f"one tensor per frame, got {len(tensors)} ({sorted(tensors)})")
            return
        (name, tensor), = tensors.items()
        seq = meta.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= 0xFFFFFFFF:
            self._reject("bad_seq", f"meta['seq'] must be an integer in [0, 2^32), got {seq!r}")
            return
        if tensor.dtype.kind not in "fiu":  # floats and integers (bool and complex are not real values)
            self._reject("bad_dtype", f"tensor {name!r} has dtype {tensor.dtype}; OFAT carries real values")
            return
        if tensor.size > self.layout.capacity:
            self._reject("oversize", f"seq {seq}: tensor {name!r} has {tensor.size} values, one frame "
                                     f"carries at most {self.layout.capacity} ({self.layout.describe()})")
            return
        values = tensor.astype(np.float64, copy=False)
        try:
            header = frame_header(self.layout, values, seq=seq, shape=tensor.shape)
        except FrameError as err:
            # NaN/Inf make the power scale fail too; tested only then (it is a pass over every value).
            if not np.all(np.isfinite(values)):
                self._reject("nonfinite", f"seq {seq}: tensor {name!r} contains NaN or Inf")
            else:
                self._reject("frame", f"seq {seq}: {err}")
            return
        if self.queued() >= self.max_queue:
            self._counters["dropped_backpressure"] += 1
            self.logger.warn(f"seq {seq} dropped: {self.max_queue} frames already queued")
            return
        self._pending.append((values, header))
        self._counters["frames_queued"] += 1

    def _modulate_pending(self) -> None:
        """The next batch of pending frames (each followed by its gap) becomes self._samples."""
        batch = [self._pending.popleft() for _ in range(min(len(self._pending), self.MAX_BATCH))]
        headers = [header for _, header in batch]
        lengths = np.array([self.layout.frame_len(h.n_values) + self.gap_samples for h in headers], np.int64)
        if self._buffer.shape[1] < lengths.sum():
            self._buffer = np.empty((self.layout.n_tx, int(lengths.sum())), np.complex64)
        self._samples = modulate_frames(self.layout, [values for values, _ in batch], headers,
                                        pad=self.gap_samples, out=self._buffer)
        self._lasts = np.cumsum(lengths) - 1  # EOB after the gap: the burst is frame + gap, closed
        self._starts = self._lasts - lengths + 1
        self._seqs = [h.seq for h in headers]
        self._pos = self._next_sob = self._next_eob = 0

    # ------------------------------------------------------------------ stream
    def work(self, input_items, output_items):
        n_out = len(output_items[0])
        written = 0
        base = self.nitems_written(0)
        # Whole slices of the modulated batch per port (never per sample, nor per frame); tags per frame.
        while written < n_out:
            if self._pos >= self._samples.shape[1]:
                if not self._pending:
                    break
                self._modulate_pending()
            take = min(n_out - written, self._samples.shape[1] - self._pos)
            for port in range(self.layout.n_tx):
                output_items[port][written: written + take] = self._samples[port, self._pos: self._pos + take]
            offset = base + written - self._pos  # stream position of self._samples[0]
            end = self._pos + take
            while self._next_sob < len(self._seqs) and self._starts[self._next_sob] < end:
                at = offset + int(self._starts[self._next_sob])
                self._tag_all(at, TX_SOB, pmt.PMT_T)
                self._tag_all(at, SEQ_TAG, pmt.from_uint64(self._seqs[self._next_sob]))
                self._next_sob += 1
            while self._next_eob < len(self._seqs) and self._lasts[self._next_eob] < end:
                self._tag_all(offset + int(self._lasts[self._next_eob]), TX_EOB, pmt.PMT_T)
                self._next_eob += 1
                self._counters["frames_sent"] += 1
            self._pos = end
            written += take
        if written:
            self._idle_since = None
            return written
        if not self.idle_fill:
            # Burst mode: produce nothing; the scheduler sleeps until a message comes in.
            return 0
        # Continuous mode: idle_chunk zeros once no frame came for idle_sleep_s, then every
        # idle_sleep_s. Until then return 0: the scheduler handles a message at once, or calls again
        # when its input timer (idle_sleep_s) runs out.
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < self.idle_sleep_s:
            return 0
        self._idle_since = now
        written = min(n_out, self.idle_chunk)
        for port in range(self.layout.n_tx):
            output_items[port][:written] = 0
        return written

    def _tag_all(self, offset: int, key, value) -> None:
        for port in range(self.layout.n_tx):
            self.add_item_tag(port, offset, key, value)


def ofat_tx_fast(layout: OfatLayout, gap_samples: int = DEFAULT_GAP_SAMPLES, idle_fill: bool = True,
                 idle_chunk: int = 1024, idle_sleep_s: float = 0.002, max_queue: int = 64):
    """ofat_tx's compiled core (C++, gr-semcom/lib/ofat_tx_fast_impl.cc): the same message port, samples,
    tags, counters() and queued(), at GNU Radio C++ speed. Its arithmetic is modulate_frames' in float64
    (an FFTW double-precision IFFT for numpy's), each sample rounded to complex64 once: 98.9-99.99 % of
    the samples equal ofat_tx's bit for bit (200 5x256 frames, Nt = 4 / 1), the others are samples near
    zero whose float64 residuals differ, by at most 3e-16 on a unit-power signal
    (tests/test_ofat_tx_fast.py).

    Everything the layout defines is computed here, by semcom.ofat.frame, and handed to the C++
    constructor as arrays (the sync samples, the pilot grid, the data bins and CDD phases, the header
    scrambler and filler, the clip level): the C++ side computes only what changes per frame (power
    scale, header bits and CRC, grid, IFFT, cyclic prefix, clipping). Raises RuntimeError when the
    compiled module was not built (scripts/setup.sh builds it; a wheel has the Python ofat_tx alone).
    """
    if semcom_python is None:
        raise RuntimeError("gnuradio.semcom was not built with its compiled blocks (run scripts/setup.sh, "
                           "or cmake --build build): use ofat_tx")
    if int(gap_samples) < 0:
        raise ValueError(f"gap_samples must be >= 0, got {gap_samples}")
    tpl = _tx_template(layout)
    clip_level = 0.0
    if layout.clip_ratio_db:
        from semcom.ofat.papr import clip_level as level_of
        from semcom.ofat.papr import layout_rms

        clip_level = level_of(layout.clip_ratio_db, layout_rms(layout))
    return semcom_python.ofat_tx_fast(
        n_tx=layout.n_tx, fft_len=layout.fft_len, cp_len=layout.cp_len,
        values_per_element=layout.values_per_element, n_header_symbols=layout.n_header_symbols,
        header_reps=layout.header_reps, max_data_symbols=layout.max_data_symbols,
        data_bins=layout.data_bins.tolist(),
        sync_samples=tpl.sync_samples.astype(np.complex64).ravel().tolist(),
        pilot_grid=tpl.grid.ravel().tolist(), cdd_data=tpl.cdd_data.ravel().tolist(),
        header_scrambler=layout.header_scrambler.tolist(), header_filler=layout.header_filler.tolist(),
        clip_level=float(clip_level), gap_samples=int(gap_samples), idle_fill=bool(idle_fill),
        idle_chunk=int(idle_chunk), idle_sleep_s=float(idle_sleep_s), max_queue=int(max_queue))


def make_ofat_tx(layout: OfatLayout, gap_samples: int = DEFAULT_GAP_SAMPLES, idle_fill: bool = True,
                 idle_chunk: int = 1024, idle_sleep_s: float = 0.002, max_queue: int = 64,
                 implementation: str = "auto"):
    """The OFAT Transmitter as GRC makes it (semcom_ofat_tx.block.yml): `ofat_tx_fast`, the compiled core,
    where it was built, else the Python `ofat_tx` ("auto", the default: the same samples, tags and
    counters, 1.4-1.8x GNU Radio's C++ OFDM TX chain per stream against 0.2-0.4x, benchmarks/results/
    summary.md). "cxx" requires the compiled core, "python" always takes the Python block. The
    environment variable SEMCOM_OFAT_TX (auto / cxx / python) overrides "auto", e.g. to run a whole
    flowgraph or test suite through the Python block for comparison."""
    options = dict(gap_samples=gap_samples, idle_fill=idle_fill, idle_chunk=idle_chunk,
                   idle_sleep_s=idle_sleep_s, max_queue=max_queue)
    if use_compiled(implementation, "SEMCOM_OFAT_TX", semcom_python is not None, "python", "ofat_tx_fast"):
        return ofat_tx_fast(layout, **options)
    return ofat_tx(layout, **options)
