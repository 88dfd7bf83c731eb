#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""arrived_block: the base of the Python stream blocks that map one sample in to one sample out on every
port (mimo_channel, interference_channel) and should take, in each call, all the input that has arrived."""

from __future__ import annotations

from gnuradio import gr


class arrived_block(gr.basic_block):
    """A gr.basic_block with one output item per input item whose every call takes what has arrived.

    Why not gr.sync_block: a sync block's forecast asks for noutput_items of input on every port, so
    GNU Radio halves the call until it fits the input already there. A 1 760-sample frame in flight went
    through mimo_channel in calls of 1 024, 512, 128, 64 and 32 samples, and a 1 920-sample slot through
    interference_channel in 1 024, 512, 256 and 128, each paying the Python gateway here and a receiver
    call downstream. Here the forecast asks for one item per input and `general_work` passes
    n = min(input arrived on every port, output space) to the subclass's `process`.

    Subclasses implement ``process(input_items, output_items, n)``: read ``input_items[j][:n]``, write
    ``output_items[k][:n]``. The absolute index of the first sample is ``self.nitems_written(0)``.
    """

    def forecast(self, noutput_items: int, ninputs: int) -> list[int]:
        """Any input will do: `general_work` takes min(input available, output space)."""
        return [1] * ninputs

    def general_work(self, input_items, output_items):
        n = min(len(output_items[0]), *(len(x) for x in input_items))
        self.process(input_items, output_items, n)
        self.consume_each(n)
        return n

    def process(self, input_items, output_items, n: int) -> None:
        raise NotImplementedError


def record_calls(block: arrived_block) -> list[int]:
    """Wrap ``block.general_work`` so that each call appends the items it took to the returned list (the
    QA tests check one call per arrival with it). Set it before the flowgraph starts."""
    sizes: list[int] = []
    general_work = block.general_work

    def recorded(input_items, output_items):
        n = general_work(input_items, output_items)
        sizes.append(n)
        return n

    block.general_work = recorded
    return sizes
