#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""ofat_tx: tensor messages in, Nt complex sample streams of OFAT frames out."""

from __future__ import annotations

import collections
import time

import numpy as np
import pmt
from gnuradio import gr

from semcom.ofat.frame import FrameError, OfatLayout, modulate_frame

from .messages import parse_tensor_message

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

    idle_fill=True (loopback, continuous hardware): while no frame is queued, zeros are emitted at a
    paced rate (`idle_chunk` samples every `idle_sleep_s`), so the channel and receiver keep running
    and the last frame is flushed; these idle zeros are outside any burst by design (continuous
    streaming). idle_fill=False (USRP bursts): nothing is produced while idle, and work() returns 0
    without sleeping: GNU Radio's scheduler then blocks the thread until the next message arrives.

    Rejected tensors (too many values for one frame, NaN/Inf, shape not representable, bad seq,
    not exactly one tensor) and frames dropped because `max_queue` frames are already waiting are
    logged and counted in `counters()`; the block keeps running.
    """

    def __init__(self, layout: OfatLayout, gap_samples: int = 160, idle_fill: bool = True,
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
        self._queue: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._current: np.ndarray | None = None  # (Nt, frame_len + gap) of the frame being sent
        self._current_seq = 0
        self._pos = 0
        self._counters = collections.Counter()
        self.message_port_register_in(pmt.intern("tensors"))
        self.set_msg_handler(pmt.intern("tensors"), self._on_tensor)

    # ------------------------------------------------------------------ messages
    def counters(self) -> dict[str, int]:
        """frames_queued, frames_sent, dropped_backpressure and one `rejected_<reason>` per error."""
        return dict(self._counters)

    def _reject(self, reason: str, detail: str) -> None:
        self._counters[f"rejected_{reason}"] += 1
        self.logger.error(f"tensor rejected ({reason}): {detail}")

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
        if not isinstance(seq, int) or not 0 <= seq <= 0xFFFFFFFF:
            self._reject("bad_seq", f"meta['seq'] must be an integer in [0, 2^32), got {seq!r}")
            return
        if not (np.issubdtype(tensor.dtype, np.floating) or np.issubdtype(tensor.dtype, np.integer)):
            self._reject("bad_dtype", f"tensor {name!r} has dtype {tensor.dtype}; OFAT carries real values")
            return
        if tensor.size > self.layout.capacity:
            self._reject("oversize", f"seq {seq}: tensor {name!r} has {tensor.size} values, one frame "
                                     f"carries at most {self.layout.capacity} ({self.layout.describe()})")
            return
        values = tensor.astype(np.float64, copy=False)
        if not np.all(np.isfinite(values)):
            self._reject("nonfinite", f"seq {seq}: tensor {name!r} contains NaN or Inf")
            return
        try:
            # The gap is written by modulate_frame itself (one buffer per frame, no second copy).
            padded, _ = modulate_frame(self.layout, values, seq=seq, shape=tensor.shape, pad=self.gap_samples)
        except FrameError as err:
            self._reject("frame", f"seq {seq}: {err}")
            return
        if len(self._queue) >= self.max_queue:
            self._counters["dropped_backpressure"] += 1
            self.logger.warn(f"seq {seq} dropped: {self.max_queue} frames already queued")
            return
        self._queue.append((seq, padded))
        self._counters["frames_queued"] += 1

    # ------------------------------------------------------------------ stream
    def work(self, input_items, output_items):
        n_out = len(output_items[0])
        written = 0
        base = self.nitems_written(0)
        # One pass per frame (never per sample): copy whole slices of queued frames.
        while written < n_out:
            if self._current is None:
                if not self._queue:
                    break
                self._current_seq, self._current = self._queue.popleft()
                self._pos = 0
            frame = self._current
            take = min(n_out - written, frame.shape[1] - self._pos)
            for port in range(self.layout.n_tx):
                output_items[port][written: written + take] = frame[port, self._pos: self._pos + take]
            if self._pos == 0:
                self._tag_all(base + written, TX_SOB, pmt.PMT_T)
                self._tag_all(base + written, SEQ_TAG, pmt.from_uint64(self._current_seq))
            last = frame.shape[1] - 1  # EOB after the gap: the burst is frame + gap, closed
            if self._pos <= last < self._pos + take:
                self._tag_all(base + written + last - self._pos, TX_EOB, pmt.PMT_T)
            self._pos += take
            written += take
            if self._pos >= frame.shape[1]:
                self._current = None
                self._counters["frames_sent"] += 1
        if written == 0:
            if not self.idle_fill:
                # Burst mode: produce nothing; the scheduler sleeps until a message comes in.
                return 0
            # Continuous mode: pace the idle zeros (messages are handled between work calls).
            time.sleep(self.idle_sleep_s)
            written = min(n_out, self.idle_chunk)
            for port in range(self.layout.n_tx):
                output_items[port][:written] = 0
        return written

    def _tag_all(self, offset: int, key, value) -> None:
        for port in range(self.layout.n_tx):
            self.add_item_tag(port, offset, key, value)
