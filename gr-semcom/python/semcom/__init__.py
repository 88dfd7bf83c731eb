#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""GNU Radio blocks of gr-semcom: OFAT (orthogonal frequency-division analog transmission) of tensors.

Blocks are pure Python (vectorized numpy). They are imported lazily, so `from gnuradio import semcom`
stays cheap and a block's import error names that block. The frame layout lives in the host package
(`semcom.ofat.frame`), which needs no GNU Radio; it is re-exported here for GRC flowgraphs.
"""

import importlib

_BLOCKS = {
    "ofat_tx": "ofat_tx",
    "ofat_rx": "ofat_rx",
    "ofat_equalizer": "ofat_equalizer",
    "mimo_channel": "mimo_channel",
    "tensor_source": "tensor_source",
    "tensor_sink": "tensor_sink",
}
_REEXPORTS = {
    "OfatLayout": "semcom.ofat.frame",
    "make_layout": "semcom.ofat.frame",
}

__all__ = sorted([*_BLOCKS, *_REEXPORTS])


def __getattr__(name: str):
    if name in _BLOCKS:
        module = importlib.import_module(f".{_BLOCKS[name]}", __name__)
        return getattr(module, name)
    if name in _REEXPORTS:
        return getattr(importlib.import_module(_REEXPORTS[name]), name)
    raise AttributeError(f"module 'gnuradio.semcom' has no attribute {name!r}")
