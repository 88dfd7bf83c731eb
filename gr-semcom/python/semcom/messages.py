#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The one conversion between in-flowgraph PMT messages and (meta dict, tensors dict).

A tensor message is a PMT dict {"meta": dict, "tensors": dict name -> uniform vector, "shapes": dict
name -> list of dims}. Uniform vectors keep the dtype (complex64 stays c32vector), so arrays come back
with the dtype and shape they were sent with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pmt


class MessageError(ValueError):
    """A PMT message that is not a tensor message."""


def tensor_message(meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> pmt.pmt_t:
    arrays = {name: np.asarray(t, order="C") for name, t in tensors.items()}  # keeps 0-d
    return pmt.to_pmt({
        "meta": meta,
        "tensors": {name: a.reshape(-1) for name, a in arrays.items()},
        "shapes": {name: [int(d) for d in a.shape] for name, a in arrays.items()},
    })


def parse_tensor_message(msg: pmt.pmt_t) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not pmt.is_dict(msg):
        raise MessageError("tensor message must be a PMT dict with keys meta, tensors, shapes")
    try:
        d = pmt.to_python(msg)
    except Exception as err:  # pmt raises plain Exceptions for unsupported types
        raise MessageError(f"tensor message not convertible: {err}") from err
    if not isinstance(d, dict) or not {"meta", "tensors", "shapes"} <= set(d):
        raise MessageError("tensor message needs keys meta, tensors and shapes")
    tensors = {}
    for name, flat in d["tensors"].items():
        shape = d["shapes"].get(name)
        arr = np.asarray(flat)
        if shape is None or int(np.prod(shape)) != arr.size:
            raise MessageError(f"tensor {name!r}: shape {shape} does not match {arr.size} values")
        tensors[name] = arr.reshape(shape)
    meta = d["meta"] if isinstance(d["meta"], dict) else {}
    return meta, tensors
