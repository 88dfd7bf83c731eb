/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SEMCOM_OFAT_TX_FAST_IMPL_H
#define INCLUDED_SEMCOM_OFAT_TX_FAST_IMPL_H

#include <fftw3.h>
#include <gnuradio/semcom/ofat_tx_fast.h>
#include <array>
#include <chrono>
#include <mutex>

namespace gr {
namespace semcom {

//! One accepted frame waiting to be modulated. Slots are reused: `values` keeps its capacity.
struct pending_frame {
    uint32_t seq = 0;
    std::array<uint16_t, 3> dims{ 0, 0, 0 }; // the tensor's shape, 0 = absent dimension
    uint16_t scale_code = 0;
    double scale = 1.0;
    size_t n_values = 0;
    std::vector<double> values;
};

class ofat_tx_fast_impl : public ofat_tx_fast
{
private:
    // Layout (computed by semcom.ofat.frame in Python, see the public header).
    const int d_n_tx, d_fft_len, d_cp_len, d_vpe, d_n_header, d_header_reps, d_max_data;
    const int d_n_carriers, d_symbol_len, d_sync_len, d_values_per_symbol, d_capacity;
    const std::vector<int> d_data_bins;
    const std::vector<gr_complex> d_sync;
    const std::vector<std::complex<double>> d_pilot_grid, d_cdd_data;
    const std::vector<uint8_t> d_scrambler;
    const std::vector<float> d_filler;
    const double d_clip_level;
    const double d_inv_sqrt_fft;
    // Streaming options, as ofat_tx's.
    const int d_gap, d_idle_chunk, d_max_queue;
    const bool d_idle_fill;
    const double d_idle_sleep_s;
    const pmt::pmt_t d_port;
    // Idle fill: when the queue ran dry (or the last idle chunk went out); see work().
    bool d_idle = false;
    std::chrono::steady_clock::time_point d_idle_since;

    // Accepted frames: a ring of reusable slots (grown by doubling, never per frame).
    std::vector<pending_frame> d_ring;
    size_t d_head = 0, d_count = 0;
    // The frame being streamed: (n_tx, frame_len + gap) samples, row stride d_stride.
    std::vector<gr_complex> d_frame;
    size_t d_stride = 0, d_frame_total = 0, d_pos = 0;
    uint32_t d_frame_seq = 0;
    std::vector<float> d_header_bpsk; // Nh * K of +-1 for the frame being modulated
    // The IFFT in double precision (FFTW's, as gr::fft plans it, under GNU Radio's planner lock): each
    // sample is then rounded to complex64 once, as numpy's float64 IFFT in frame.modulate_frames is.
    std::complex<double>* d_ifft_in = nullptr;
    std::complex<double>* d_ifft_out = nullptr;
    fftw_plan d_ifft = nullptr;

    mutable std::mutex d_mutex; // counters and the ring size are read from other threads
    std::map<std::string, uint64_t> d_counters;

    void on_tensor(const pmt::pmt_t& msg);
    void reject(const std::string& reason, const std::string& detail);
    void count(const std::string& key);
    void header_bits(const pending_frame& f);
    void modulate(const pending_frame& f);
    void tag_all(uint64_t offset, const pmt::pmt_t& key, const pmt::pmt_t& value);

public:
    ofat_tx_fast_impl(int n_tx,
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
    ~ofat_tx_fast_impl() override;

    std::map<std::string, uint64_t> counters() const override;
    int queued() const override;

    int work(int noutput_items,
             gr_vector_const_void_star& input_items,
             gr_vector_void_star& output_items) override;
};

} // namespace semcom
} // namespace gr

#endif /* INCLUDED_SEMCOM_OFAT_TX_FAST_IMPL_H */
