/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SEMCOM_MIMO_CHANNEL_FAST_H
#define INCLUDED_SEMCOM_MIMO_CHANNEL_FAST_H

#include <gnuradio/block.h>
#include <gnuradio/gr_complex.h>
#include <gnuradio/semcom/api.h>
#include <pmt/pmt.h>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gr {
namespace semcom {

/*!
 * \brief gnuradio.semcom.mimo_channel as a compiled block: Nt streams in, Nr out (no Python per call).
 * \ingroup semcom
 *
 * The per-sample work is mimo_channel_kernels' (FIR over every antenna pair, CFO and drift rotation,
 * AWGN, TX / RX IQ imbalance, DC). The realisations are NOT drawn here: Python draws them
 * (semcom.ofat.channel_model.ChannelSpec.draw_many, the one source of draws, with the per-channel
 * offsets folded into the taps) and push()es them in batches, each with its truth message built by
 * gnuradio.semcom.messages.tensor_message (or nil: none published). This block only takes the next
 * one where the Python block switches (a tx_sob tag on input 0 for per_frame, every multiple of
 * block_len for per_block, never for held; the first from sample 0) and writes into its truth message
 * what is known only then: meta "offset", "index", "phase" (the CFO phase at the offset), "snr_db" and
 * "noise_var" (values replaced in place: the message keeps its key order).
 *
 * Refill: when fewer than low_water realisations are queued after one is taken (or none is there when
 * one is needed), the block publishes the number queued on its message port "low", once until the
 * next push(). If the queue runs dry at a switch point, the block stops before that sample and
 * waits: the call returns what it processed up to it, the next one (made at once by the scheduler)
 * waits up to 20 ms for a push() and returns 0 if none came, and so on: no realisation is skipped or
 * invented, no sample dropped. Tags of input 0 are copied to every output.
 */
class SEMCOM_API mimo_channel_fast : virtual public gr::block
{
public:
    typedef std::shared_ptr<mimo_channel_fast> sptr;

    //! Where realisations switch: at sob_key tags on input 0, never after the first, every block_len.
    enum fading_t { PER_FRAME = 0, HELD = 1, PER_BLOCK = 2 };

    /*!
     * \param n_tx transmit antennas (inputs); \param n_rx receive antennas (outputs)
     * \param history_len past input samples the FIR reads (longest taps + integer delay - 1)
     * \param noise_seed seed of the noise generator (mimo_channel_kernels)
     * \param fading PER_FRAME, HELD or PER_BLOCK; \param block_len samples per block (PER_BLOCK)
     * \param sob_key the tag key that starts a frame (PER_FRAME)
     * \param low_water publish on "low" when fewer realisations than this are queued
     */
    static sptr make(int n_tx,
                     int n_rx,
                     int history_len,
                     std::uint64_t noise_seed,
                     int fading,
                     std::int64_t block_len,
                     const std::string& sob_key,
                     int low_water);

    /*!
     * Queue realisations in the order they take effect: taps (count, Nr, Nt, length) row-major with the
     * per-channel offsets folded in, int_delays and cfos (cycles/sample) of count entries each, truths
     * count tensor messages (nil entries, or an empty vector: none published). A waiting block goes on.
     */
    virtual void push(const std::vector<gr_complex>& taps,
                      int length,
                      const std::vector<int>& int_delays,
                      const std::vector<double>& cfos,
                      const std::vector<pmt::pmt_t>& truths) = 0;
    //! The in-band SNR (dB) written into the truth messages and the noise variance per complex
    //! sample; from the next call.
    virtual void set_noise(double snr_db, double noise_var) = 0;
    //! Front end, from the next call: TX IQ k1, k2 (Nt each), RX IQ (Nr each), DC (Nr); empty: off.
    virtual void set_front_end(const std::vector<gr_complex>& tx_k1,
                               const std::vector<gr_complex>& tx_k2,
                               const std::vector<gr_complex>& rx_k1,
                               const std::vector<gr_complex>& rx_k2,
                               const std::vector<gr_complex>& dc) = 0;
    //! Per receive antenna phase drift (rad/sample), from the next call.
    virtual void set_drift(const std::vector<double>& drift) = 0;

    //! Realisations pushed and not yet taken.
    virtual int queued() const = 0;
    //! Realisations taken into force (the first included).
    virtual std::uint64_t draws() const = 0;
    //! draws, samples, calls, waits (calls that stopped at a switch point for want of a
    //! realisation), low_signals (messages published on "low"), pushed
    virtual std::map<std::string, std::uint64_t> counters() const = 0;
};

} // namespace semcom
} // namespace gr

#endif /* INCLUDED_SEMCOM_MIMO_CHANNEL_FAST_H */
