/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SEMCOM_MIMO_CHANNEL_FAST_IMPL_H
#define INCLUDED_SEMCOM_MIMO_CHANNEL_FAST_IMPL_H

#include <gnuradio/semcom/mimo_channel_fast.h>
#include <gnuradio/semcom/mimo_channel_kernels.h>
#include <condition_variable>
#include <deque>
#include <mutex>

namespace gr {
namespace semcom {

//! One realisation pushed by Python: what the kernels need, and its truth message (or nil).
struct channel_realisation {
    std::vector<gr_complex> taps; // (Nr, Nt, length)
    int length = 1;
    int int_delay = 0;
    double cfo = 0.0;
    pmt::pmt_t truth;
};

class mimo_channel_fast_impl : public mimo_channel_fast
{
private:
    const int d_n_tx, d_n_rx;
    const fading_t d_fading;
    const std::int64_t d_block_len;
    const pmt::pmt_t d_sob_key;
    const int d_low_water, d_history_len;
    const pmt::pmt_t d_truth_port, d_low_port;
    mimo_channel_kernels d_kernels;
    bool d_started = false; // the first realisation is in force
    double d_phase = 0.0;   // CFO phase at the next output sample (rad)

    // Shared with the threads that push and set (Python's): under d_mutex.
    mutable std::mutex d_mutex;
    std::deque<channel_realisation> d_queue;
    std::condition_variable d_pushed; // notified by push()
    bool d_low_signalled = false;
    double d_snr_db = 0.0, d_noise_var = 0.0;
    bool d_front_end_changed = false, d_drift_changed = false;
    std::vector<gr_complex> d_tx_k1, d_tx_k2, d_rx_k1, d_rx_k2, d_dc;
    std::vector<double> d_drift;
    std::map<std::string, std::uint64_t> d_counters;

    std::vector<std::uint64_t> switch_points(std::uint64_t start, int n);
    void take_next(std::uint64_t offset, double snr_db, double noise_var);
    void signal_low_locked();

public:
    mimo_channel_fast_impl(int n_tx,
                           int n_rx,
                           int history_len,
                           std::uint64_t noise_seed,
                           int fading,
                           std::int64_t block_len,
                           const std::string& sob_key,
                           int low_water);

    void push(const std::vector<gr_complex>& taps,
              int length,
              const std::vector<int>& int_delays,
              const std::vector<double>& cfos,
              const std::vector<pmt::pmt_t>& truths) override;
    void set_noise(double snr_db, double noise_var) override;
    void set_front_end(const std::vector<gr_complex>& tx_k1,
                       const std::vector<gr_complex>& tx_k2,
                       const std::vector<gr_complex>& rx_k1,
                       const std::vector<gr_complex>& rx_k2,
                       const std::vector<gr_complex>& dc) override;
    void set_drift(const std::vector<double>& drift) override;
    int queued() const override;
    std::uint64_t draws() const override;
    std::map<std::string, std::uint64_t> counters() const override;

    void forecast(int noutput_items, gr_vector_int& ninput_items_required) override;
    int general_work(int noutput_items,
                     gr_vector_int& ninput_items,
                     gr_vector_const_void_star& input_items,
                     gr_vector_void_star& output_items) override;
};

} // namespace semcom
} // namespace gr

#endif /* INCLUDED_SEMCOM_MIMO_CHANNEL_FAST_IMPL_H */
