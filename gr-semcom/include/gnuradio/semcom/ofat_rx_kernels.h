/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SEMCOM_OFAT_RX_KERNELS_H
#define INCLUDED_SEMCOM_OFAT_RX_KERNELS_H

#include <gnuradio/semcom/api.h>
#include <gnuradio/sync_block.h>
#include <pmt/pmt.h>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace gr {
namespace semcom {

/*!
 * \brief The hot methods of semcom.ofat.receiver.FrameReceiver, compiled (not a block).
 * \ingroup semcom
 *
 * gnuradio.semcom.compiled_receiver.CompiledFrameReceiver calls these in place of the numpy methods
 * of the same names; each computes what its numpy method computes (tested against it within float32
 * rounding on recorded inputs). Layout-derived arrays (the delay-tap basis, its Gram matrix, the
 * shifted and derivative bases) are computed by the receiver in Python and passed in: the layout has
 * one source (semcom.ofat.frame).
 *
 * * schmidl_cox: the Schmidl & Cox metric M(d) = |P(d)|^2 / R(d)^2 and P(d) over the Nr antennas,
 *   from running sums in double precision of the complex64 products (as the numpy method's cumsums).
 * * windows_fft: the CFO-removed FFT windows of a run of OFDM symbols (FFTW, double precision, the
 *   ramp rounded to complex64 first, as numpy does).
 * * fit_taps: step 3's delay-tap denoiser: the coarse Mallows'-Cp search over the shifted grids, the
 *   Newton refinement of the fractional delay, the greedy selection on the Gram matrix, the fit.
 * * first_above, plateau: the search's threshold crossing and the plateau (_first_above, _plateau).
 * * front, data (after set_frame): the default configuration's whole decode of a frame in two calls,
 *   FrameReceiver._new_front (all of the above per frame plus the LS channel, noise, CDD channel and
 *   header LLRs and their hard bits) and _frame_data (data symbols, common phase, Y and H).
 *
 * One object serves one receiver (one thread): the FFT's buffers, plans and scratch are its own.
 */
class SEMCOM_API ofat_rx_kernels
{
public:
    using cd = std::complex<double>;
    using cf = std::complex<float>;

    struct fit_result {
        std::vector<int> chosen; // candidate tap indices in the order chosen
        std::vector<cd> fit;     // (Nu, P) row-major
        double fraction = 0.0;   // fractional delay of their grid (samples)
    };

    //! What FrameReceiver._front computes for one frame (the default configuration: see set_frame).
    struct front_result {
        double cfo = 0.0;                // final CFO, cycles per sample
        std::vector<cd> h;               // (Nr, Nt, Nu) denoised channel estimate
        double noise_var = 0.0, err_var = 0.0;
        bool own_training = true;
        std::vector<cd> g;               // (Nr, Nu) effective channel of the CDD header / pilots
        std::vector<cd> yh;              // (Nr, Hs, Nu) header symbols, CFO removed
        std::vector<double> llr;         // (Hs, K) header LLRs (positive = bit 0)
        std::vector<std::uint8_t> header_bits; // frame.combine_header_llrs of llr: the descrambled hard bits
        std::vector<int> chosen;         // delay taps kept (candidate indices)
        double fraction = 0.0;           // their grid's fractional delay
    };

    //! One frame the streaming receive() decoded (its header's CRC passed and its size fits).
    struct stream_frame {
        std::uint32_t seq = 0;
        std::uint8_t flags = 0;
        std::vector<int> shape;          // the header's dims before its first 0 (at most 3)
        std::uint16_t scale_code = 0;
        int n_data = 0;                  // data symbols S
        std::vector<cf> y;               // (K, Nr, S) complex64
        std::vector<cf> h;               // (K, Nr, Nt) complex64
        double noise_var = 0.0, snr_db = 0.0, cfo = 0.0, metric = 0.0, err_var = 0.0;
        long long start = 0;             // absolute sample index of the frame's first sample
    };

    //! FrameReceiver's counters (RxCounters), as counts since the last receive() call.
    struct stream_counts {
        long long samples = 0, detections = 0, frames = 0, header_crc_fail = 0, header_invalid = 0,
                  sequence_mismatch = 0;
    };

    /*!
     * \param n_rx receive antennas
     * \param fft_len FFT length
     * \param symbol_len CP + FFT length
     * \param signed_used (Nu) signed subcarrier index of each used bin, in used-bin order
     * \param candidate_taps (C) the integer delays of the basis' columns
     * \param basis (Nu, C) row-major: exp(-2 pi j k t / fft) of the candidate taps t
     * \param coarse_basis_h (G, C, Nu): basis^H times the delay ramp of each coarse fraction
     * \param derivative_basis_h (3, C, Nu): basis^H times 1, j omega, -omega^2
     * \param coarse_fractions (G) the coarse shifts, one of them 0.0 (the integer grid)
     * \param coarse_taps most taps the coarse search scores per shift
     * \param newton_steps Newton steps of the fraction's refinement
     */
    ofat_rx_kernels(int n_rx,
                    int fft_len,
                    int symbol_len,
                    const std::vector<int>& signed_used,
                    const std::vector<int>& candidate_taps,
                    const std::vector<cd>& basis,
                    const std::vector<cd>& coarse_basis_h,
                    const std::vector<cd>& derivative_basis_h,
                    const std::vector<double>& coarse_fractions,
                    int coarse_taps,
                    int newton_steps);
    ~ofat_rx_kernels();
    ofat_rx_kernels(const ofat_rx_kernels&) = delete;
    ofat_rx_kernels& operator=(const ofat_rx_kernels&) = delete;

    //! x: Nr rows of n samples, row r at x + r * row_stride; metric, p: n - fft_len + 1 values.
    void schmidl_cox(const cf* x, std::ptrdiff_t row_stride, std::size_t n, double* metric, cd* p) const;

    //! Symbols [first_sym, first_sym + n_sym) whose first sample is column `start` of the buffer
    //! (Nr rows at row_stride): out (Nr, n_sym, fft_len), the CFO ramp referenced to the preamble.
    void windows_fft(const cf* buf,
                     std::ptrdiff_t row_stride,
                     std::size_t start,
                     int first_sym,
                     int n_sym,
                     double cfo,
                     cd* out);

    //! Step 3 on pairs (Nu, P) row-major with the tap threshold (see FrameReceiver._fit_taps).
    //! zoomed: the pairs' zoom_transform is already done (front() does it for the far taps).
    fit_result fit_taps(const cd* pairs, int n_pairs, double threshold, bool zoomed = false);

    /*!
     * \brief The frame layout for front() and data(), every array computed by the receiver in Python
     * from semcom.ofat.frame: used_bins (Nu); the integer CFO candidates int_shifts (S) with their
     * bins shift_bins (S, Nu), the adjacent used pairs (A) and conj(training sequence) (Nu); the
     * training cover conj(cover) (T, Nt) and sequence (Nu); far_basis_h (F, Nu) of the far_taps (F); cdd (Nt, Nu); the
     * pilot and data positions in the used bins; pilot_table (n_max, n_pilots) = pilot_values(n_max, 0);
     * header_reps and header_scrambler (HEADER_BITS) for the header's hard bits (combine_header_llrs).
     * Covers train_reps >= 2 with the repetitions' noise estimate (front() requires it).
     */
    void set_frame(int n_tx,
                   int n_preamble_symbols,
                   int n_train_symbols,
                   int n_header_symbols,
                   const std::vector<int>& used_bins,
                   const std::vector<int>& int_shifts,
                   const std::vector<int>& shift_bins,
                   const std::vector<int>& adjacent,
                   const std::vector<cd>& train_conj,
                   const std::vector<cd>& cover_conj,
                   const std::vector<cd>& training_sequence,
                   const std::vector<cd>& far_basis_h,
                   const std::vector<int>& far_taps,
                   const std::vector<cd>& cdd,
                   const std::vector<int>& pilot_index,
                   const std::vector<int>& data_index,
                   const std::vector<double>& pilot_table,
                   bool linear_phase,
                   int header_reps,
                   const std::vector<int>& header_scrambler);

    //! FrameReceiver._front from the fractional CFO: the frame's preamble body at column `body` of
    //! the buffer (n_cols columns; its training and header symbols must be in it).
    front_result
    front(const cf* buf, std::ptrdiff_t row_stride, std::size_t n_cols, std::size_t body, double cfo);

    //! The data part of FrameReceiver._decode_at (no SFO tracking): y_out (K, Nr, n_data) and
    //! h_out (K, Nr, Nt) complex64 from the front's g, yh, h; returns the signal power per element.
    double data(const cf* buf,
                std::ptrdiff_t row_stride,
                std::size_t n_cols,
                std::size_t body,
                double cfo,
                const cd* g,
                const cd* yh,
                const cd* h,
                int n_data,
                cf* y_out,
                cf* h_out);

    /*!
     * \brief FrameReceiver.process for the default configuration in one call (after set_frame and
     * set_stream): the Nr rows of m samples are appended to the kernels' own buffer and every frame they
     * complete is decoded by FrameReceiver's search (S&C metric kept per position, threshold crossing,
     * plateau, a frame waiting for its data keeps its front), front(), the header check
     * (decode_header below) and data(). counts: what happened since the last call (RxCounters).
     */
    std::vector<stream_frame> receive(const cf* const* rows, std::size_t m, stream_counts& counts);

    /*!
     * \brief The search's parameters (FrameReceiver): the S&C threshold, the plateau window (positions),
     * the CP length, values per data symbol and the frame's capacity (layout.values_per_symbol, capacity).
     */
    void set_stream(double threshold, int plateau_window, int cp_len, int values_per_symbol, long long capacity);
    bool streaming() const { return d_plateau_window > 0; }
    //! The delay taps (candidate indices, in the order chosen) and fraction of the last front receive()
    //! computed, and how many fronts it has computed (the receiver's last_taps when that count moved).
    const std::vector<int>& last_chosen() const { return d_last_chosen; }
    double last_fraction() const { return d_last_fraction; }
    long long fronts() const { return d_fronts; }

    /*!
     * \brief The FRAME messages of receive(): ofat_rx.frame_message's wire form (messages.wire_message:
     * the pair (car, u8vector of the wire parts, each after its u32 little-endian length)) built here.
     * car: the wire form's car (messages.py makes it); wire_header: the 16-byte wire header of a FRAME
     * with two tensors and seq 0 (semcom.wire.HEADER), whose last 8 bytes receive each frame's seq.
     */
    void set_message(pmt::pmt_t car, const std::string& wire_header);
    bool messages_configured() const { return d_wire_header.size() == 16; }

    /*!
     * \brief One frame's FRAME message (see set_message): meta as ReceivedFrame.meta() with rx_counters =
     * totals, in the JSON text json.JSONEncoder writes (wire.encode_arrays), tensors Y and H. False
     * (message untouched) where a meta value is not finite: JSON cannot hold it (wire_message's fallback).
     */
    bool frame_message(const stream_frame& f, const stream_counts& totals, pmt::pmt_t& message) const;

    //! repr(x) of a finite float (Python's shortest round-trip text, as json writes it), appended to out.
    static void append_float_repr(std::string& out, double x);

    /*!
     * \brief frame.decode_header on HEADER_BITS (120) descrambled hard bits: false when the CRC-16/CCITT
     * (binascii.crc_hqx from 0xFFFF over the first 13 bytes, little-endian after them) fails or a dim
     * follows a zero dim; else the fields ("<IB3HH": seq, flags, 3 dims, scale code), shape = the dims
     * before the first zero.
     */
    static bool decode_header(const std::uint8_t* bits,
                              std::size_t n_bits,
                              std::uint32_t& seq,
                              std::uint8_t& flags,
                              std::vector<int>& shape,
                              std::uint16_t& scale_code);

    //! FrameReceiver._first_above: index of the first metric value above threshold, -1 if none.
    static std::ptrdiff_t first_above(const double* metric, std::size_t n, double threshold);

    //! FrameReceiver._plateau on a window of n metric values and P: the peak, the middle of the
    //! 90 % plateau (its first and last position averaged, rounded down) and P summed over the plateau.
    static std::tuple<double, std::size_t, cd> plateau(const double* metric, const cd* p, std::size_t n);

    bool frame_configured() const { return d_n_tx > 0; }
    int data_carriers() const { return static_cast<int>(d_data_index.size()); }
    //! The dimensions the kernels were made with (the bindings shape and check arrays by them).
    int n_rx() const { return d_n_rx; }
    int fft_len() const { return d_fft_len; }
    int symbol_len() const { return d_symbol_len; }
    int n_tx() const { return d_n_tx; }                 // 0 before set_frame
    int n_header_symbols() const { return d_n_head; }   // 0 before set_frame

private:
    const int d_n_rx, d_fft_len, d_symbol_len, d_nu, d_c, d_g, d_coarse_taps, d_newton_steps;
    std::vector<double> d_signed_used;
    std::vector<cd> d_basis, d_basis_h, d_gram, d_coarse_basis_h, d_derivative_basis_h;
    std::vector<double> d_coarse_fractions;
    std::vector<int> d_mirror;                 // used-bin index of -k for bin k, -1 where not used
    mutable std::vector<cd> d_ramp_cache;      // delay_ramp's last ramp and its fraction
    mutable double d_ramp_fraction = 0.0;
    int d_grid_shift = 0;
    std::vector<float> d_ramp;          // the CFO ramp of one windows_fft call, complex64 interleaved
    std::vector<double> d_window_ramp;  // exp(-2 pi j cfo i), i < fft_len (real parts, then imaginary)
    // schmidl_cox's scratch (reused: no allocation per call)
    mutable std::vector<float> d_sc_energy, d_sc_prod;
    mutable std::vector<double> d_sc_ce;
    mutable std::vector<cd> d_sc_cp;
    cd* d_fft_in = nullptr;
    cd* d_fft_out = nullptr;
    void* d_plan = nullptr; // fftw_plan (fftw3.h stays out of the public header)
    // The coarse search's G shifted correlations of one pair are one inverse DFT of length G * fft
    // (taps t + g / G - 1/2 = (G t + g - G/2) / G samples): used when coarse_basis_h has that form
    // (checked on construction), else the direct products.
    std::vector<int> d_coarse_index; // (G, C): the DFT output index of shift g, tap c
    int d_zoom_len = 0;              // G * fft, 0: direct products
    int d_coarse_run = -1;           // output of shift 0, tap 0 where shift g, tap c is at it + G c + g
    cd* d_zoom = nullptr;            // (P, zoom_len) transforms, grown on demand
    cd* d_zoom_in = nullptr;         // (zoom_len) input, zero outside the used bins
    int d_zoom_rows = 0;
    void* d_zoom_plan = nullptr;

    // set_frame's layout
    int d_n_tx = 0, d_t0 = 0, d_n_train = 0, d_n_head = 0;
    bool d_linear_phase = true;
    std::vector<int> d_used_bins, d_int_shifts, d_shift_bins, d_adjacent, d_pilot_index, d_data_index;
    std::vector<cd> d_ls_scale;      // sqrt(Nt) / T / training_sequence: the LS estimate's factor
    // conj(c_a) c_a+1 of the training sequence on each adjacent pair a (real, imaginary parts), and the
    // first bin of each pair under each integer shift (S, A)
    std::vector<double> d_adjacent_code_re, d_adjacent_code_im;
    std::vector<int> d_adjacent_bins;
    std::vector<int> d_far_index;    // the far taps' zoom_transform indices (empty: direct products)
    std::vector<cd> d_train_conj, d_cover_conj, d_training_sequence, d_far_basis_h, d_cdd;
    std::vector<double> d_pilot_table;
    int d_header_reps = 1;
    std::vector<int> d_header_scrambler;
    int d_pilot_rows = 0;
    std::vector<cd> d_full; // windows_fft scratch
    std::vector<cd> d_symbols; // front()'s training symbols yt, data()'s yd (reused: no zeroed allocation per call)

    // receive()'s state, FrameReceiver's: the buffer (Nr rows of d_store_cols, columns [lo, hi) in use,
    // column lo is absolute sample buf_start), where the search resumes, the S&C metric and P kept from
    // absolute position metric_start (d_metric[d_metric_lo:]), the front of a frame waiting for its data.
    double d_threshold = 0.0;
    int d_plateau_window = 0, d_cp_len = 0, d_values_per_symbol = 1;
    long long d_capacity = 0;
    std::vector<cf> d_store;
    std::size_t d_store_cols = 0, d_lo = 0, d_hi = 0;
    long long d_buf_start = 0, d_search_from = 0, d_metric_start = 0;
    std::vector<double> d_metric;
    std::vector<cd> d_p;
    std::size_t d_metric_lo = 0;
    bool d_has_pending = false, d_pending_valid = false;
    long long d_pending_body = 0;
    front_result d_pending;
    std::uint32_t d_pending_seq = 0;
    std::uint8_t d_pending_flags = 0;
    std::vector<int> d_pending_shape;
    std::uint16_t d_pending_scale = 0;
    std::vector<int> d_last_chosen;
    double d_last_fraction = 0.0;
    long long d_fronts = 0;
    pmt::pmt_t d_message_car;
    std::string d_wire_header;
    mutable std::vector<std::uint8_t> d_message_bytes; // frame_message's wire parts (reused)
    enum class step { wait, more, frame };
    void append(const cf* const* rows, std::size_t m);
    void trim(long long keep_from_abs);
    long long metric_end() const;                  // absolute position after the last kept metric value
    void extend_metric(long long from, long long upto); // the metric kept up to position upto
    step wait_from(long long rel);      // search again from buffer column rel once more samples came
    step skip_to(long long abs_index);  // search on from absolute sample abs_index now
    step try_one(stream_frame& frame, stream_counts& counts);
    step decode_at(long long first, long long body, double cfo, double peak, stream_frame& frame,
                   stream_counts& counts);

    std::vector<double> phases(const cd* y, int n_sym, const cd* g) const;
    std::vector<cd> delay_ramp(double fraction) const;
    std::vector<cd> gram_inverse(const std::vector<int>& chosen) const;
    std::vector<int> select_taps(const std::vector<cd>& pairs,
                                 int n_pairs,
                                 double threshold,
                                 std::vector<cd>& fit,
                                 bool zoomed = false) const;
    std::vector<cd> fit_from(const std::vector<cd>& inv,
                             const std::vector<cd>& c_chosen,
                             const std::vector<int>& chosen,
                             int n_pairs) const;
    std::vector<cd> fit_on(const std::vector<cd>& pairs, int n_pairs, const std::vector<int>& chosen) const;
    double coarse_fraction(const cd* pairs, int n_pairs, double tap_penalty, std::vector<int>& strongest) const;
    void zoom_transform(const cd* pairs, int n_pairs);
    void coarse_correlations(const cd* pairs, int n_pairs, int g, std::vector<cd>& c) const;
    double refine_fraction(const cd* pairs, int n_pairs, const std::vector<int>& chosen, double fraction) const;
};

/*!
 * \brief The compiled core of ofat_rx (gnuradio.semcom.ofat_rx runs it in the default configuration):
 * Nr complex64 inputs, message port "frames". Each work() is one ofat_rx_kernels::receive on the input
 * buffers and one FRAME message per decoded frame (ofat_rx_kernels::frame_message, rx_counters as they
 * are after the call), published here: no Python per call or per frame.
 * \ingroup semcom
 *
 * The kernels come configured (set_frame, set_stream, set_message) by the receiver in Python
 * (CompiledFrameReceiver), which is not used while the block runs. A frame whose meta JSON cannot hold
 * (a non-finite value) is not sent and is counted frames_unsendable (ofat_rx's Python block hands it on in
 * the PMT dict form, which tensor_sink cannot send either and counts).
 */
class SEMCOM_API ofat_rx_fast : virtual public gr::sync_block
{
public:
    typedef std::shared_ptr<ofat_rx_fast> sptr;

    //! kernels: set_frame, set_stream and set_message done (throws std::invalid_argument otherwise)
    static sptr make(std::shared_ptr<ofat_rx_kernels> kernels);

    //! RxCounters' fields in order (samples, detections, frames, header_crc_fail, header_invalid,
    //! sequence_mismatch), then frames_unsendable.
    virtual std::vector<long long> counters() const = 0;
};

} // namespace semcom
} // namespace gr

#endif /* INCLUDED_SEMCOM_OFAT_RX_KERNELS_H */
