/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/***********************************************************************************/
/* Written by hand in the form bindtool generates; no automatic regeneration.      */
/* BINDTOOL_GEN_AUTOMATIC(0)                                                       */
/* BINDTOOL_USE_PYGCCXML(0)                                                        */
/* BINDTOOL_HEADER_FILE(ofat_rx_kernels.h)                                         */
/* BINDTOOL_HEADER_FILE_HASH(0)                                                    */
/***********************************************************************************/

#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#include <gnuradio/semcom/ofat_rx_kernels.h>

namespace {
using kernels = gr::semcom::ofat_rx_kernels;
using cd = std::complex<double>;
using cf = std::complex<float>;
// Exact dtypes only (no silent conversion copies): complex64 samples, complex128 per-frame arrays.
using samples_t = py::array_t<cf, 0>;
using cd_array = py::array_t<cd, py::array::c_style | py::array::forcecast>;

std::vector<cd> flat(const cd_array& a) { return std::vector<cd>(a.data(), a.data() + a.size()); }

// A (Nr, n) complex64 buffer whose rows are contiguous (a view of FrameReceiver's store is).
std::ptrdiff_t row_stride(const samples_t& x, int n_rx)
{
    if (x.ndim() != 2 || x.shape(0) != n_rx)
        throw std::invalid_argument("expected (Nr, n) complex64 samples");
    if (x.shape(1) > 1 && x.strides(1) != static_cast<py::ssize_t>(sizeof(cf)))
        throw std::invalid_argument("sample rows must be contiguous");
    return x.strides(0) / static_cast<py::ssize_t>(sizeof(cf));
}
} // namespace

void bind_ofat_rx_kernels(py::module& m)
{
    py::class_<kernels, std::shared_ptr<kernels>>(
        m,
        "ofat_rx_kernels",
        "FrameReceiver's hot methods compiled (gnuradio.semcom.compiled_receiver makes it from the "
        "receiver's own layout-derived arrays).")
        .def(py::init([](int n_rx,
                         int fft_len,
                         int symbol_len,
                         std::vector<int> signed_used,
                         std::vector<int> candidate_taps,
                         const cd_array& basis,
                         const cd_array& coarse_basis_h,
                         const cd_array& derivative_basis_h,
                         std::vector<double> coarse_fractions,
                         int coarse_taps,
                         int newton_steps) {
                 return std::make_shared<kernels>(n_rx,
                                                  fft_len,
                                                  symbol_len,
                                                  signed_used,
                                                  candidate_taps,
                                                  flat(basis),
                                                  flat(coarse_basis_h),
                                                  flat(derivative_basis_h),
                                                  coarse_fractions,
                                                  coarse_taps,
                                                  newton_steps);
             }),
             py::arg("n_rx"),
             py::arg("fft_len"),
             py::arg("symbol_len"),
             py::arg("signed_used"),
             py::arg("candidate_taps"),
             py::arg("basis"),
             py::arg("coarse_basis_h"),
             py::arg("derivative_basis_h"),
             py::arg("coarse_fractions"),
             py::arg("coarse_taps"),
             py::arg("newton_steps"))
        .def(
            "schmidl_cox",
            [](const kernels& k, const samples_t& x, int n_rx, int fft_len) {
                const std::ptrdiff_t stride = row_stride(x, n_rx);
                const py::ssize_t n = x.shape(1);
                const py::ssize_t n_out = std::max<py::ssize_t>(n - fft_len + 1, 0);
                py::array_t<double> metric(n_out);
                py::array_t<cd> p(n_out);
                {
                    py::gil_scoped_release release;
                    if (n_out > 0)
                        k.schmidl_cox(x.data(), stride, n, metric.mutable_data(), p.mutable_data());
                }
                return py::make_tuple(metric, p);
            },
            py::arg("x"),
            py::arg("n_rx"),
            py::arg("fft_len"),
            "(metric float64, P complex128) at every position with a full window of x (Nr, n)")
        .def(
            "windows_fft",
            [](kernels& k, const samples_t& buf, int n_rx, int fft_len, int symbol_len,
               py::ssize_t start, int first_sym, int n_sym, double cfo) {
                const std::ptrdiff_t stride = row_stride(buf, n_rx);
                if (start < 0 || n_sym < 0 ||
                    start + static_cast<py::ssize_t>(n_sym) * symbol_len > buf.shape(1))
                    throw std::invalid_argument("windows_fft: symbols outside the buffer");
                py::array_t<cd> out({ static_cast<py::ssize_t>(n_rx),
                                      static_cast<py::ssize_t>(n_sym),
                                      static_cast<py::ssize_t>(fft_len) });
                {
                    py::gil_scoped_release release;
                    k.windows_fft(buf.data(), stride, start, first_sym, n_sym, cfo, out.mutable_data());
                }
                return out;
            },
            py::arg("buf"),
            py::arg("n_rx"),
            py::arg("fft_len"),
            py::arg("symbol_len"),
            py::arg("start"),
            py::arg("first_sym"),
            py::arg("n_sym"),
            py::arg("cfo"),
            "(Nr, n_sym, fft) complex128: the CFO-removed FFT of the symbol windows from column start")
        .def(
            "fit_taps",
            [](kernels& k, const cd_array& pairs, double threshold) {
                if (pairs.ndim() != 2)
                    throw std::invalid_argument("fit_taps: pairs must be (Nu, P)");
                const int n_pairs = static_cast<int>(pairs.shape(1));
                kernels::fit_result r;
                {
                    py::gil_scoped_release release;
                    r = k.fit_taps(pairs.data(), n_pairs, threshold);
                }
                py::array_t<cd> fit({ pairs.shape(0), pairs.shape(1) });
                std::copy(r.fit.begin(), r.fit.end(), fit.mutable_data());
                return py::make_tuple(r.chosen, fit, r.fraction);
            },
            py::arg("pairs"),
            py::arg("threshold"),
            "(chosen taps, fit (Nu, P) complex128, fraction): FrameReceiver._fit_taps");
}
