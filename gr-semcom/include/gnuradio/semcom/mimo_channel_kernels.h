/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SEMCOM_MIMO_CHANNEL_KERNELS_H
#define INCLUDED_SEMCOM_MIMO_CHANNEL_KERNELS_H

#include <gnuradio/random.h>
#include <gnuradio/semcom/api.h>
#include <complex>
#include <cstdint>
#include <vector>

namespace gr {
namespace semcom {

/*!
 * \brief The per-sample work of gnuradio.semcom.mimo_channel, compiled (not a block).
 * \ingroup semcom
 *
 * mimo_channel (Python) keeps everything per frame: the realisations (drawn by
 * semcom.ofat.channel_model.ChannelSpec in numpy), where they switch (tx_sob tags, block
 * boundaries), the CFO phase across realisations, the truth messages, the tags. Per work() call it
 * calls begin() once, filter() once per stretch of samples under one realisation (set_realisation()
 * between them), and finish() once; those touch every sample, Python none.
 *
 * * begin: input x_t = the history (the last history_len raw input samples, zeros before the stream)
 *   followed by the n new samples; TX IQ imbalance k1 x + k2 conj(x) per transmit antenna when set.
 * * filter(s0, s1): y_r[s] = rot_r(s) sum_t sum_k taps[r, t, k] x_t[s - D - k] for s in [s0, s1),
 *   rot_r(s) = exp(j (phase + 2 pi cfo (s - s0) + drift_r (start + s))), the FIR in float32 as numpy's
 *   complex64 product, the rotation from the phase in double precision (recomputed exactly every 256
 *   samples, a phasor recurrence between).
 * * finish: + AWGN of variance noise_var per complex sample (half per real part), drawn sample-major
 *   (for each sample, each receive antenna: real then imaginary part) from GNU Radio's
 *   xoroshiro128+ generator through a ziggurat (Marsaglia & Tsang 2000, 128 layers, the layer index
 *   and the value from separate bits of one 64-bit draw), so the noise depends on the seed and the
 *   stream, not on how work() calls cut it; then RX IQ imbalance and a DC offset. Why not
 *   std::normal_distribution<float>: measured 25 ns per normal here (its polar method and the long
 *   double generate_canonical), 8x the whole FIR of a 2x2 pair per sample; the ziggurat ~3 ns.
 *   This is another noise stream than the numpy path's (numpy's Generator): the tests compare the
 *   two paths exactly with the noise off and the noise statistically (variance, whiteness).
 *
 * The input and output pointers of begin() are used until finish(): the buffers of one work() call.
 * One object serves one block (one thread).
 */
class SEMCOM_API mimo_channel_kernels
{
public:
    using cf = std::complex<float>;

    /*!
     * \param n_tx transmit antennas (inputs)
     * \param n_rx receive antennas (outputs)
     * \param history_len past input samples kept: the longest FIR + integer delay - 1
     * \param seed seed of the noise generator
     */
    mimo_channel_kernels(int n_tx, int n_rx, int history_len, std::uint64_t seed);

    //! taps (Nr, Nt, length) row-major (per-channel offsets folded in), integer delay D, CFO (cycles/sample).
    void set_realisation(const std::vector<cf>& taps, int length, int int_delay, double cfo);
    //! Per receive antenna phase drift (rad/sample); all zero: none.
    void set_drift(const std::vector<double>& drift);
    //! TX IQ imbalance k1 x + k2 conj(x), (Nt) each; empty vectors: off.
    void set_tx_iq(const std::vector<cf>& k1, const std::vector<cf>& k2);
    //! RX IQ imbalance, (Nr) each; empty vectors: off.
    void set_rx_iq(const std::vector<cf>& k1, const std::vector<cf>& k2);
    //! DC offset added per receive antenna, (Nr); empty: off.
    void set_dc(const std::vector<cf>& dc);

    //! Start a call: the n new samples of every input; outputs written in place until finish().
    void begin(const std::vector<const cf*>& inputs, std::vector<cf*> outputs, int n);
    //! Output samples [s0, s1) of this call under the current realisation; start is the absolute index
    //! of the call's first sample (for the drift), phase the CFO phase at s0. Returns the phase at s1.
    double filter(int s0, int s1, double phase, std::int64_t start);
    //! AWGN of noise_var per complex sample (0: none), RX IQ and DC over the call's n outputs.
    void finish(double noise_var);

    //! The raw input history (Nt, history_len) row-major (tests).
    const std::vector<cf>& history() const { return d_history; }

private:
    int d_n_tx, d_n_rx, d_hl;
    int d_len = 1, d_delay = 0;
    double d_cfo = 0.0;
    std::vector<cf> d_taps;       // (Nr, Nt, L)
    std::vector<double> d_drift;  // (Nr)
    bool d_drifting = false;
    std::vector<cf> d_tx_k1, d_tx_k2, d_rx_k1, d_rx_k2, d_dc;
    std::vector<cf> d_history;    // (Nt, hl): raw input, zeros before the stream
    std::vector<cf> d_ext;        // (Nt, hl + n): history + input (TX IQ applied when set)
    std::vector<cf*> d_out;
    int d_n = 0;
    gr::xoroshiro128p_prng d_rng;
    // Ziggurat tables: kn (|value bits| below which the layer's rectangle accepts), wn, fn.
    std::uint32_t d_kn[128];
    double d_wn[128], d_fn[128];
    float normal();
    float normal_slow(std::int64_t hz, int iz);
    double uniform();
};

} // namespace semcom
} // namespace gr

#endif /* INCLUDED_SEMCOM_MIMO_CHANNEL_KERNELS_H */
