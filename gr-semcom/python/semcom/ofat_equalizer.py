#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""ofat_equalizer: received OFAT frames in, reconstructed tensors out (for users who stay in GRC)."""

from __future__ import annotations

import collections

import numpy as np
import pmt
from gnuradio import gr

from semcom.ofat.equalize import reconstruct_payload
from semcom.ofat.frame import OfatLayout

from .messages import parse_tensor_message, tensor_message


class ofat_equalizer(gr.basic_block):
    """ZF / MMSE / unbiased LMMSE / sparse reconstruction of each frame from `ofat_rx`, inside the flowgraph.

    Input message port "frames" (Y, H and meta from ofat_rx); output message port "values": the
    payload as float32 with its original shape under the name "values", and the frame's meta
    (seq, noise_var, snr_db, ...) passed on, plus meta["method"]. Same math as the host
    (semcom.ofat.equalize.reconstruct_payload), run on numpy. A malformed frame is logged and
    counted in counters(); the block keeps running.
    """

    def __init__(self, layout: OfatLayout, method: str = "mmse", max_sparsity: int = 0):
        gr.basic_block.__init__(self, name="semcom_ofat_equalizer", in_sig=None, out_sig=None)
        if method not in ("zf", "mmse", "lmmse", "sparse"):
            raise ValueError(f"method must be zf, mmse, lmmse or sparse, got {method!r}")
        # Real mode detects on the stacked real system: 2*Nr real equations (semcom.ofat.equalize).
        zf_rows = 2 * layout.n_rx if layout.mode == "real" else layout.n_rx
        if method == "zf" and zf_rows < layout.n_tx:
            raise ValueError("ZF needs n_rx >= n_tx (real mode: 2*n_rx >= n_tx); choose mmse or sparse")
        self.layout = layout
        self.method = method
        self.max_sparsity = int(max_sparsity) or None
        self._counters = collections.Counter()
        self._out = pmt.intern("values")
        self.message_port_register_in(pmt.intern("frames"))
        self.message_port_register_out(self._out)
        self.set_msg_handler(pmt.intern("frames"), self._on_frame)

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def set_method(self, method: str) -> None:
        self.method = method

    def _on_frame(self, msg) -> None:
        try:
            meta, tensors = parse_tensor_message(msg)
            values = reconstruct_payload(
                self.layout, tensors["H"], tensors["Y"], shape=meta["shape"], scale=meta["scale"],
                noise_var=meta["noise_var"], method=self.method, max_sparsity=self.max_sparsity,
                err_var=meta.get("err_var", 0.0))
        except (ValueError, KeyError, np.linalg.LinAlgError) as err:
            self._counters["errors"] += 1
            self.logger.error(f"frame not reconstructed: {err!r}")
            return
        self._counters["frames"] += 1
        out_meta = {**meta, "method": self.method}
        self.message_port_pub(self._out, tensor_message(out_meta, {"values": values.astype(np.float32)}))
