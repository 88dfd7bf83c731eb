/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

// The gnuradio.semcom.semcom_python extension, laid out as gr_modtool / bindtool make it (written by
// hand: one bind_<block> function per compiled block, called from the module's init).

#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_tensor_bridge(py::module& m);

void bind_ofat_tx_fast(py::module& m);
void bind_ofat_rx_kernels(py::module& m);
void bind_mimo_channel_kernels(py::module& m);
void bind_mimo_channel_fast(py::module& m);

PYBIND11_MODULE(semcom_python, m)
{
    // The base classes (gr::sync_block, ...) are registered by GNU Radio's own bindings.
    py::module::import("gnuradio.gr");
    bind_tensor_bridge(m);

    bind_ofat_tx_fast(m);
    bind_ofat_rx_kernels(m);
    bind_mimo_channel_kernels(m);
    bind_mimo_channel_fast(m);
}
