/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/***********************************************************************************/
/* Written by hand in the form bindtool generates; no automatic regeneration.      */
/* BINDTOOL_GEN_AUTOMATIC(0)                                                       */
/* BINDTOOL_USE_PYGCCXML(0)                                                        */
/* BINDTOOL_HEADER_FILE(mimo_channel_fast.h)                                       */
/* BINDTOOL_HEADER_FILE_HASH(0)                                                    */
/***********************************************************************************/

#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#include <gnuradio/semcom/mimo_channel_fast.h>

void bind_mimo_channel_fast(py::module& m)
{
    using block = gr::semcom::mimo_channel_fast;
    using cf = gr_complex;
    py::module::import("pmt"); // the PMT type, registered by GNU Radio's pmt bindings

    py::class_<block, gr::block, gr::basic_block, std::shared_ptr<block>>(
        m,
        "mimo_channel_fast",
        "mimo_channel compiled (gnuradio.semcom.mimo_channel(...) makes it and pushes its realisations)")
        .def(py::init(&block::make),
             py::arg("n_tx"),
             py::arg("n_rx"),
             py::arg("history_len"),
             py::arg("noise_seed"),
             py::arg("fading"),
             py::arg("block_len"),
             py::arg("sob_key"),
             py::arg("low_water"))
        .def(
            "push",
            [](block& b,
               const py::array_t<cf, py::array::c_style | py::array::forcecast>& taps,
               const std::vector<int>& int_delays,
               const std::vector<double>& cfos,
               const std::vector<pmt::pmt_t>& truths) {
                if (taps.ndim() != 4)
                    throw std::invalid_argument("push: taps must be (count, n_rx, n_tx, L)");
                std::vector<cf> flat(taps.data(), taps.data() + taps.size());
                const int length = static_cast<int>(taps.shape(3));
                py::gil_scoped_release release;
                b.push(flat, length, int_delays, cfos, truths);
            },
            py::arg("taps"),
            py::arg("int_delays"),
            py::arg("cfos"),
            py::arg("truths"),
            "queue realisations: taps (count, Nr, Nt, L) complex64 (offsets folded in), integer delays, "
            "CFOs (cycles/sample), truth messages (or [] for none)")
        .def("set_noise", &block::set_noise, py::arg("snr_db"), py::arg("noise_var"))
        .def("set_front_end",
             &block::set_front_end,
             py::arg("tx_k1"),
             py::arg("tx_k2"),
             py::arg("rx_k1"),
             py::arg("rx_k2"),
             py::arg("dc"))
        .def("set_drift", &block::set_drift, py::arg("drift"))
        .def("queued", &block::queued, "realisations pushed and not yet taken")
        .def("draws", &block::draws, "realisations taken into force")
        .def("counters", &block::counters, "draws, samples, calls, waits, low_signals, pushed");
}
