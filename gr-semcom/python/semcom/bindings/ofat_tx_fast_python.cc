/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/***********************************************************************************/
/* Written by hand in the form bindtool generates; no automatic regeneration.      */
/* BINDTOOL_GEN_AUTOMATIC(0)                                                       */
/* BINDTOOL_USE_PYGCCXML(0)                                                        */
/* BINDTOOL_HEADER_FILE(ofat_tx_fast.h)                                            */
/* BINDTOOL_HEADER_FILE_HASH(0)                                                    */
/***********************************************************************************/

#include <pybind11/complex.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#include <gnuradio/semcom/ofat_tx_fast.h>

void bind_ofat_tx_fast(py::module& m)
{
    using ofat_tx_fast = gr::semcom::ofat_tx_fast;

    py::class_<ofat_tx_fast,
               gr::sync_block,
               gr::block,
               gr::basic_block,
               std::shared_ptr<ofat_tx_fast>>(
        m,
        "ofat_tx_fast",
        "The compiled core of ofat_tx (make it with gnuradio.semcom.ofat_tx_fast(layout, ...), "
        "which computes these arrays from semcom.ofat.frame).")

        .def(py::init(&ofat_tx_fast::make),
             py::arg("n_tx"),
             py::arg("fft_len"),
             py::arg("cp_len"),
             py::arg("values_per_element"),
             py::arg("n_header_symbols"),
             py::arg("header_reps"),
             py::arg("max_data_symbols"),
             py::arg("data_bins"),
             py::arg("sync_samples"),
             py::arg("pilot_grid"),
             py::arg("cdd_data"),
             py::arg("header_scrambler"),
             py::arg("header_filler"),
             py::arg("clip_level"),
             py::arg("gap_samples"),
             py::arg("idle_fill"),
             py::arg("idle_chunk"),
             py::arg("idle_sleep_s"),
             py::arg("max_queue"))

        .def("counters",
             &ofat_tx_fast::counters,
             "frames_queued, frames_sent, dropped_backpressure and one rejected_<reason> per error")
        .def("queued",
             &ofat_tx_fast::queued,
             "frames accepted whose first sample has not been written yet");
}
