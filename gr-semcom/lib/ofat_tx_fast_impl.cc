/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "ofat_tx_fast_impl.h"
#include "message_dtypes.h"
#include <gnuradio/fft/fft.h>
#include <gnuradio/io_signature.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace gr {
namespace semcom {

namespace {

constexpr int HEADER_BYTES = 15; // frame.HEADER_BYTES: seq, flags, 3 dims, scale code, CRC-16
constexpr int HEADER_BITS = HEADER_BYTES * 8;
constexpr int SCALE_CODE_ZERO = 1 << 15; // frame.SCALE_CODE_ZERO / SCALE_CODE_STEPS
constexpr int SCALE_CODE_STEPS = 1024;

const pmt::pmt_t KEY_META = pmt::mp("meta");
const pmt::pmt_t KEY_TENSORS = pmt::mp("tensors");
const pmt::pmt_t KEY_SHAPES = pmt::mp("shapes");
const pmt::pmt_t KEY_DTYPES = pmt::mp("dtypes");
const pmt::pmt_t KEY_SEQ = pmt::mp("seq");
const pmt::pmt_t TX_SOB = pmt::mp("tx_sob");
const pmt::pmt_t TX_EOB = pmt::mp("tx_eob");
const pmt::pmt_t SEQ_TAG = pmt::mp("semcom_seq");

//! A malformed message (MessageError in messages.py): counted as rejected_malformed.
struct malformed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

using message_dtypes::storage;
using message_dtypes::storage_of;
using dtype_info = message_dtypes::dtype;

double half_to_double(uint16_t h)
{
    const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    double v;
    if (exponent == 0)
        v = std::ldexp(mantissa, -24); // subnormal
    else if (exponent == 31)
        v = mantissa ? NAN : INFINITY;
    else
        v = std::ldexp(mantissa + 1024, exponent - 25);
    return (h & 0x8000) ? -v : v;
}

//! The tensor's values as float64 (numpy's astype), and their energy (the dot product).
template <typename T>
double to_double(const T* src, size_t n, double* dst)
{
    double energy = 0.0;
    for (size_t i = 0; i < n; i++) {
        dst[i] = static_cast<double>(src[i]);
        energy += dst[i] * dst[i];
    }
    return energy;
}

double convert(const pmt::pmt_t& v, const dtype_info& dtype, size_t n, double* dst)
{
    size_t len;
    if (std::strcmp(dtype.name, "float16") == 0) {
        const uint16_t* bits = pmt::u16vector_elements(v, len);
        double energy = 0.0;
        for (size_t i = 0; i < n; i++) {
            dst[i] = half_to_double(bits[i]);
            energy += dst[i] * dst[i];
        }
        return energy;
    }
    switch (dtype.store) {
    case storage::f32: return to_double(pmt::f32vector_elements(v, len), n, dst);
    case storage::f64: return to_double(pmt::f64vector_elements(v, len), n, dst);
    case storage::s8: return to_double(pmt::s8vector_elements(v, len), n, dst);
    case storage::s16: return to_double(pmt::s16vector_elements(v, len), n, dst);
    case storage::s32: return to_double(pmt::s32vector_elements(v, len), n, dst);
    case storage::s64: return to_double(pmt::s64vector_elements(v, len), n, dst);
    case storage::u8: return to_double(pmt::u8vector_elements(v, len), n, dst);
    case storage::u16: return to_double(pmt::u16vector_elements(v, len), n, dst);
    case storage::u32: return to_double(pmt::u32vector_elements(v, len), n, dst);
    case storage::u64: return to_double(pmt::u64vector_elements(v, len), n, dst);
    default: throw malformed("not a real tensor");
    }
}

//! A PMT dict's value for key, or PMT_NIL; throws malformed if `dict` is not a dict of pairs.
pmt::pmt_t dict_get(const pmt::pmt_t& dict, const pmt::pmt_t& key, bool& found)
{
    found = false;
    for (pmt::pmt_t cell = dict; !pmt::is_null(cell); cell = pmt::cdr(cell)) {
        if (!pmt::is_pair(cell) || !pmt::is_pair(pmt::car(cell)))
            throw malformed("not a PMT dict of (key . value) pairs");
        if (pmt::eqv(pmt::caar(cell), key)) {
            found = true;
            return pmt::cdar(cell);
        }
    }
    return pmt::PMT_NIL;
}

void require_dict(const pmt::pmt_t& p, const char* what)
{
    if (!pmt::is_null(p) && !(pmt::is_pair(p) && pmt::is_pair(pmt::car(p))))
        throw malformed(std::string(what) + " must be dicts");
}

uint16_t crc_ccitt(const uint8_t* data, size_t n) // binascii.crc_hqx(data, 0xFFFF)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= static_cast<uint16_t>(data[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                 : static_cast<uint16_t>(crc << 1);
    }
    return crc;
}

} // namespace

ofat_tx_fast::sptr ofat_tx_fast::make(int n_tx,
                                      int fft_len,
                                      int cp_len,
                                      int values_per_element,
                                      int n_header_symbols,
                                      int header_reps,
                                      int max_data_symbols,
                                      const std::vector<int>& data_bins,
                                      const std::vector<gr_complex>& sync_samples,
                                      const std::vector<std::complex<double>>& pilot_grid,
                                      const std::vector<std::complex<double>>& cdd_data,
                                      const std::vector<int>& header_scrambler,
                                      const std::vector<float>& header_filler,
                                      double clip_level,
                                      int gap_samples,
                                      bool idle_fill,
                                      int idle_chunk,
                                      double idle_sleep_s,
                                      int max_queue)
{
    return gnuradio::make_block_sptr<ofat_tx_fast_impl>(n_tx,
                                                        fft_len,
                                                        cp_len,
                                                        values_per_element,
                                                        n_header_symbols,
                                                        header_reps,
                                                        max_data_symbols,
                                                        data_bins,
                                                        sync_samples,
                                                        pilot_grid,
                                                        cdd_data,
                                                        header_scrambler,
                                                        header_filler,
                                                        clip_level,
                                                        gap_samples,
                                                        idle_fill,
                                                        idle_chunk,
                                                        idle_sleep_s,
                                                        max_queue);
}

namespace {
int checked_positive(int value, const char* name)
{
    if (value < 1)
        throw std::invalid_argument(std::string("ofat_tx_fast: ") + name + " must be >= 1");
    return value;
}
} // namespace

ofat_tx_fast_impl::ofat_tx_fast_impl(int n_tx,
                                     int fft_len,
                                     int cp_len,
                                     int values_per_element,
                                     int n_header_symbols,
                                     int header_reps,
                                     int max_data_symbols,
                                     const std::vector<int>& data_bins,
                                     const std::vector<gr_complex>& sync_samples,
                                     const std::vector<std::complex<double>>& pilot_grid,
                                     const std::vector<std::complex<double>>& cdd_data,
                                     const std::vector<int>& header_scrambler,
                                     const std::vector<float>& header_filler,
                                     double clip_level,
                                     int gap_samples,
                                     bool idle_fill,
                                     int idle_chunk,
                                     double idle_sleep_s,
                                     int max_queue)
    : gr::sync_block("semcom_ofat_tx_fast",
                     gr::io_signature::make(0, 0, 0),
                     gr::io_signature::make(checked_positive(n_tx, "n_tx"), n_tx, sizeof(gr_complex))),
      d_n_tx(n_tx),
      d_fft_len(checked_positive(fft_len, "fft_len")),
      d_cp_len(cp_len),
      d_vpe(values_per_element),
      d_n_header(checked_positive(n_header_symbols, "n_header_symbols")),
      d_header_reps(checked_positive(header_reps, "header_reps")),
      d_max_data(checked_positive(max_data_symbols, "max_data_symbols")),
      d_n_carriers(static_cast<int>(data_bins.size())),
      d_symbol_len(fft_len + cp_len),
      d_sync_len(n_tx ? static_cast<int>(sync_samples.size()) / n_tx : 0),
      d_values_per_symbol(static_cast<int>(data_bins.size()) * n_tx * values_per_element),
      d_capacity(d_values_per_symbol * max_data_symbols),
      d_data_bins(data_bins),
      d_sync(sync_samples),
      d_pilot_grid(pilot_grid),
      d_cdd_data(cdd_data),
      d_scrambler(header_scrambler.begin(), header_scrambler.end()),
      d_filler(header_filler),
      d_clip_level(clip_level),
      d_inv_sqrt_fft(1.0 / std::sqrt(static_cast<double>(fft_len))),
      d_gap(gap_samples),
      d_idle_chunk(idle_chunk),
      d_max_queue(max_queue),
      d_idle_fill(idle_fill),
      d_idle_sleep_s(idle_sleep_s),
      d_port(pmt::mp("tensors"))
{
    // The arrays must be what semcom.ofat.frame computes for one layout: checked here, once.
    auto fail = [](const std::string& what) {
        throw std::invalid_argument("ofat_tx_fast: " + what);
    };
    if (cp_len < 0 || cp_len >= fft_len) fail("cp_len must be in [0, fft_len)");
    if (values_per_element != 1 && values_per_element != 2)
        fail("values_per_element must be 1 (real) or 2 (complex)");
    if (d_n_carriers < 1) fail("no data bins");
    for (int bin : data_bins)
        if (bin < 0 || bin >= fft_len) fail("data bins must lie in [0, fft_len)");
    if (sync_samples.size() % n_tx || d_sync_len % d_symbol_len)
        fail("sync_samples must be (n_tx, whole symbols)");
    const size_t n_var = static_cast<size_t>(n_header_symbols + max_data_symbols);
    if (pilot_grid.size() != n_tx * n_var * fft_len)
        fail("pilot_grid must be (n_tx, n_header_symbols + max_data_symbols, fft_len)");
    if (cdd_data.size() != static_cast<size_t>(n_tx * d_n_carriers)) fail("cdd_data must be (n_tx, K)");
    if (header_scrambler.size() != HEADER_BITS) fail("header_scrambler must hold 120 bits");
    if (header_filler.size() != static_cast<size_t>(n_header_symbols * d_n_carriers) ||
        header_reps * HEADER_BITS > n_header_symbols * d_n_carriers)
        fail("header_filler must be (n_header_symbols * K) and hold the header repetitions");
    if (gap_samples < 0) fail("gap_samples must be >= 0");
    if (!(clip_level >= 0.0)) fail("clip_level must be >= 0 (0: no clipping)");
    if (idle_chunk < 1) fail("idle_chunk must be >= 1");
    // An idle work() returns 0 and the scheduler waits for a message or this timer (ms), whichever
    // comes first; see work(). In burst mode GNU Radio's default (250 ms) stays.
    if (idle_fill && idle_sleep_s > 0.0)
        set_blkd_input_timer_value(
            static_cast<unsigned int>(std::max(1.0, std::ceil(idle_sleep_s * 1e3))));

    d_stride = static_cast<size_t>(d_sync_len) + n_var * d_symbol_len + d_gap;
    d_frame.assign(d_stride * n_tx, gr_complex(0, 0));
    d_header_bpsk.assign(d_filler.begin(), d_filler.end());
    d_ring.resize(static_cast<size_t>(std::clamp(max_queue, 1, 64)));

    {
        std::lock_guard<std::mutex> lock(gr::fft::planner::mutex()); // FFTW's planner is not thread safe
        d_ifft_in = static_cast<std::complex<double>*>(fftw_malloc(sizeof(fftw_complex) * fft_len));
        d_ifft_out = static_cast<std::complex<double>*>(fftw_malloc(sizeof(fftw_complex) * fft_len));
        d_ifft = fftw_plan_dft_1d(fft_len,
                                  reinterpret_cast<fftw_complex*>(d_ifft_in),
                                  reinterpret_cast<fftw_complex*>(d_ifft_out),
                                  FFTW_BACKWARD,
                                  FFTW_ESTIMATE);
        if (!d_ifft) throw std::runtime_error("ofat_tx_fast: FFTW could not plan the IFFT");
    }
    message_port_register_in(d_port);
    set_msg_handler(d_port, [this](const pmt::pmt_t& msg) { on_tensor(msg); });
}

ofat_tx_fast_impl::~ofat_tx_fast_impl()
{
    std::lock_guard<std::mutex> lock(gr::fft::planner::mutex());
    fftw_destroy_plan(d_ifft);
    fftw_free(d_ifft_in);
    fftw_free(d_ifft_out);
}

std::map<std::string, uint64_t> ofat_tx_fast_impl::counters() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_counters;
}

int ofat_tx_fast_impl::queued() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return static_cast<int>(d_count);
}

void ofat_tx_fast_impl::count(const std::string& key)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_counters[key]++;
}

void ofat_tx_fast_impl::reject(const std::string& reason, const std::string& detail)
{
    count("rejected_" + reason);
    d_logger->error("tensor rejected ({:s}): {:s}", reason, detail);
}

// ------------------------------------------------------------------ messages
void ofat_tx_fast_impl::on_tensor(const pmt::pmt_t& msg)
{
    // messages.parse_tensor_message's checks, in its order; nothing here may throw out of the handler.
    // No allocation on the good path: names are formatted only for the log of a refused message.
    pmt::pmt_t meta, vector, name_key;
    const dtype_info* dtype = nullptr;
    std::array<uint16_t, 3> shape{ 0, 0, 0 };
    bool shape_fits = true; // at most 3 dims, each 1..65535 (the header's), else refused: "frame"
    size_t n_tensors = 0;
    try {
        if (pmt::is_null(msg) || !pmt::is_dict(msg))
            throw malformed("a tensor message is a PMT dict with keys meta, tensors, shapes");
        require_dict(msg, "message");
        bool has_meta, has_tensors, has_shapes, has_dtypes;
        meta = dict_get(msg, KEY_META, has_meta);
        const pmt::pmt_t tensors = dict_get(msg, KEY_TENSORS, has_tensors);
        const pmt::pmt_t shapes = dict_get(msg, KEY_SHAPES, has_shapes);
        const pmt::pmt_t dtypes = dict_get(msg, KEY_DTYPES, has_dtypes);
        if (!has_meta || !has_tensors || !has_shapes)
            throw malformed("tensor message lacks key(s) meta, tensors or shapes");
        require_dict(meta, "meta, shapes and dtypes");
        require_dict(shapes, "meta, shapes and dtypes");
        require_dict(dtypes, "meta, shapes and dtypes");
        if (!pmt::is_null(tensors) && !(pmt::is_pair(tensors) && pmt::is_pair(pmt::car(tensors))))
            throw malformed("'tensors' must be a dict name -> uniform vector");
        for (pmt::pmt_t cell = tensors; !pmt::is_null(cell); cell = pmt::cdr(cell)) {
            if (!pmt::is_pair(cell) || !pmt::is_pair(pmt::car(cell)))
                throw malformed("'tensors' must be a dict name -> uniform vector");
            const pmt::pmt_t key = pmt::caar(cell), vec = pmt::cdar(cell);
            auto tensor = [&key]() { return "tensor " + pmt::write_string(key); };
            const storage store = storage_of(vec);
            if (store == storage::none) throw malformed(tensor() + " is not a uniform vector");
            bool found;
            const pmt::pmt_t dname = dict_get(dtypes, key, found);
            const dtype_info* d = message_dtypes::own_dtype(store);
            if (found && !pmt::is_null(dname)) {
                if (!pmt::is_symbol(dname)) throw malformed(tensor() + ": dtype is not a name");
                const std::string text = pmt::symbol_to_string(dname);
                if (!text.empty()) d = message_dtypes::named(text);
                if (!d) throw malformed(tensor() + ": unknown dtype " + text);
            }
            if (d->store != store)
                throw malformed(tensor() + ": PMT vector does not hold " + d->name + " data");
            const pmt::pmt_t dims = dict_get(shapes, key, found);
            if (!pmt::is_vector(dims) && !pmt::is_tuple(dims))
                throw malformed(tensor() + ": missing or invalid shape");
            const size_t ndim = pmt::length(dims);
            std::array<uint16_t, 3> this_shape{ 0, 0, 0 };
            bool fits = ndim <= 3;
            uint64_t n = 1;
            for (size_t i = 0; i < ndim; i++) {
                const pmt::pmt_t dim = pmt::is_vector(dims) ? pmt::vector_ref(dims, i)
                                                            : pmt::tuple_ref(dims, i);
                uint64_t value;
                if (pmt::is_uint64(dim))
                    value = pmt::to_uint64(dim);
                else if (pmt::is_integer(dim) && pmt::to_long(dim) >= 0)
                    value = static_cast<uint64_t>(pmt::to_long(dim));
                else
                    throw malformed(tensor() + ": missing or invalid shape");
                fits = fits && value >= 1 && value <= 0xFFFF;
                if (fits) this_shape[i] = static_cast<uint16_t>(value);
                n = (value && n > UINT64_MAX / value) ? UINT64_MAX : n * value;
            }
            if (n != pmt::length(vec))
                throw malformed(tensor() + ": shape does not match its values");
            if (n_tensors++ == 0) {
                name_key = key;
                vector = vec;
                dtype = d;
                shape = this_shape;
                shape_fits = fits;
            }
        }
    } catch (const malformed& err) {
        reject("malformed", err.what());
        return;
    } catch (const std::exception& err) { // a PMT that is not what it claims to be
        reject("malformed", std::string("PMT not convertible: ") + err.what());
        return;
    }
    auto name = [&name_key]() { return pmt::write_string(name_key); };
    if (n_tensors != 1) {
        reject("tensor_count", "one tensor per frame, got " + std::to_string(n_tensors));
        return;
    }
    uint64_t seq = UINT64_MAX;
    try {
        bool found;
        const pmt::pmt_t value = dict_get(meta, KEY_SEQ, found);
        if (pmt::is_uint64(value))
            seq = pmt::to_uint64(value);
        else if (pmt::is_integer(value) && pmt::to_long(value) >= 0)
            seq = static_cast<uint64_t>(pmt::to_long(value));
    } catch (const std::exception&) {
    }
    if (seq > 0xFFFFFFFFull) {
        reject("bad_seq", "meta['seq'] must be an integer in [0, 2^32)");
        return;
    }
    if (!dtype->real) {
        reject("bad_dtype",
               "tensor " + name() + " has dtype " + dtype->name + "; OFAT carries real values");
        return;
    }
    const size_t n_values = pmt::length(vector);
    if (n_values > static_cast<size_t>(d_capacity)) {
        reject("oversize",
               "seq " + std::to_string(seq) + ": tensor " + name() + " has " +
                   std::to_string(n_values) + " values, one frame carries at most " +
                   std::to_string(d_capacity));
        return;
    }
    // Convert into the next free slot (grown by doubling when the ring is full; no allocation once
    // every slot has held a frame of this size).
    if (d_count == d_ring.size()) {
        std::vector<pending_frame> grown(d_ring.size() * 2);
        for (size_t i = 0; i < d_count; i++)
            grown[i] = std::move(d_ring[(d_head + i) % d_ring.size()]);
        std::lock_guard<std::mutex> lock(d_mutex);
        d_ring.swap(grown);
        d_head = 0;
    }
    pending_frame& f = d_ring[(d_head + d_count) % d_ring.size()];
    if (f.values.size() < n_values) f.values.resize(n_values);
    const double energy = convert(vector, *dtype, n_values, f.values.data());
    // frame.payload_scale and frame.encode_scale, the same double arithmetic.
    const size_t n_elements = (n_values + d_vpe - 1) / d_vpe;
    double scale = 1.0;
    if (energy != 0.0 && n_elements != 0)
        scale = std::sqrt(static_cast<double>(n_elements) / (static_cast<double>(d_n_tx) * energy));
    long code = -1;
    if (std::isfinite(scale) && scale > 0)
        code = SCALE_CODE_ZERO + std::lrint(std::log2(scale) * SCALE_CODE_STEPS);
    if (code < 0 || code > 0xFFFF) {
        bool finite = true;
        for (size_t i = 0; i < n_values && finite; i++)
            finite = std::isfinite(f.values[i]);
        if (!finite)
            reject("nonfinite",
                   "seq " + std::to_string(seq) + ": tensor " + name() + " contains NaN or Inf");
        else
            reject("frame",
                   "seq " + std::to_string(seq) +
                       ": payload power out of the header's scale range 2^+-32");
        return;
    }
    if (!shape_fits) {
        reject("frame",
               "seq " + std::to_string(seq) + ": payload shape not representable: at most 3 dims, "
                                              "each 1..65535 (reshape the tensor before sending)");
        return;
    }
    if (static_cast<int>(d_count) >= d_max_queue) {
        count("dropped_backpressure");
        d_logger->warn("seq {:d} dropped: {:d} frames already queued", seq, d_max_queue);
        return;
    }
    f.seq = static_cast<uint32_t>(seq);
    f.dims = shape;
    f.scale_code = static_cast<uint16_t>(code);
    f.scale = std::pow(2.0, static_cast<double>(code - SCALE_CODE_ZERO) / SCALE_CODE_STEPS);
    f.n_values = n_values;
    std::lock_guard<std::mutex> lock(d_mutex);
    d_count++;
    d_counters["frames_queued"]++;
}

// ------------------------------------------------------------------ modulation
void ofat_tx_fast_impl::header_bits(const pending_frame& f)
{
    // frame._header_bytes: "<IB3HH" (seq, flags = 0, dims, scale code) then CRC-16/CCITT, little endian.
    uint8_t raw[HEADER_BYTES];
    raw[0] = f.seq & 0xff;
    raw[1] = (f.seq >> 8) & 0xff;
    raw[2] = (f.seq >> 16) & 0xff;
    raw[3] = (f.seq >> 24) & 0xff;
    raw[4] = 0;
    for (int i = 0; i < 3; i++) {
        raw[5 + 2 * i] = f.dims[i] & 0xff;
        raw[6 + 2 * i] = f.dims[i] >> 8;
    }
    raw[11] = f.scale_code & 0xff;
    raw[12] = f.scale_code >> 8;
    const uint16_t crc = crc_ccitt(raw, 13);
    raw[13] = crc & 0xff;
    raw[14] = crc >> 8;
    // Bits MSB first (np.unpackbits), scrambled, BPSK, header_reps copies; the filler after them
    // stays as the constructor wrote it.
    for (int bit = 0; bit < HEADER_BITS; bit++) {
        const int b = ((raw[bit >> 3] >> (7 - (bit & 7))) & 1) ^ d_scrambler[bit];
        const float bpsk = b ? -1.0f : 1.0f;
        for (int rep = 0; rep < d_header_reps; rep++)
            d_header_bpsk[rep * HEADER_BITS + bit] = bpsk;
    }
}

void ofat_tx_fast_impl::modulate(const pending_frame& f)
{
    // frame.modulate_frames for one frame, in the same float64 arithmetic: sync samples, then header +
    // data symbols (pilot grid, header BPSK x CDD, the values times the frame's scale on the data
    // bins), IFFT times 1/sqrt(N) (norm="ortho"), clipping of the data samples, one rounding to
    // complex64, cyclic prefix.
    const int n_data = std::max<int>(
        1, static_cast<int>((f.n_values + d_values_per_symbol - 1) / d_values_per_symbol));
    const int n_var = d_n_header + n_data;
    const size_t frame_len = static_cast<size_t>(d_sync_len) + n_var * d_symbol_len;
    d_frame_total = frame_len + d_gap;
    header_bits(f);
    const double* values = f.values.data();
    const size_t n = f.n_values;
    const double scale = f.scale;
    auto value = [values, n, scale](size_t i) { return i < n ? values[i] * scale : 0.0; };
    const size_t grid_rows = static_cast<size_t>(d_n_header + d_max_data);
    const double level = d_clip_level;
    for (int a = 0; a < d_n_tx; a++) {
        gr_complex* out = d_frame.data() + a * d_stride;
        std::memcpy(out, d_sync.data() + static_cast<size_t>(a) * d_sync_len,
                    sizeof(gr_complex) * d_sync_len);
        const std::complex<double>* cdd = d_cdd_data.data() + static_cast<size_t>(a) * d_n_carriers;
        for (int s = 0; s < n_var; s++) {
            std::copy_n(d_pilot_grid.data() + (a * grid_rows + s) * d_fft_len, d_fft_len, d_ifft_in);
            if (s < d_n_header) {
                const float* bpsk = d_header_bpsk.data() + static_cast<size_t>(s) * d_n_carriers;
                for (int k = 0; k < d_n_carriers; k++)
                    d_ifft_in[d_data_bins[k]] = static_cast<double>(bpsk[k]) * cdd[k];
            } else {
                // value i = (s * K + k) * Nt + a (complex mode: element i holds values 2i, 2i+1)
                const size_t first = static_cast<size_t>(s - d_n_header) * d_n_carriers;
                for (int k = 0; k < d_n_carriers; k++) {
                    const size_t e = (first + k) * d_n_tx + a;
                    d_ifft_in[d_data_bins[k]] =
                        d_vpe == 2 ? std::complex<double>(value(2 * e), value(2 * e + 1))
                                   : std::complex<double>(value(e), 0.0);
                }
            }
            fftw_execute(d_ifft);
            const bool clip = level > 0.0 && s >= d_n_header;
            gr_complex* symbol = out + d_sync_len + static_cast<size_t>(s) * d_symbol_len;
            for (int i = 0; i < d_fft_len; i++) {
                std::complex<double> x = d_ifft_out[i] * d_inv_sqrt_fft;
                if (clip) {
                    // papr.clip(symbols="data"): above the level, scaled onto it with its phase kept
                    const double mag = std::abs(x);
                    if (mag > level) x *= level / mag;
                }
                symbol[d_cp_len + i] = gr_complex(static_cast<float>(x.real()), static_cast<float>(x.imag()));
            }
            std::copy_n(symbol + d_fft_len, d_cp_len, symbol);
        }
        std::fill(out + frame_len, out + d_frame_total, gr_complex(0, 0));
    }
    d_frame_seq = f.seq;
}

// ------------------------------------------------------------------ stream
void ofat_tx_fast_impl::tag_all(uint64_t offset, const pmt::pmt_t& key, const pmt::pmt_t& value)
{
    for (int port = 0; port < d_n_tx; port++)
        add_item_tag(port, offset, key, value);
}

int ofat_tx_fast_impl::work(int noutput_items,
                            gr_vector_const_void_star& input_items,
                            gr_vector_void_star& output_items)
{
    const size_t n_out = static_cast<size_t>(noutput_items);
    const uint64_t base = nitems_written(0);
    size_t written = 0;
    while (written < n_out) {
        if (d_pos >= d_frame_total) {
            if (d_count == 0) break;
            modulate(d_ring[d_head]);
            d_pos = 0;
            std::lock_guard<std::mutex> lock(d_mutex); // its first sample is written below
            d_head = (d_head + 1) % d_ring.size();
            d_count--;
        }
        const size_t take = std::min(n_out - written, d_frame_total - d_pos);
        for (int port = 0; port < d_n_tx; port++)
            std::memcpy(static_cast<gr_complex*>(output_items[port]) + written,
                        d_frame.data() + port * d_stride + d_pos,
                        sizeof(gr_complex) * take);
        if (d_pos == 0) {
            tag_all(base + written, TX_SOB, pmt::PMT_T);
            tag_all(base + written, SEQ_TAG, pmt::from_uint64(d_frame_seq));
        }
        d_pos += take;
        written += take;
        if (d_pos == d_frame_total) { // EOB after the gap: the burst is frame + gap, closed
            tag_all(base + written - 1, TX_EOB, pmt::PMT_T);
            count("frames_sent");
        }
    }
    if (written > 0) {
        d_idle = false;
        return static_cast<int>(written);
    }
    if (!d_idle_fill) return 0; // burst mode: the scheduler waits for the next message
    // Continuous mode: idle_chunk zeros once no frame came for idle_sleep_s, and again every
    // idle_sleep_s while none comes. Until then return 0: the scheduler handles a message at once
    // (a sleep here held it up to idle_sleep_s) or calls again when the input timer runs out.
    const auto now = std::chrono::steady_clock::now();
    if (!d_idle) {
        d_idle = true;
        d_idle_since = now;
    }
    if (now - d_idle_since < std::chrono::duration<double>(d_idle_sleep_s)) return 0;
    d_idle_since = now;
    written = std::min(n_out, static_cast<size_t>(d_idle_chunk));
    for (int port = 0; port < d_n_tx; port++)
        std::fill_n(static_cast<gr_complex*>(output_items[port]), written, gr_complex(0, 0));
    return static_cast<int>(written);
}

} /* namespace semcom */
} /* namespace gr */
