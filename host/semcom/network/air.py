"""The N OFAT links of ``flowgraphs/network_loopback_<N>.grc`` sharing the air, driven from the host: the
shared part of ``semcom network live`` (policies set the channel) and ``semcom network linktable`` (a
controlled SINR sweep sets it).

``SharedAir`` starts the flowgraph (link k on sequence_id k, fit-residual receivers, full-buffer
interferers with their own oscillator offsets), posts the interference channel's gains and noise per slot
on its ``control`` port, sends one frame per link and returns every frame delivered (reconstructed by ZF,
with the receiver's SNR estimate) or counts it lost. A frame is counted lost when its receiver has
consumed every sample of it and of its gap without delivering it (plus ``grace_s`` for the ZeroMQ hop),
or after ``timeout_s`` at the latest, so a lost frame does not cost the whole timeout.

``TokenPool`` holds the test questions with their sensor tokens (shipped JTCC and raw-token links) and
turns a compression level into a frame and a received frame into answers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from semcom.ofat.frame import DEFAULT_GAP_SAMPLES

FRAME_VALUES = 2560  # real values per frame: every link's frame has the same length, all on the air together
INTERFERER_CFO = 0.5  # max |offset| of a foreign transmitter's oscillator, in subcarriers


def live_layout() -> Any:
    """The OFAT layout of the network flowgraph's links (sequence_id 0; link k uses k)."""
    from semcom.ofat.frame import make_layout

    return make_layout("wifi64", n_tx=1, n_rx=1, mode="complex", train_reps=2, header_reps=3,
                       max_data_symbols=64)


def level_parts(name: str) -> tuple[str, int]:
    """A compression level's name (``jtcc_k3``) -> (link, tokens sent)."""
    link, k = name.split("_k")
    return link, int(k)


class TokenPool:
    """Test questions with their sensor tokens, encoded once per link type (JTCC codes, raw tokens)."""

    def __init__(self, n_questions: int = 1500, progress: bool = False, start: int = 0) -> None:
        from semcom.agents.commands import SHIPPED_CHECKPOINTS
        from semcom.agents.experiment import AgentsExperiment, load_models, make_data

        models = load_models(SHIPPED_CHECKPOINTS)
        doc = json.loads((SHIPPED_CHECKPOINTS / "receiver.json").read_text())
        exp = AgentsExperiment.from_dict(doc["meta"]["experiment"])
        test = make_data(exp, progress=progress, pretrain=False).test.subset(n_questions)
        self.jtcc, self.raw = models["jtcc"].eval(), models["tokens"].eval()
        self.receiver = self.jtcc.receiver
        b = test.batch(torch.arange(len(test)))
        self.question, self.answer = b["question"], b["answer"]
        with torch.no_grad():
            tok_j = self.jtcc.sensor(b["image"], b["vague"])
            tok_r = self.raw.sensor(b["image"], b["vague"])
            self.codes = {"jtcc": self.jtcc.link.encode(tok_j)}                      # (Q, K, 16)
            scale = torch.sqrt(tok_r.pow(2).sum(-1, keepdim=True) / (tok_r.shape[-1] / 2) + 1e-8)
            self.codes["raw"] = tok_r / scale                                        # (Q, K, 128)
            self.raw_scale = scale                                                   # side information
        self.n = len(test)
        self.next = start % self.n

    def no_frame_correct(self, link: str, idx: np.ndarray) -> np.ndarray:
        """(q,) bool: the receiver's answers to the questions ``idx`` without any token (a lost frame)."""
        return self.answers(link, 0, idx, np.zeros(0, np.float32))

    def take(self, q: int) -> np.ndarray:
        idx = (self.next + np.arange(q)) % self.n
        self.next = int((self.next + q) % self.n)
        return idx

    def frame(self, link: str, k: int, idx: np.ndarray, rng: np.random.Generator, n_values: int
              ) -> np.ndarray:
        """(n_values,) float32: the first k tokens of each question, then Gaussian filler of equal power."""
        z = self.codes[link][idx, :k].reshape(-1).numpy()
        fill = rng.standard_normal(n_values - z.size) * np.sqrt(0.5)
        return np.concatenate([z, fill]).astype(np.float32)

    def answers(self, link: str, k: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Received values (n_values,) -> correct (q,) bool for the questions ``idx``."""
        m = self.codes[link].shape[-1]
        K = self.codes[link].shape[1]
        y = torch.zeros(len(idx), K, m)
        y[:, :k] = torch.as_tensor(values[:len(idx) * k * m], dtype=torch.float32).reshape(len(idx), k, m)
        with torch.no_grad():
            dec = self.jtcc.link.decode(y) if link == "jtcc" else y * self.raw_scale[idx]
            dec[:, k:] = 0.0  # tokens not sent: the receiver's "no object" token
            pred = self.receiver(dec, None, self.question[idx]).argmax(-1)
        return (pred == self.answer[idx]).numpy()


@dataclass
class Delivered:
    """One frame back from its receiver: the reconstructed values and the receiver's SNR estimate (dB)."""

    values: np.ndarray
    snr_db: float


class SharedAir:
    """``network_loopback_<n>`` running, one ``LinkClient`` per link (its own seq space). Use as a context
    manager; ``counters`` (after exit) holds the channel's, the link clients' and the receivers' books."""

    def __init__(self, n_links: int, seed: int, link_sequences: bool = True, timeout_s: float = 4.0,
                 grace_s: float = 1.0) -> None:
        self.n, self.seed, self.link_sequences = n_links, seed, link_sequences
        self.timeout_s, self.grace_s = timeout_s, grace_s
        self.layout = live_layout()
        # samples each frame occupies on its link's stream: the frame and its gap (ofat_tx burst mode)
        self.frame_samples = self.layout.frame_len(FRAME_VALUES) + DEFAULT_GAP_SAMPLES
        self.frames_per_link = 0
        self.counters: dict[str, Any] = {}

    def __enter__(self) -> SharedAir:
        from semcom.flowgraphs import top_block_class
        from semcom.link import LinkClient

        n = self.n
        # The bridge blocks bind a port of their own ("*") and report it: no probed port to race for.
        addr = {f"{side}_address_{k}": "tcp://127.0.0.1:*" for side in ("tx", "rx") for k in range(n)}
        fill = self.layout.n_used / self.layout.fft_len  # mean sample power of an OFAT frame (unitary IFFT)
        self.tb = top_block_class(f"network_loopback_{n}")(
            stagger=0, gap_samples=DEFAULT_GAP_SAMPLES, fill_power=fill,
            interferer_cfo=INTERFERER_CFO / self.layout.fft_len, seed=self.seed,
            link_sequences=int(self.link_sequences), **addr)
        tx = [getattr(self.tb, f"tensor_source_{k}").endpoint() for k in range(n)]
        rx = [getattr(self.tb, f"tensor_sink_{k}").endpoint() for k in range(n)]
        self.tb.start()
        self.channel = self.tb.semcom_interference_channel_0
        self.receivers = [getattr(self.tb, f"ofat_rx_{k}") for k in range(n)]
        # one seq space per link: a frame of another link delivered as the own one is booked `unexpected`
        self.links = [LinkClient(tx[k], rx[k], window=1, timeout_s=self.timeout_s, first_seq=1_000_000 * k)
                      for k in range(n)]
        time.sleep(0.5)  # ZeroMQ connect before the first frame (slow joiner)
        return self

    def __exit__(self, *exc: object) -> None:
        self.counters = {"channel": self.channel.counters(),
                         "links": [lk.finish(drain_s=0.5) for lk in self.links],
                         "rx": [r.counters() for r in self.receivers]}
        for lk in self.links:
            lk.close()
        self.tb.stop()
        self.tb.wait()

    def set_channel(self, slot: int, gains: np.ndarray, noise_var: np.ndarray,
                    power_dbm: list[float] | None = None, level: list[int] | None = None) -> None:
        """Post gains (n, n) [receiver, transmitter] and noise variances (n,) and wait until the channel
        has applied them (before any sample of this slot's frames moves)."""
        import pmt
        from gnuradio.semcom.messages import tensor_message

        meta: dict[str, Any] = {"slot": slot}
        if power_dbm is not None:
            meta["power_dbm"] = list(power_dbm)
        if level is not None:
            meta["level"] = list(level)
        self.channel._post(pmt.intern("control"), tensor_message(
            meta, {"gains": np.asarray(gains, np.complex64), "noise_var": np.asarray(noise_var, np.float64)}))
        while self.channel.counters()["slot"] != slot:
            time.sleep(0.001)

    def exchange(self, frames: list[np.ndarray], meta: dict[str, Any] | None = None
                 ) -> list[Delivered | None]:
        """Send one frame (FRAME_VALUES,) per link, all on the air together -> per link the delivered
        frame or None (counted lost in that link's books)."""
        from semcom.ofat.equalize import reconstruct_payload

        seqs = [lk.send(f, meta) for lk, f in zip(self.links, frames, strict=True)]
        self.frames_per_link += 1
        through = self.frames_per_link * self.frame_samples
        got: dict[int, Any] = {}
        deadline = time.monotonic() + self.timeout_s
        drained_at: float | None = None
        while len(got) < self.n and time.monotonic() < deadline:
            for k in set(range(self.n)) - set(got):
                msg = self.links[k].receive(timeout_s=0.02)
                if msg is not None and msg.seq == seqs[k]:
                    got[k] = msg
            if drained_at is None and all(r.counters()["samples"] >= through for r in self.receivers):
                drained_at = time.monotonic()  # every receiver has seen all of its frame and gap
            if drained_at is not None and time.monotonic() - drained_at > self.grace_s:
                break
        out: list[Delivered | None] = []
        for k in range(self.n):
            if k not in got:
                self.links[k].accounting.close_books()  # this slot's frame is lost (a late one: `late`)
                out.append(None)
                continue
            m = got[k].meta
            h = torch.from_numpy(np.array(got[k].tensors["H"], np.complex128))
            y = torch.from_numpy(np.array(got[k].tensors["Y"], np.complex128))
            vals = reconstruct_payload(self.layout, h, y, shape=m["shape"], scale=m["scale"],
                                       noise_var=m["noise_var"], method="zf").numpy()
            out.append(Delivered(vals, float(m["snr_db"])))
        return out
