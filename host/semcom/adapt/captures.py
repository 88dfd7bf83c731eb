"""Channel captures as a dataset: what a channel delivered for what was sent, with the receiver's side
information, stored as a versioned ``.npz`` + ``.json`` pair and loaded with checks.

One capture = one OFAT frame = one sample of the codec's real tensor:

* ``x`` (N, n) float32: the transmitted values (the codec's symbols, flattened),
* ``y`` (N, n) float32: the values the receiver reconstructed (equalised); zeros for a lost frame,
* ``delivered`` (N,) bool,
* per-frame side information the receiver has: ``h_est`` (N, K, Nr, Nt) complex64 (its channel estimate
  on the data subcarriers), ``noise_var`` (N,) (its noise-variance estimate), ``snr_est_db`` (N,),
  ``scale`` (N,) (the header's payload scale: values -> grid), and the experiment's ``snr_setting_db``.

``meta`` holds the provenance (``"flowgraph"`` = the GNU Radio loopback / any flowgraph behind
``FlowgraphChannel``, ``"torch"`` = ``semcom.channels.OfatChannel``, ``"recording"`` = frames of a SigMF
recording replayed through ``ofat_rx``), the OFAT layout, the equaliser, the seed and free-form notes.
``<name>.json`` carries the format version, the array shapes/dtypes and the SHA-256 of ``<name>.npz``;
every way a file can be wrong (missing, altered, truncated, another layout or provenance than expected)
ends in ``CaptureError``.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semcom.ofat.frame import FrameError, OfatLayout, decode_scale, encode_scale, payload_scale

FORMAT_VERSION = 1
KIND = "semcom-channel-captures"
PROVENANCES = ("flowgraph", "torch", "recording")
ARRAYS: dict[str, str] = {"x": "float32", "y": "float32", "delivered": "bool", "h_est": "complex64",
                          "noise_var": "float64", "snr_est_db": "float64", "scale": "float64",
                          "snr_setting_db": "float64"}


class CaptureError(ValueError):
    """A capture file that is missing, corrupted or not what the caller expects."""


@dataclass
class Captures:
    """Pairs (sent, received) with per-frame side information; shapes in the module docstring."""

    x: np.ndarray
    y: np.ndarray
    delivered: np.ndarray
    h_est: np.ndarray
    noise_var: np.ndarray
    snr_est_db: np.ndarray
    scale: np.ndarray
    snr_setting_db: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, dtype in ARRAYS.items():
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=dtype))
        self.validate()

    @property
    def n_frames(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_values(self) -> int:
        return int(self.x.shape[1])

    @property
    def layout(self) -> OfatLayout:
        return OfatLayout.from_dict(self.meta["layout"])

    def validate(self) -> None:
        """Shapes, finiteness and metadata agree with each other (else CaptureError)."""
        if self.x.ndim != 2 or self.y.shape != self.x.shape:
            raise CaptureError(f"x {self.x.shape} and y {self.y.shape} must both be (N, n)")
        n = self.x.shape[0]
        for name in ("delivered", "noise_var", "snr_est_db", "scale", "snr_setting_db"):
            if getattr(self, name).shape != (n,):
                raise CaptureError(f"{name} has shape {getattr(self, name).shape}, expected ({n},)")
        if self.meta.get("provenance") not in PROVENANCES:
            raise CaptureError(f"provenance {self.meta.get('provenance')!r} is not one of {PROVENANCES}")
        if self.meta.get("equalizer") not in ("zf", "mmse"):
            raise CaptureError(f"equalizer {self.meta.get('equalizer')!r} is not 'zf' or 'mmse'")
        try:
            lay = self.layout
        except (KeyError, TypeError, FrameError) as e:
            raise CaptureError(f"meta has no valid OFAT layout: {e}") from e
        if lay.mode != "complex":
            raise CaptureError("captures need a complex-mode layout (pairs of values per resource element)")
        want = (n, lay.n_data_carriers, lay.n_rx, lay.n_tx)
        if self.h_est.shape != want:
            raise CaptureError(f"h_est has shape {self.h_est.shape}, the layout needs {want}")
        if self.x.shape[1] > lay.capacity or self.x.shape[1] % 2:
            raise CaptureError(f"{self.x.shape[1]} values per frame: must be even and <= {lay.capacity}")
        d = self.delivered
        for name in ("x", "y", "h_est"):
            if not np.all(np.isfinite(getattr(self, name)[d])):
                raise CaptureError(f"{name} holds NaN/Inf on delivered frames")
        if np.any(self.noise_var[d] <= 0) or np.any(self.scale[d] <= 0):
            raise CaptureError("noise_var and scale must be > 0 on delivered frames")

    def select(self, mask: np.ndarray) -> Captures:
        """The frames where ``mask`` (N,) bool (or an index array) holds."""
        return Captures(**{k: getattr(self, k)[mask] for k in ARRAYS}, meta=dict(self.meta))

    def only_delivered(self) -> Captures:
        return self.select(self.delivered)

    def concat(self, other: Captures) -> Captures:
        """Frames of both; layouts, equaliser and value count must agree."""
        for key in ("layout", "equalizer"):
            if self.meta.get(key) != other.meta.get(key):
                raise CaptureError(f"cannot concatenate captures with different {key}")
        if self.n_values != other.n_values:
            raise CaptureError(f"cannot concatenate {self.n_values}- and {other.n_values}-value captures")
        meta = dict(self.meta)
        if other.meta.get("provenance") != meta.get("provenance"):
            raise CaptureError("cannot concatenate captures of different provenance")
        return Captures(**{k: np.concatenate([getattr(self, k), getattr(other, k)]) for k in ARRAYS},
                        meta=meta)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``<path>.npz`` (no pickles) and ``<path>.json``; returns both paths."""
        npz, js = capture_paths(path)
        npz.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **{k: getattr(self, k) for k in ARRAYS})
        npz.write_bytes(buf.getvalue())
        doc = {"kind": KIND, "format_version": FORMAT_VERSION, "meta": self.meta,
               "arrays": {k: {"shape": list(getattr(self, k).shape), "dtype": ARRAYS[k]} for k in ARRAYS},
               "data": npz.name, "sha256": hashlib.sha256(npz.read_bytes()).hexdigest()}
        js.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return npz, js


def capture_paths(path: str | Path) -> tuple[Path, Path]:
    """``x``, ``x.npz`` or ``x.json`` -> (``x.npz``, ``x.json``)."""
    p = Path(path)
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


def load_captures(path: str | Path, *, provenance: str | tuple[str, ...] | None = None,
                  layout: OfatLayout | None = None, n_values: int | None = None,
                  equalizer: str | None = None) -> Captures:
    """Read and check a capture file; the keyword arguments are what the caller expects of it."""
    npz, js = capture_paths(path)
    if not js.is_file():
        raise CaptureError(f"capture metadata {js} not found")
    if not npz.is_file():
        raise CaptureError(f"capture data {npz} not found (metadata {js} exists)")
    try:
        doc = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CaptureError(f"{js} is not valid JSON (corrupted?): {e}") from e
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        raise CaptureError(f"{js} is not a channel-capture file (kind={kind!r})")
    if doc.get("format_version") != FORMAT_VERSION:
        raise CaptureError(f"{js}: unsupported format_version {doc.get('format_version')!r} "
                           f"(this code reads {FORMAT_VERSION})")
    raw = npz.read_bytes()
    if hashlib.sha256(raw).hexdigest() != doc.get("sha256"):
        raise CaptureError(f"{npz}: SHA-256 does not match {js} (data altered, truncated or another run's)")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            arrays = {k: f[k] for k in ARRAYS}
    except Exception as e:  # zipfile / ValueError / KeyError: all mean an unreadable file
        raise CaptureError(f"cannot read {npz}: {e}") from e
    for k, spec in doc.get("arrays", {}).items():
        a = arrays.get(k)
        if a is None or list(a.shape) != spec["shape"] or str(a.dtype) != spec["dtype"]:
            raise CaptureError(f"{npz}: array {k} is {None if a is None else (a.shape, a.dtype)}, "
                               f"metadata says {spec}")
    try:
        cap = Captures(**arrays, meta=doc["meta"])
    except CaptureError as e:
        raise CaptureError(f"{npz}: {e}") from e
    want_prov = (provenance,) if isinstance(provenance, str) else provenance
    if want_prov is not None and cap.meta["provenance"] not in want_prov:
        raise CaptureError(f"{npz}: provenance {cap.meta['provenance']!r}, expected one of {want_prov}")
    if layout is not None and cap.meta["layout"] != layout.to_dict():
        raise CaptureError(f"{npz}: recorded with layout ({cap.layout.describe()}), "
                           f"expected ({layout.describe()})")
    if n_values is not None and cap.n_values != n_values:
        raise CaptureError(f"{npz}: {cap.n_values} values per frame, expected {n_values}")
    if equalizer is not None and cap.meta["equalizer"] != equalizer:
        raise CaptureError(f"{npz}: equaliser {cap.meta['equalizer']!r}, expected {equalizer!r}")
    return cap


def header_scale(layout: OfatLayout, values: np.ndarray) -> float:
    """The quantised payload scale the frame header carries for ``values`` (n,)."""
    return decode_scale(encode_scale(payload_scale(layout, values)))


@torch.no_grad()
def capture(channel: nn.Module, values: torch.Tensor, snr_db: float, *, seed: int | None = None,
            note: str = "") -> Captures:
    """Send ``values`` (B, *dims) real through ``channel`` at ``snr_db`` and keep what came back.

    ``channel``: a ``FlowgraphChannel`` (provenance "flowgraph": the receiver's own side information per
    frame) or an ``OfatChannel`` (provenance "torch": its LS/denoised estimate ``last_h_est``, the true
    noise variance and the setting as the SNR estimate).
    """
    from semcom.channels import OfatChannel, snr_db_to_noise_var
    from semcom.flowgraph_channel import FlowgraphChannel

    flat = values.detach().reshape(values.shape[0], -1).float()
    b = flat.shape[0]
    lay: OfatLayout = channel.layout
    if isinstance(channel, FlowgraphChannel):
        out = channel(flat, snr_db=snr_db)
        infos = channel.last_side_info
        delivered = np.array([i is not None for i in infos])
        h = np.zeros((b, lay.n_data_carriers, lay.n_rx, lay.n_tx), np.complex64)
        nv, est, sc = (np.full(b, np.nan) for _ in range(3))
        for i, info in enumerate(infos):
            if info is not None:
                h[i], nv[i], est[i], sc[i] = info["H"], info["noise_var"], info["snr_db"], info["scale"]
        meta = {"provenance": "flowgraph", "equalizer": channel.method,
                "flowgraph": {k: v for k, v in channel._flowgraph_args.items()
                              if isinstance(v, int | float | str)}}
    elif isinstance(channel, OfatChannel):
        if seed is not None:
            channel.reseed(seed)
        out = channel(flat, snr_db=snr_db)
        delivered = np.ones(b, bool)
        h = channel.last_h_est.cpu().numpy().astype(np.complex64)
        nv = np.full(b, float(snr_db_to_noise_var(snr_db)))
        est = np.full(b, float(snr_db))
        sc = np.array([header_scale(lay, v) for v in flat.numpy()])
        meta = {"provenance": "torch", "equalizer": channel.equalizer, "csi": channel.csi,
                "channel_kwargs": channel.channel_kwargs}
    else:
        raise TypeError(f"capture needs a FlowgraphChannel or OfatChannel, got {type(channel).__name__}")
    meta.update({"layout": lay.to_dict(), "seed": seed, "note": note, "format": "values per frame, C order"})
    y = out.reshape(b, -1).numpy()
    return Captures(x=flat.numpy(), y=np.where(delivered[:, None], y, 0.0), delivered=delivered, h_est=h,
                    noise_var=nv, snr_est_db=est, scale=sc, snr_setting_db=np.full(b, float(snr_db)),
                    meta=meta)


def captures_from_frames(layout: OfatLayout, frames: list[tuple[dict[str, Any], dict[str, np.ndarray]]],
                         sent: dict[int, np.ndarray], snr_setting_db: float, *, equalizer: str = "mmse",
                         provenance: str = "recording", note: str = "") -> Captures:
    """Captures from receiver frames ``(meta, {"Y", "H"})`` as ``ofat_rx`` emits them (a SigMF recording
    replayed through it, or ``semcom.burst.run_burst``) and the values sent per sequence number;
    a sequence number sent but not among the frames is a lost frame."""
    from semcom.ofat.equalize import reconstruct_payload

    got = {int(m["seq"]): (m, t) for m, t in frames}
    seqs = sorted(sent)
    n = max(int(np.asarray(v).size) for v in sent.values())
    b = len(seqs)
    x = np.zeros((b, n), np.float32)
    y = np.zeros_like(x)
    h = np.zeros((b, layout.n_data_carriers, layout.n_rx, layout.n_tx), np.complex64)
    nv, est, sc = (np.full(b, np.nan) for _ in range(3))
    delivered = np.zeros(b, bool)
    for i, seq in enumerate(seqs):
        x[i] = np.asarray(sent[seq], np.float32).reshape(-1)
        if seq not in got:
            continue
        meta, t = got[seq]
        y[i] = np.asarray(reconstruct_payload(layout, t["H"], t["Y"], shape=(n,), scale=meta["scale"],
                                              noise_var=meta["noise_var"], method=equalizer), np.float32)
        h[i], nv[i], est[i], sc[i] = t["H"], meta["noise_var"], meta["snr_db"], meta["scale"]
        delivered[i] = True
    meta_out = {"provenance": provenance, "equalizer": equalizer, "layout": layout.to_dict(), "seed": None,
                "note": note, "format": "values per frame, C order"}
    return Captures(x=x, y=y, delivered=delivered, h_est=h, noise_var=nv, snr_est_db=est, scale=sc,
                    snr_setting_db=np.full(b, float(snr_setting_db)), meta=meta_out)


def captures_from_recording(path: str | Path, snr_setting_db: float, *, equalizer: str = "mmse",
                            n_sent: int | None = None) -> Captures:
    """Captures from a SigMF recording (``semcom record-loopback``, ``sigmf_sink``), replayed chunk by chunk
    through the receiver (``semcom.capture.decoded_frames``, bounded memory).

    The values sent come from the recording's ``semcom:payload`` description (a seeded generator). The
    frames sent are ``n_sent`` from its ``first_seq`` on; by default as many as ``semcom:live_results``
    lists, else up to the highest sequence number decoded (a lost tail is then not seen)."""
    from semcom.capture import decoded_frames, load_recording, payload_tensors

    rec = load_recording(path)
    payload = rec.meta.get("semcom:payload")
    if payload is None:
        raise CaptureError(f"{path}: the recording has no semcom:payload, so the values sent are unknown")
    frames = [(f.meta(), {"Y": f.y, "H": f.h}) for f in decoded_frames(rec)]
    if n_sent is None:
        live = rec.meta.get("semcom:live_results")
        first = int(payload.get("first_seq", 0))
        n_sent = len(live) if live else max((int(m["seq"]) - first + 1 for m, _ in frames), default=0)
    if n_sent < 1:
        raise CaptureError(f"{path}: no frame decoded and no frame count recorded")
    sent = payload_tensors(payload, n_sent)
    return captures_from_frames(rec.layout, [fr for fr in frames if int(fr[0]["seq"]) in sent], sent,
                                snr_setting_db, equalizer=equalizer, provenance="recording",
                                note=f"replayed from {Path(path).name}")
