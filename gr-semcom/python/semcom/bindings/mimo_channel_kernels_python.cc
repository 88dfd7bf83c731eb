/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/***********************************************************************************/
/* Written by hand in the form bindtool generates; no automatic regeneration.      */
/* BINDTOOL_GEN_AUTOMATIC(0)                                                       */
/* BINDTOOL_USE_PYGCCXML(0)                                                        */
/* BINDTOOL_HEADER_FILE(mimo_channel_kernels.h)                                    */
/* BINDTOOL_HEADER_FILE_HASH(0)                                                    */
/***********************************************************************************/

#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#include <gnuradio/semcom/mimo_channel_kernels.h>

namespace {
using kernels = gr::semcom::mimo_channel_kernels;
using cf = std::complex<float>;
// Exact dtype only (no silent conversion copy): the block's complex64 stream buffers.
using samples_t = py::array_t<cf, 0>;

// The first n samples of each 1-D contiguous complex64 buffer (a work() call's input_items / output_items).
template <typename Ptr>
std::vector<Ptr> buffers(const std::vector<samples_t>& arrays, int n, const char* what)
{
    std::vector<Ptr> out;
    out.reserve(arrays.size());
    for (const auto& a : arrays) {
        if (a.ndim() != 1 || a.shape(0) < n ||
            (a.shape(0) > 1 && a.strides(0) != static_cast<py::ssize_t>(sizeof(cf))))
            throw std::invalid_argument(std::string("mimo_channel_kernels: ") + what +
                                        " must be contiguous 1-D complex64 buffers of >= n samples");
        if constexpr (std::is_same_v<Ptr, cf*>) {
            if (!a.writeable())
                throw std::invalid_argument("mimo_channel_kernels: outputs must be writeable");
            out.push_back(const_cast<cf*>(a.data()));
        } else {
            out.push_back(a.data());
        }
    }
    return out;
}
} // namespace

void bind_mimo_channel_kernels(py::module& m)
{
    py::class_<kernels, std::shared_ptr<kernels>>(
        m,
        "mimo_channel_kernels",
        "mimo_channel's per-sample work compiled: FIR over every antenna pair, CFO and drift rotation, "
        "AWGN, TX/RX IQ imbalance and DC (gnuradio.semcom.mimo_channel calls it; see its docstring).")
        .def(py::init<int, int, int, std::uint64_t>(),
             py::arg("n_tx"),
             py::arg("n_rx"),
             py::arg("history_len"),
             py::arg("seed"))
        .def(
            "set_realisation",
            [](kernels& k, const py::array_t<cf, py::array::c_style | py::array::forcecast>& taps,
               int int_delay, double cfo) {
                if (taps.ndim() != 3)
                    throw std::invalid_argument("set_realisation: taps must be (n_rx, n_tx, L)");
                k.set_realisation(std::vector<cf>(taps.data(), taps.data() + taps.size()),
                                  static_cast<int>(taps.shape(2)), int_delay, cfo);
            },
            py::arg("taps"),
            py::arg("int_delay"),
            py::arg("cfo"),
            "taps (Nr, Nt, L) complex64 with the per-channel offsets folded in, integer delay, CFO "
            "(cycles/sample): the realisation of the next filter() calls")
        .def("set_drift", &kernels::set_drift, py::arg("drift"))
        .def("set_tx_iq", &kernels::set_tx_iq, py::arg("k1"), py::arg("k2"))
        .def("set_rx_iq", &kernels::set_rx_iq, py::arg("k1"), py::arg("k2"))
        .def("set_dc", &kernels::set_dc, py::arg("dc"))
        .def(
            "begin",
            [](kernels& k, const std::vector<samples_t>& inputs, const std::vector<samples_t>& outputs, int n) {
                auto in = buffers<const cf*>(inputs, n, "inputs");
                auto out = buffers<cf*>(outputs, n, "outputs");
                py::gil_scoped_release release;
                k.begin(in, std::move(out), n);
            },
            py::arg("inputs"),
            py::arg("outputs"),
            py::arg("n"),
            "start a work() call: the first n samples of every input; the outputs are written until "
            "finish() (the buffers must stay alive until then)")
        .def(
            "filter",
            [](kernels& k, int s0, int s1, double phase, std::int64_t start) {
                py::gil_scoped_release release;
                return k.filter(s0, s1, phase, start);
            },
            py::arg("s0"),
            py::arg("s1"),
            py::arg("phase"),
            py::arg("start"),
            "outputs [s0, s1) under the current realisation, CFO phase at s0; returns the phase at s1")
        .def(
            "finish",
            [](kernels& k, double noise_var) {
                py::gil_scoped_release release;
                k.finish(noise_var);
            },
            py::arg("noise_var"),
            "AWGN (variance per complex sample; 0: none), RX IQ and DC over the call's outputs")
        .def(
            "history",
            [](const kernels& k) {
                const auto& h = k.history();
                py::array_t<cf> a(static_cast<py::ssize_t>(h.size()));
                std::copy(h.begin(), h.end(), a.mutable_data());
                return a;
            },
            "the raw input history (Nt * history_len) complex64, antenna-major (tests)");
}
