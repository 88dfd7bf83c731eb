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
#include <tuple>

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

py::array_t<cd> array_of(const std::vector<cd>& v, std::vector<py::ssize_t> shape)
{
    py::array_t<cd> a(shape);
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

// A numpy array that owns v's storage (moved, not copied), of the given shape.
py::array_t<cf> owning_array(std::vector<cf>&& v, std::vector<py::ssize_t> shape)
{
    auto* owned = new std::vector<cf>(std::move(v));
    py::capsule release(owned, [](void* p) { delete static_cast<std::vector<cf>*>(p); });
    return py::array_t<cf>(shape, owned->data(), release);
}

// ofat_rx_kernels::receive on a sequence of Nr 1-d sample arrays (complex64 rows, contiguous: a dtype or
// layout other than that is converted, as the numpy receiver's buffer assignment converts it).
void receive_rows(kernels& k,
                  const py::sequence& rows,
                  kernels::stream_counts& counts,
                  std::vector<kernels::stream_frame>& frames)
{
    if (!k.streaming())
        throw std::logic_error("receive: set_frame and set_stream first");
    const int n_rx = k.n_rx();
    if (static_cast<int>(py::len(rows)) != n_rx)
        throw std::invalid_argument("receive: expected Nr 1-d sample arrays of one length");
    using row_t = py::array_t<cf, py::array::c_style | py::array::forcecast>;
    std::vector<row_t> arrays;
    std::vector<const cf*> ptrs;
    for (int r = 0; r < n_rx; ++r) {
        arrays.push_back(row_t::ensure(rows[r]));
        if (!arrays.back() || arrays.back().ndim() != 1 || arrays.back().size() != arrays[0].size())
            throw std::invalid_argument("receive: expected Nr 1-d sample arrays of one length");
        ptrs.push_back(arrays.back().data());
    }
    py::gil_scoped_release release;
    frames = k.receive(ptrs.data(), static_cast<std::size_t>(arrays[0].size()), counts);
}

py::tuple frame_tuple(const kernels& k, kernels::stream_frame& f)
{
    const py::ssize_t n_k = k.data_carriers(), nr = k.n_rx(), nt = k.n_tx();
    py::tuple shape(f.shape.size());
    for (std::size_t i = 0; i < f.shape.size(); ++i)
        shape[i] = py::int_(f.shape[i]);
    return py::make_tuple(f.seq, f.flags, shape, f.scale_code, owning_array(std::move(f.y), { n_k, nr, f.n_data }),
                          owning_array(std::move(f.h), { n_k, nr, nt }), f.noise_var, f.snr_db, f.cfo, f.start,
                          f.metric, f.err_var);
}

py::tuple counts_tuple(const kernels::stream_counts& c)
{
    return py::make_tuple(c.samples, c.detections, c.frames, c.header_crc_fail, c.header_invalid,
                          c.sequence_mismatch);
}

// (the last front's chosen taps, its fraction) when receive computed a front, else None
py::object front_of(const kernels& k, long long fronts_before)
{
    if (k.fronts() == fronts_before)
        return py::none();
    return py::make_tuple(k.last_chosen(), k.last_fraction());
}

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
    py::module::import("pmt"); // the PMT type, registered by GNU Radio's pmt bindings
    using gr::semcom::ofat_rx_fast;
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
            [](const kernels& k, const samples_t& x) {
                const std::ptrdiff_t stride = row_stride(x, k.n_rx());
                const py::ssize_t n = x.shape(1);
                const py::ssize_t n_out = std::max<py::ssize_t>(n - k.fft_len() + 1, 0);
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
            "(metric float64, P complex128) at every position with a full window of x (Nr, n)")
        .def(
            "windows_fft",
            [](kernels& k, const samples_t& buf, py::ssize_t start, int first_sym, int n_sym, double cfo) {
                const std::ptrdiff_t stride = row_stride(buf, k.n_rx());
                if (start < 0 || n_sym < 0 ||
                    start + static_cast<py::ssize_t>(n_sym) * k.symbol_len() > buf.shape(1))
                    throw std::invalid_argument("windows_fft: symbols outside the buffer");
                py::array_t<cd> out({ static_cast<py::ssize_t>(k.n_rx()),
                                      static_cast<py::ssize_t>(n_sym),
                                      static_cast<py::ssize_t>(k.fft_len()) });
                {
                    py::gil_scoped_release release;
                    k.windows_fft(buf.data(), stride, start, first_sym, n_sym, cfo, out.mutable_data());
                }
                return out;
            },
            py::arg("buf"),
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
            "(chosen taps, fit (Nu, P) complex128, fraction): FrameReceiver._fit_taps")
        .def_static(
            "first_above",
            [](const py::array_t<double, 0>& metric, double threshold) {
                if (metric.ndim() != 1 || (metric.size() > 1 && metric.strides(0) != sizeof(double)))
                    throw std::invalid_argument("first_above: a contiguous 1-d float64 metric");
                return kernels::first_above(metric.data(), metric.size(), threshold);
            },
            py::arg("metric"),
            py::arg("threshold"),
            "index of the first metric value above threshold, -1 if none")
        .def_static(
            "plateau",
            [](const py::array_t<double, 0>& metric, const py::array_t<cd, 0>& p) {
                if (metric.ndim() != 1 || p.ndim() != 1 || p.size() != metric.size() ||
                    (metric.size() > 1 && (metric.strides(0) != sizeof(double) || p.strides(0) != sizeof(cd))))
                    throw std::invalid_argument("plateau: contiguous 1-d metric and P of one length");
                return kernels::plateau(metric.data(), p.data(), metric.size());
            },
            py::arg("metric"),
            py::arg("p"),
            "(peak, middle of the 90 % plateau, P summed over it) of a plateau window")
        .def(
            "set_frame",
            [](kernels& k, int n_tx, int n_preamble_symbols, int n_train_symbols, int n_header_symbols,
               std::vector<int> used_bins, std::vector<int> int_shifts, std::vector<int> shift_bins,
               std::vector<int> adjacent, const cd_array& train_conj, const cd_array& cover_conj,
               const cd_array& training_sequence, const cd_array& far_basis_h, std::vector<int> far_taps,
               const cd_array& cdd,
               std::vector<int> pilot_index, std::vector<int> data_index, std::vector<double> pilot_table,
               bool linear_phase, int header_reps, std::vector<int> header_scrambler) {
                k.set_frame(n_tx, n_preamble_symbols, n_train_symbols, n_header_symbols, used_bins,
                            int_shifts, shift_bins, adjacent, flat(train_conj), flat(cover_conj),
                            flat(training_sequence), flat(far_basis_h), far_taps, flat(cdd), pilot_index,
                            data_index, pilot_table, linear_phase, header_reps, header_scrambler);
            },
            py::arg("n_tx"), py::arg("n_preamble_symbols"), py::arg("n_train_symbols"),
            py::arg("n_header_symbols"), py::arg("used_bins"), py::arg("int_shifts"),
            py::arg("shift_bins"), py::arg("adjacent"), py::arg("train_conj"), py::arg("cover_conj"),
            py::arg("training_sequence"), py::arg("far_basis_h"), py::arg("far_taps"), py::arg("cdd"),
            py::arg("pilot_index"),
            py::arg("data_index"), py::arg("pilot_table"), py::arg("linear_phase"), py::arg("header_reps"),
            py::arg("header_scrambler"),
            "the frame layout of front() and data() (see ofat_rx_kernels.h)")
        .def(
            "front",
            [](kernels& k, const samples_t& buf, py::ssize_t body, double cfo) {
                if (!k.frame_configured())
                    throw std::logic_error("front: set_frame first");
                const py::ssize_t n_rx = k.n_rx(), n_tx = k.n_tx(), n_header_symbols = k.n_header_symbols();
                const std::ptrdiff_t stride = row_stride(buf, k.n_rx());
                if (body < 0)
                    throw std::invalid_argument("front: negative body index");
                kernels::front_result r;
                {
                    py::gil_scoped_release release;
                    r = k.front(buf.data(), stride, buf.shape(1), body, cfo);
                }
                const py::ssize_t nu = static_cast<py::ssize_t>(r.g.size()) / n_rx;
                py::array_t<std::uint8_t> bits(static_cast<py::ssize_t>(r.header_bits.size()));
                std::copy(r.header_bits.begin(), r.header_bits.end(), bits.mutable_data());
                return py::make_tuple(r.cfo,
                                      array_of(r.h, { n_rx, n_tx, nu }),
                                      r.noise_var,
                                      r.err_var,
                                      r.own_training,
                                      array_of(r.g, { n_rx, nu }),
                                      array_of(r.yh, { n_rx, n_header_symbols, nu }),
                                      bits,
                                      r.chosen,
                                      r.fraction);
            },
            py::arg("buf"), py::arg("body"), py::arg("cfo"),
            "(cfo, h, noise_var, err_var, own_training, g, yh, header bits (frame.combine_header_llrs of "
            "the header LLRs), chosen taps, fraction): "
            "FrameReceiver._front of the frame whose preamble body is at column body")
        .def(
            "data",
            [](kernels& k, const samples_t& buf, py::ssize_t body, double cfo, const cd_array& g,
               const cd_array& yh, const cd_array& h, int n_data) {
                if (!k.frame_configured())
                    throw std::logic_error("data: set_frame first");
                const py::ssize_t n_rx = k.n_rx(), n_tx = k.n_tx();
                const std::ptrdiff_t stride = row_stride(buf, k.n_rx());
                // The front's arrays as front() shapes them (the kernel reads them by its own dims).
                if (body < 0 || h.ndim() != 3 || h.shape(0) != n_rx || h.shape(1) != n_tx || g.ndim() != 2 ||
                    g.shape(0) != n_rx || yh.ndim() != 3 || yh.shape(0) != n_rx ||
                    yh.shape(1) != k.n_header_symbols() || g.shape(1) != h.shape(2) || yh.shape(2) != h.shape(2))
                    throw std::invalid_argument("data: inconsistent front arrays");
                const py::ssize_t n_k = k.data_carriers();
                py::array_t<cf> y({ n_k, n_rx, static_cast<py::ssize_t>(n_data) });
                py::array_t<cf> h_out({ n_k, n_rx, n_tx });
                double power;
                {
                    py::gil_scoped_release release;
                    power = k.data(buf.data(), stride, buf.shape(1), body, cfo, g.data(), yh.data(), h.data(),
                                   n_data, y.mutable_data(), h_out.mutable_data());
                }
                return py::make_tuple(y, h_out, power);
            },
            py::arg("buf"), py::arg("body"), py::arg("cfo"), py::arg("g"), py::arg("yh"),
            py::arg("h"), py::arg("n_data"),
            "(Y (K, Nr, S) complex64, H (K, Nr, Nt) complex64, signal power per element): the data part "
            "of FrameReceiver._decode_at from the front's g, yh and h")
        .def("set_stream",
             &kernels::set_stream,
             py::arg("threshold"),
             py::arg("plateau_window"),
             py::arg("cp_len"),
             py::arg("values_per_symbol"),
             py::arg("capacity"),
             "the search's parameters of receive() (after set_frame)")
        .def(
            "receive",
            [](kernels& k, const py::sequence& rows) {
                kernels::stream_counts counts;
                std::vector<kernels::stream_frame> frames;
                const long long fronts = k.fronts();
                receive_rows(k, rows, counts, frames);
                py::list out;
                for (auto& f : frames)
                    out.append(frame_tuple(k, f));
                return py::make_tuple(out, counts_tuple(counts), front_of(k, fronts));
            },
            py::arg("rows"),
            "([(seq, flags, shape, scale_code, Y (K, Nr, S), H (K, Nr, Nt), noise_var, snr_db, cfo, start, "
            "metric, err_var) per frame], the counts since the last call (samples, detections, frames, "
            "header_crc_fail, header_invalid, sequence_mismatch), (last chosen taps, last fraction) or None "
            "when no front was computed): FrameReceiver.process of Nr rows of samples")
        .def("set_message",
             [](kernels& k, pmt::pmt_t car, const py::bytes& wire_header) {
                 k.set_message(car, std::string(wire_header));
             },
             py::arg("car"),
             py::arg("wire_header"),
             "the wire form's car and a FRAME's 16-byte wire header (seq 0) for receive_messages()")
        .def(
            "receive_messages",
            [](kernels& k, const py::sequence& rows, const std::vector<long long>& before) {
                if (!k.messages_configured())
                    throw std::logic_error("receive_messages: set_message first");
                if (before.size() != 6)
                    throw std::invalid_argument("receive_messages: six counters before the call");
                kernels::stream_counts counts;
                std::vector<kernels::stream_frame> frames;
                const long long fronts = k.fronts();
                receive_rows(k, rows, counts, frames);
                // Every message carries the counters after the whole call, as ofat_rx's loop over
                // process()'s frames reads them.
                const kernels::stream_counts totals{ before[0] + counts.samples,
                                                     before[1] + counts.detections,
                                                     before[2] + counts.frames,
                                                     before[3] + counts.header_crc_fail,
                                                     before[4] + counts.header_invalid,
                                                     before[5] + counts.sequence_mismatch };
                py::list out;
                for (auto& f : frames) {
                    pmt::pmt_t message;
                    if (k.frame_message(f, totals, message))
                        out.append(py::cast(message));
                    else
                        out.append(frame_tuple(k, f)); // not JSON: the caller's wire_message falls back
                }
                return py::make_tuple(out, counts_tuple(counts), front_of(k, fronts));
            },
            py::arg("rows"),
            py::arg("before"),
            "receive() with each frame as its FRAME message (the wire form, rx_counters = before + this "
            "call's counts), or its frame tuple where the meta is not JSON")
        .def_static(
            "float_repr",
            [](double x) {
                std::string out;
                kernels::append_float_repr(out, x);
                return out;
            },
            py::arg("x"),
            "repr(x) of a finite float, as the compiled FRAME message's JSON writes it")
        .def_static(
            "decode_header",
            [](const py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>& bits) -> py::object {
                std::uint32_t seq;
                std::uint8_t flags;
                std::vector<int> shape;
                std::uint16_t scale_code;
                if (!kernels::decode_header(bits.data(), bits.size(), seq, flags, shape, scale_code))
                    return py::none();
                return py::make_tuple(seq, flags, py::tuple(py::cast(shape)), scale_code);
            },
            py::arg("bits"),
            "(seq, flags, shape, scale_code), or None: frame.decode_header of HEADER_BITS hard bits");

    py::class_<ofat_rx_fast, gr::sync_block, gr::block, gr::basic_block, std::shared_ptr<ofat_rx_fast>>(
        m,
        "ofat_rx_fast",
        "The compiled core of ofat_rx (gnuradio.semcom.ofat_rx makes it from its CompiledFrameReceiver's "
        "configured kernels): Nr complex64 inputs, message port frames")
        .def(py::init(&ofat_rx_fast::make), py::arg("kernels"))
        .def("counters",
             &ofat_rx_fast::counters,
             "(samples, detections, frames, header_crc_fail, header_invalid, sequence_mismatch, "
             "frames_unsendable)");
}
