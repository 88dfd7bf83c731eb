"""Semantic adaptive transmission (seed 000, section III-A): channel captures, a conditional-GAN channel
learned from them, and online fine-tuning of a codec while the SNR drops.

* ``captures``: (sent, received) values with the receiver's per-frame side information, as a versioned
  ``.npz`` + ``.json`` file (``capture``, ``load_captures``, ``CaptureError``).
* ``cgan``: ``CGANChannel``, the learned channel with the ``semcom.channels`` interface.
* ``fidelity``: error statistics and the MMD two-sample test against held-out captures.
* ``experiment`` / ``commands``: the 21 -> 9 dB schedule, ``semcom adapt``.
"""

from .captures import CaptureError, Captures, capture, captures_from_frames, load_captures
from .cgan import CGANChannel, GanConfig

__all__ = ["CGANChannel", "CaptureError", "Captures", "GanConfig", "capture", "captures_from_frames",
           "load_captures"]
