#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""link_probe: test traffic for a flowgraph with no host process, and live link statistics.

Sends one known tensor (standard normal, seeded) as a tensor message every `period_ms` on "tensors"
(into ofat_tx), with seq 0, 1, 2, ...; takes what comes back on "values" (from ofat_equalizer) and
keeps, over the last `window` delivered frames, the NMSE against what was sent and ofat_rx's SNR
and CFO estimates; a frame not back within `timeout_s` counts as lost, so sent = delivered + lost + in flight.
"scatter" publishes, per delivered frame, a PDU of complex64 points sent + 1j * received (a perfect
link draws the diagonal) for a QT GUI constellation sink through PDU To Tagged Stream.

The getters (`nmse_db`, `snr_estimate_db`, `cfo_estimate`, `status`, `stats`) are what QT GUI
Function Probes poll.
"""

from __future__ import annotations

import collections
import math
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from .messages import MessageError, parse_tensor_message, tensor_message


class link_probe(gr.basic_block):
    """Message ports: out "tensors", in "values", out "scatter" (PDUs, complex64). No stream ports."""

    def __init__(self, shape: tuple[int, ...] = (8, 32), period_ms: float = 100.0, seed: int = 0,
                 window: int = 50, timeout_s: float = 2.0):
        gr.basic_block.__init__(self, name="semcom_link_probe", in_sig=None, out_sig=None)
        if float(period_ms) <= 0 or int(window) < 1 or float(timeout_s) <= 0:
            raise ValueError(f"period_ms and timeout_s must be > 0 and window >= 1, got {period_ms}, "
                             f"{timeout_s}, {window}")
        self.reference = np.random.default_rng(int(seed)).standard_normal(tuple(shape)).astype(np.float32)
        self.period_s = float(period_ms) / 1000.0
        self.timeout_s = float(timeout_s)
        self._lock = threading.Lock()
        self._pending: dict[int, float] = {}  # seq -> time sent
        # (NMSE, SNR estimate dB, CFO estimate cycles/sample) of the last `window` delivered frames
        self._recent: collections.deque[tuple[float, float, float]] = collections.deque(maxlen=int(window))
        self._counters = collections.Counter()
        self._next_seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tensors, self._scatter = pmt.intern("tensors"), pmt.intern("scatter")
        self.message_port_register_out(self._tensors)
        self.message_port_register_out(self._scatter)
        self.message_port_register_in(pmt.intern("values"))
        self.set_msg_handler(pmt.intern("values"), self._on_values)

    # ------------------------------------------------------------------ traffic
    def start(self) -> bool:
        self._stop.clear()
        self._thread = threading.Thread(target=self._send_loop, name="semcom_link_probe", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> bool:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return True

    def settle(self) -> dict[str, float]:
        """After stop(): wait until no frame is in flight (each comes back or times out as lost within
        timeout_s), then the stats. A fixed sleep instead would leave slow frames in flight on a
        loaded machine."""
        end = time.monotonic() + self.timeout_s + 0.1
        while True:
            stats = self.stats()
            if stats["in_flight"] == 0 or time.monotonic() > end:
                return stats
            time.sleep(0.02)

    def _send_loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self.send_one()

    def send_one(self) -> int:
        """Publish the reference tensor with the next seq (the sender thread calls this); returns seq."""
        with self._lock:
            seq = self._next_seq
            self._next_seq = (seq + 1) % 2**32
            self._pending[seq] = time.monotonic()
            self._counters["sent"] += 1
            self._expire()
        self.message_port_pub(self._tensors, tensor_message({"seq": seq}, {"x": self.reference}))
        return seq

    def _expire(self) -> None:
        """Frames older than timeout_s count as lost (caller holds the lock)."""
        deadline = time.monotonic() - self.timeout_s
        for seq in [s for s, t in self._pending.items() if t < deadline]:
            del self._pending[seq]
            self._counters["lost"] += 1

    # ------------------------------------------------------------------ what comes back
    def _on_values(self, msg) -> None:
        try:
            meta, tensors = parse_tensor_message(msg)
            values = np.asarray(tensors["values"], dtype=np.float32).reshape(self.reference.shape)
            seq = int(meta["seq"])
        except (MessageError, KeyError, ValueError, TypeError) as err:
            self._count("malformed")
            self.logger.error(f"values message not understood: {err!r}")
            return
        with self._lock:
            if self._pending.pop(seq, None) is None:  # late (already counted lost) or not ours
                self._counters["unexpected"] += 1
                return
            self._counters["delivered"] += 1
            err = float(np.sum((values - self.reference) ** 2) / np.sum(self.reference**2))
            self._recent.append((err, float(meta.get("snr_db", math.nan)), float(meta.get("cfo", math.nan))))
        points = (self.reference.ravel() + 1j * values.ravel()).astype(np.complex64)
        pdu = pmt.cons(pmt.make_dict(), pmt.init_c32vector(len(points), points))
        self.message_port_pub(self._scatter, pdu)

    def _count(self, key: str) -> None:
        with self._lock:
            self._counters[key] += 1

    # ------------------------------------------------------------------ getters for the GUI
    def stats(self) -> dict[str, float]:
        """sent, delivered, lost, in_flight, unexpected, malformed; over the window (NaN before the
        first delivered frame): nmse_db, snr_estimate_db and cfo_estimate (cycles/sample, ofat_rx's)."""
        with self._lock:
            self._expire()
            recent = list(self._recent)
            out: dict[str, float] = {k: self._counters[k] for k in ("sent", "delivered", "lost", "unexpected",
                                                                      "malformed")}
            out["in_flight"] = len(self._pending)
        errs = np.array([e for e, _, _ in recent])
        snrs = np.array([s for _, s, _ in recent if math.isfinite(s)])
        cfos = np.array([c for _, _, c in recent if math.isfinite(c)])
        # Mean per-frame NMSE (linear, then dB); the SNR estimates averaged in linear power too.
        out["nmse_db"] = float(10 * np.log10(errs.mean())) if errs.size else math.nan
        out["snr_estimate_db"] = float(10 * np.log10(np.mean(10 ** (snrs / 10)))) if snrs.size else math.nan
        out["cfo_estimate"] = float(np.mean(cfos)) if cfos.size else math.nan
        return out

    def nmse_db(self) -> float:
        return self.stats()["nmse_db"]

    def snr_estimate_db(self) -> float:
        return self.stats()["snr_estimate_db"]

    def cfo_estimate(self) -> float:
        return self.stats()["cfo_estimate"]

    def status(self) -> str:
        s = self.stats()
        return (f"sent {s['sent']:.0f} | delivered {s['delivered']:.0f} | lost {s['lost']:.0f} | "
                f"in flight {s['in_flight']:.0f}")
