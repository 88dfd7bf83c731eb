#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""GNU Radio blocks of gr-semcom: OFAT (orthogonal frequency-division analog transmission) of tensors.

Blocks are Python (vectorized numpy), plus one compiled block: `ofat_tx_fast`, ofat_tx's C++ core
(gr-semcom/lib, bound in `semcom_python`), which GRC's OFAT Transmitter (`make_ofat_tx`) uses where it
was built. The frame layout lives in the host
package (`semcom.ofat.frame`, which needs no GNU Radio); it is re-exported here for GRC flowgraphs.
"""

from semcom.ofat.frame import OfatLayout, make_layout

from .interference_channel import interference_channel
from .link_probe import link_probe
from .mimo_channel import mimo_channel
from .ofat_equalizer import ofat_equalizer
from .ofat_rx import ofat_rx
from .ofat_tx import make_ofat_tx, ofat_tx, ofat_tx_fast, semcom_python
from .sigmf_sink import sigmf_sink
from .tensor_sink import tensor_sink
from .tensor_source import tensor_source
from .usrp_events import usrp_events

__all__ = ["OfatLayout", "make_layout", "make_ofat_tx", "interference_channel", "link_probe", "mimo_channel",
           "ofat_equalizer", "ofat_rx", "ofat_tx", "ofat_tx_fast", "semcom_python", "sigmf_sink",
           "tensor_sink", "tensor_source", "usrp_events"]
