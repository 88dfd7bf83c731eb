/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SEMCOM_OFAT_TX_FAST_H
#define INCLUDED_SEMCOM_OFAT_TX_FAST_H

#include <gnuradio/gr_complex.h>
#include <gnuradio/semcom/api.h>
#include <gnuradio/sync_block.h>
#include <complex>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gr {
namespace semcom {

/*!
 * \brief The compiled core of ofat_tx: tensor messages in, Nt complex streams of OFAT frames out.
 * \ingroup semcom
 *
 * Takes the same messages (port "tensors", the PMT dict of gnuradio.semcom.messages) and writes the
 * same samples and tags (tx_sob + semcom_seq on a frame's first sample, tx_eob on the last sample of
 * its gap) as the Python ofat_tx, with the same rejection counters. It knows nothing about the layout
 * itself: every layout-derived array (sync samples, pilot grid, data bins, CDD phases, header
 * scrambler and filler, clip level) is computed by semcom.ofat.frame in Python and passed in, which is
 * what gnuradio.semcom.ofat_tx_fast(layout, ...) does. Per frame it computes the power scale, the
 * header bits with their CRC, the grid, the IFFT (FFTW, double precision, planned under gr::fft's
 * planner lock), the cyclic prefix and the clipping, in float64 like frame.modulate_frames, rounded
 * to complex64 once at the end: the samples equal the Python block's.
 */
class SEMCOM_API ofat_tx_fast : virtual public gr::sync_block
{
public:
    typedef std::shared_ptr<ofat_tx_fast> sptr;

    /*!
     * \param n_tx transmit antennas (output streams)
     * \param fft_len FFT size; \param cp_len cyclic prefix samples
     * \param values_per_element 2 (complex mode) or 1 (real mode)
     * \param n_header_symbols Nh; \param header_reps copies of the 120 header bits
     * \param max_data_symbols most data symbols per frame
     * \param data_bins FFT bins of the K data subcarriers, in value order
     * \param sync_samples (n_tx, sync_len) preamble + training time samples, row-major
     * \param pilot_grid (n_tx, Nh + max_data_symbols, fft_len) header+data symbols with the pilots
     *        in place (zeros elsewhere), complex128 as frame.py computes it
     * \param cdd_data (n_tx, K) CDD phases on the data bins (1/sqrt(n_tx) included)
     * \param header_scrambler 120 bits (0/1) XORed onto the header bits
     * \param header_filler Nh*K BPSK values (+-1) of the header symbols after the repetitions
     * \param clip_level amplitude at which data samples are clipped (0: no clipping)
     * \param gap_samples zeros after each frame; \param idle_fill emit paced zeros while idle
     * \param idle_chunk zeros per idle chunk; \param idle_sleep_s idle time before each chunk (the
     *        scheduler handles messages meanwhile: the block waits, it does not sleep)
     * \param max_queue frames waiting at most (more are dropped and counted)
     */
    static sptr make(int n_tx,
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
                     int max_queue);

    //! frames_queued, frames_sent, dropped_backpressure and one rejected_<reason> per error seen
    virtual std::map<std::string, uint64_t> counters() const = 0;
    //! frames accepted whose first sample has not been written yet (what max_queue bounds)
    virtual int queued() const = 0;
};

} // namespace semcom
} // namespace gr

#endif /* INCLUDED_SEMCOM_OFAT_TX_FAST_H */
