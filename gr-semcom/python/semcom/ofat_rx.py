#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""ofat_rx: Nr complex sample streams in, one message per decoded OFAT frame out."""

from __future__ import annotations

import dataclasses

import numpy as np
import pmt
from gnuradio import gr

from semcom.ofat.frame import OfatLayout
from semcom.ofat.receiver import FrameReceiver, ReceivedFrame, RxCounters

from .compiled_receiver import CompiledFrameReceiver, compiled_receiver_available
from .messages import wire_message
from .ofat_tx import semcom_python, use_compiled

COUNTER_NAMES = [f.name for f in dataclasses.fields(RxCounters)]


def receiver_class(implementation: str = "auto") -> type[FrameReceiver]:
    """The receiver ofat_rx runs: "auto" (the default) the compiled CompiledFrameReceiver where
    gr-semcom's C++ was built, else the numpy FrameReceiver (the same frames, values equal within
    float32 rounding, tested); "cxx" requires the compiled one, "numpy" always takes FrameReceiver.
    The environment variable SEMCOM_OFAT_RX (auto / cxx / numpy) overrides "auto"."""
    if use_compiled(implementation, "SEMCOM_OFAT_RX", compiled_receiver_available(), "numpy",
                    "its compiled receiver"):
        return CompiledFrameReceiver
    return FrameReceiver


class ofat_rx(gr.hier_block2):
    """Detects, synchronises and demodulates OFAT frames on `layout.n_rx` inputs.

    Output: message port "frames", one tensor message per frame whose header CRC passed, in the wire
    form (messages.wire_message: the FRAME's wire bytes; parse_tensor_message reads it like any other):
    tensors Y (K, Nr, S) complex64, the received data grid after CFO and phase correction, and
    H (K, Nr, Nt) complex64, the channel estimate on the data subcarriers; meta: seq, shape,
    n_values, scale, noise_var, snr_db, cfo (cycles/sample), timing (absolute sample index of the
    frame start), sync_metric, sfo_ppm (the sampling-clock offset estimate, with sfo_tracking) and
    rx_counters (detections, frames, header_crc_fail, header_invalid, sequence_mismatch,
    samples so far). See semcom.ofat.receiver for the DSP (FrameReceiver, the fast path of
    ReferenceFrameReceiver). implementation (`receiver_class`): "auto" runs CompiledFrameReceiver
    (gnuradio.semcom.compiled_receiver: FrameReceiver with its per-sample and hot per-frame methods in
    C++, every option covered) where the C++ was built, else FrameReceiver; "numpy" forces FrameReceiver.

    The block inside (`core`): with the compiled receiver in its default configuration (no sfo_tracking,
    dc_removal, iq_correction; noise_estimate="repetitions") `ofat_rx_fast`, a C++ sync block running
    the receiver's configured kernels and publishing the FRAME messages itself (the same messages,
    tested; no Python per work() call); otherwise `ofat_rx_python`, the Python block around `receiver`.
    With ofat_rx_fast, a frame whose meta holds a non-finite value (JSON cannot) is not sent and is
    counted frames_unsendable in `counters()` (the Python block hands it on in the PMT dict form, which
    tensor_sink cannot send either and counts). `receiver` is then the core's configuration: its kernels
    (buffer, search state) are the core's, so it is not to be fed while the flowgraph runs, and its
    `counters` stay at zero (`counters()` reads the core's).

    Frames split across work() calls are kept; a frame whose header fails its CRC is counted, not sent.
    """

    def __init__(self, layout: OfatLayout, threshold: float = 0.2, phase_tracking: str = "linear",
                 sfo_tracking: bool = False, dc_removal: bool = False, iq_correction: bool = False,
                 noise_estimate: str = "repetitions", implementation: str = "auto"):
        # sfo_tracking: estimate a sampling-clock offset from the pilots and remove its phase ramp;
        # dc_removal: subtract a running mean per antenna first (a DC spur would trip detection);
        # iq_correction: undo a receive IQ imbalance blindly (semcom.ofat.receiver, step 0);
        # noise_estimate: "fit_residual" counts other links' interference (semcom.ofat.receiver, step 4).
        gr.hier_block2.__init__(self, "semcom_ofat_rx",
                                gr.io_signature(layout.n_rx, layout.n_rx, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        self.layout = layout
        self.receiver = receiver_class(implementation)(
            layout, threshold=threshold, phase_tracking=phase_tracking, sfo_tracking=bool(sfo_tracking),
            dc_removal=bool(dc_removal), iq_correction=bool(iq_correction), noise_estimate=noise_estimate)
        if getattr(self.receiver, "_messages", False) and hasattr(semcom_python, "ofat_rx_fast"):
            self.core = semcom_python.ofat_rx_fast(self.receiver._kernels)
        else:
            self.core = ofat_rx_python(self.receiver)
        self.message_port_register_hier_out("frames")
        for r in range(layout.n_rx):
            self.connect((self, r), (self.core, r))
        self.msg_connect(self.core, "frames", self, "frames")

    def counters(self) -> dict[str, int]:
        """RxCounters' fields (ofat_rx_fast: and frames_unsendable)."""
        if isinstance(self.core, ofat_rx_python):
            return self.receiver.counters.as_dict()
        return dict(zip([*COUNTER_NAMES, "frames_unsendable"], self.core.counters(), strict=True))


class ofat_rx_python(gr.sync_block):
    """ofat_rx's Python block: `receiver.process` (or the compiled receiver's process_messages) on the
    Nr input buffers, one message per frame on port "frames"."""

    def __init__(self, receiver: FrameReceiver):
        gr.sync_block.__init__(self, name="semcom_ofat_rx", in_sig=[np.complex64] * receiver.layout.n_rx,
                               out_sig=None)
        self.receiver = receiver
        self._receive = getattr(receiver, "process_messages", receiver.process)
        self._port = pmt.intern("frames")
        self.message_port_register_out(self._port)

    def work(self, input_items, output_items):
        n = len(input_items[0])
        # The Nr input buffers go straight into the receiver's buffer (no stacked copy first). The compiled
        # receiver builds the messages itself (process_messages); a ReceivedFrame gets its message here.
        for item in self._receive(input_items):
            if isinstance(item, ReceivedFrame):
                item = frame_message(item, self.receiver.counters)
            self.message_port_pub(self._port, item)
        return n


def frame_message(frame: ReceivedFrame, counters: RxCounters) -> pmt.pmt_base:
    """The FRAME message ofat_rx publishes for a decoded frame: its meta with the receiver's counters and
    tensors Y, H, encoded for the wire here, once (tensor_sink forwards the bytes; messages.wire_message)."""
    meta = frame.meta()
    meta["rx_counters"] = vars(counters).copy()  # asdict() costs 4 us a frame
    return wire_message(meta["seq"], meta, {"Y": frame.y, "H": frame.h})
