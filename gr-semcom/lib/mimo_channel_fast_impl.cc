/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

// mimo_channel as a compiled block: see include/gnuradio/semcom/mimo_channel_fast.h.

#include "mimo_channel_fast_impl.h"
#include <gnuradio/io_signature.h>
#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace gr {
namespace semcom {

namespace {
// The PMT dict (a list of dict cells of (key . value) pairs) with the values of `values`' keys replaced, in its key order.
pmt::pmt_t with_values(const pmt::pmt_t& dict, const std::vector<std::pair<pmt::pmt_t, pmt::pmt_t>>& values)
{
    std::vector<pmt::pmt_t> entries;
    for (pmt::pmt_t p = dict; pmt::is_pair(p); p = pmt::cdr(p))
        entries.push_back(pmt::car(p));
    pmt::pmt_t out = pmt::PMT_NIL;
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
        pmt::pmt_t entry = *it;
        for (const auto& kv : values) {
            if (pmt::eqv(pmt::car(entry), kv.first)) {
                entry = pmt::cons(kv.first, kv.second);
                break;
            }
        }
        out = pmt::dcons(entry, out); // a dict cell (PMT serializes those apart from plain pairs)
    }
    return out;
}

// Longest wait in one call for a realisation to be pushed (then the call returns 0 and is made again).
constexpr int WAIT_MS = 20;

const pmt::pmt_t KEY_META = pmt::intern("meta");
const pmt::pmt_t KEY_OFFSET = pmt::intern("offset");
const pmt::pmt_t KEY_INDEX = pmt::intern("index");
const pmt::pmt_t KEY_PHASE = pmt::intern("phase");
const pmt::pmt_t KEY_SNR = pmt::intern("snr_db");
const pmt::pmt_t KEY_NOISE = pmt::intern("noise_var");
} // namespace

mimo_channel_fast::sptr mimo_channel_fast::make(int n_tx,
                                                int n_rx,
                                                int history_len,
                                                std::uint64_t noise_seed,
                                                int fading,
                                                std::int64_t block_len,
                                                const std::string& sob_key,
                                                int low_water)
{
    return gnuradio::make_block_sptr<mimo_channel_fast_impl>(
        n_tx, n_rx, history_len, noise_seed, fading, block_len, sob_key, low_water);
}

mimo_channel_fast_impl::mimo_channel_fast_impl(int n_tx,
                                               int n_rx,
                                               int history_len,
                                               std::uint64_t noise_seed,
                                               int fading,
                                               std::int64_t block_len,
                                               const std::string& sob_key,
                                               int low_water)
    : gr::block("semcom_mimo_channel_fast",
                gr::io_signature::make(n_tx, n_tx, sizeof(gr_complex)),
                gr::io_signature::make(n_rx, n_rx, sizeof(gr_complex))),
      d_n_tx(n_tx),
      d_n_rx(n_rx),
      d_fading(static_cast<fading_t>(fading)),
      d_block_len(block_len),
      d_sob_key(pmt::intern(sob_key)),
      d_low_water(low_water),
      d_history_len(history_len),
      d_truth_port(pmt::mp("truth")),
      d_low_port(pmt::mp("low")),
      d_kernels(n_tx, n_rx, history_len, noise_seed)
{
    if (fading < PER_FRAME || fading > PER_BLOCK)
        throw std::invalid_argument("mimo_channel_fast: fading must be 0 (per_frame), 1 (held) or 2 (per_block)");
    if (block_len < 1)
        throw std::invalid_argument("mimo_channel_fast: block_len must be >= 1");
    if (low_water < 0)
        throw std::invalid_argument("mimo_channel_fast: low_water must be >= 0");
    for (const char* key : { "draws", "samples", "calls", "waits", "low_signals", "pushed" })
        d_counters[key] = 0;
    message_port_register_out(d_truth_port);
    message_port_register_out(d_low_port);
    set_tag_propagation_policy(TPP_DONT); // the tags of input 0 are copied to every output
}

void mimo_channel_fast_impl::push(const std::vector<gr_complex>& taps,
                                  int length,
                                  const std::vector<int>& int_delays,
                                  const std::vector<double>& cfos,
                                  const std::vector<pmt::pmt_t>& truths)
{
    const std::size_t count = int_delays.size();
    const std::size_t per = static_cast<std::size_t>(d_n_rx) * d_n_tx * std::max(length, 0);
    if (length < 1 || cfos.size() != count || taps.size() != count * per ||
        (!truths.empty() && truths.size() != count))
        throw std::invalid_argument("mimo_channel_fast: push needs taps (count, n_rx, n_tx, length) and "
                                    "count int_delays, cfos and truths (or no truths)");
    for (int d : int_delays)
        if (d < 0 || d + length - 1 > d_history_len)
            throw std::invalid_argument("mimo_channel_fast: int_delay + length - 1 exceeds the history "
                                        "(or a delay < 0)");
    std::vector<channel_realisation> batch(count);
    for (std::size_t i = 0; i < count; ++i) {
        auto& r = batch[i];
        r.taps.assign(taps.begin() + i * per, taps.begin() + (i + 1) * per);
        r.length = length;
        r.int_delay = int_delays[i];
        r.cfo = cfos[i];
        r.truth = truths.empty() ? pmt::PMT_NIL : truths[i];
    }
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        for (auto& r : batch)
            d_queue.push_back(std::move(r));
        d_counters["pushed"] += count;
        d_low_signalled = false;
    }
    d_pushed.notify_all(); // a block waiting for a realisation goes on
}

void mimo_channel_fast_impl::set_noise(double snr_db, double noise_var)
{
    if (!(noise_var >= 0.0))
        throw std::invalid_argument("mimo_channel_fast: noise_var must be >= 0");
    std::lock_guard<std::mutex> lock(d_mutex);
    d_snr_db = snr_db;
    d_noise_var = noise_var;
}

void mimo_channel_fast_impl::set_front_end(const std::vector<gr_complex>& tx_k1,
                                           const std::vector<gr_complex>& tx_k2,
                                           const std::vector<gr_complex>& rx_k1,
                                           const std::vector<gr_complex>& rx_k2,
                                           const std::vector<gr_complex>& dc)
{
    // Checked now (the kernels' own checks), handed over between calls, never during one.
    mimo_channel_kernels check(d_n_tx, d_n_rx, 0, 0);
    check.set_tx_iq(tx_k1, tx_k2);
    check.set_rx_iq(rx_k1, rx_k2);
    check.set_dc(dc);
    std::lock_guard<std::mutex> lock(d_mutex);
    d_tx_k1 = tx_k1;
    d_tx_k2 = tx_k2;
    d_rx_k1 = rx_k1;
    d_rx_k2 = rx_k2;
    d_dc = dc;
    d_front_end_changed = true;
}

void mimo_channel_fast_impl::set_drift(const std::vector<double>& drift)
{
    mimo_channel_kernels(d_n_tx, d_n_rx, 0, 0).set_drift(drift);
    std::lock_guard<std::mutex> lock(d_mutex);
    d_drift = drift;
    d_drift_changed = true;
}

int mimo_channel_fast_impl::queued() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return static_cast<int>(d_queue.size());
}

std::uint64_t mimo_channel_fast_impl::draws() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_counters.at("draws");
}

std::map<std::string, std::uint64_t> mimo_channel_fast_impl::counters() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_counters;
}

void mimo_channel_fast_impl::forecast(int, gr_vector_int& ninput_items_required)
{
    // Any input will do: general_work takes min(input available, output space), as arrived_block.
    std::fill(ninput_items_required.begin(), ninput_items_required.end(), 1);
}

void mimo_channel_fast_impl::signal_low_locked()
{
    if (d_low_signalled)
        return;
    d_low_signalled = true;
    ++d_counters["low_signals"];
    message_port_pub(d_low_port, pmt::from_long(static_cast<long>(d_queue.size())));
}

std::vector<std::uint64_t> mimo_channel_fast_impl::switch_points(std::uint64_t start, int n)
{
    std::vector<std::uint64_t> points;
    const std::uint64_t end = start + static_cast<std::uint64_t>(n);
    if (d_fading == PER_FRAME) {
        std::vector<gr::tag_t> tags;
        get_tags_in_range(tags, 0, start, end, d_sob_key);
        for (const auto& t : tags)
            if (t.offset > 0)
                points.push_back(t.offset);
        std::sort(points.begin(), points.end());
        points.erase(std::unique(points.begin(), points.end()), points.end());
    } else if (d_fading == PER_BLOCK) {
        const std::uint64_t len = static_cast<std::uint64_t>(d_block_len);
        const std::uint64_t first = (std::max<std::uint64_t>(start, 1) + len - 1) / len * len;
        for (std::uint64_t p = first; p < end; p += len)
            points.push_back(p);
    }
    return points;
}

// Under d_mutex with a realisation queued: it takes effect at `offset` (truth published then).
void mimo_channel_fast_impl::take_next(std::uint64_t offset, double snr_db, double noise_var)
{
    channel_realisation r = std::move(d_queue.front());
    d_queue.pop_front();
    d_kernels.set_realisation(r.taps, r.length, r.int_delay, r.cfo);
    const std::uint64_t index = d_counters["draws"]++;
    if (!pmt::is_null(r.truth) && !pmt::is_null(message_subscribers(d_truth_port))) {
        const pmt::pmt_t meta = with_values(pmt::dict_ref(r.truth, KEY_META, pmt::PMT_NIL),
                                            { { KEY_OFFSET, pmt::from_long(static_cast<long>(offset)) },
                                              { KEY_INDEX, pmt::from_long(static_cast<long>(index)) },
                                              { KEY_PHASE, pmt::from_double(d_phase) },
                                              { KEY_SNR, pmt::from_double(snr_db) },
                                              { KEY_NOISE, pmt::from_double(noise_var) } });
        message_port_pub(d_truth_port, with_values(r.truth, { { KEY_META, meta } }));
    }
    if (static_cast<int>(d_queue.size()) < d_low_water)
        signal_low_locked();
}

int mimo_channel_fast_impl::general_work(int noutput_items,
                                         gr_vector_int& ninput_items,
                                         gr_vector_const_void_star& input_items,
                                         gr_vector_void_star& output_items)
{
    int n = noutput_items;
    for (int a = 0; a < d_n_tx; ++a)
        n = std::min(n, ninput_items[a]);
    const std::uint64_t start = nitems_written(0);
    const std::vector<std::uint64_t> points = switch_points(start, n);

    std::unique_lock<std::mutex> lock(d_mutex);
    const double snr_db = d_snr_db, noise_var = d_noise_var;
    if (d_front_end_changed) {
        d_kernels.set_tx_iq(d_tx_k1, d_tx_k2);
        d_kernels.set_rx_iq(d_rx_k1, d_rx_k2);
        d_kernels.set_dc(d_dc);
        d_front_end_changed = false;
    }
    if (d_drift_changed) {
        d_kernels.set_drift(d_drift);
        d_drift_changed = false;
    }
    // Realisations this call needs: the first (at sample 0) and one per switch point. Without one,
    // stop before the sample where it would take effect and wait for push().
    const std::size_t needed = points.size() + (d_started ? 0 : 1);
    std::size_t usable = points.size();
    if (d_queue.size() < needed) {
        const std::size_t have = d_queue.size() - std::min(d_queue.size(), d_started ? 0ul : 1ul);
        if (!d_started && d_queue.empty())
            n = 0;
        else
            n = static_cast<int>(points[have] - start);
        usable = have;
        if (n == 0) {
            // GNU Radio calls a block that returned 0 with input waiting again at once: wait here for
            // the next push (the refill runs in its own thread), up to WAIT_MS, rather than spin.
            ++d_counters["waits"];
            signal_low_locked();
            const std::size_t before = d_queue.size();
            d_pushed.wait_for(lock, std::chrono::milliseconds(WAIT_MS), [&] { return d_queue.size() > before; });
            return 0;
        }
    }
    if (!d_started) {
        take_next(start, snr_db, noise_var);
        d_started = true;
    }
    lock.unlock();

    std::vector<const gr_complex*> in(d_n_tx);
    std::vector<gr_complex*> out(d_n_rx);
    for (int a = 0; a < d_n_tx; ++a)
        in[a] = static_cast<const gr_complex*>(input_items[a]);
    for (int r = 0; r < d_n_rx; ++r)
        out[r] = static_cast<gr_complex*>(output_items[r]);
    d_kernels.begin(in, out, n);
    int s0 = 0;
    for (std::size_t i = 0; i < usable; ++i) {
        const int s1 = static_cast<int>(points[i] - start);
        if (s1 > s0)
            d_phase = d_kernels.filter(s0, s1, d_phase, static_cast<std::int64_t>(start));
        lock.lock();
        take_next(points[i], snr_db, noise_var);
        lock.unlock();
        s0 = s1;
    }
    if (n > s0)
        d_phase = d_kernels.filter(s0, n, d_phase, static_cast<std::int64_t>(start));
    d_kernels.finish(noise_var);

    std::vector<gr::tag_t> tags;
    get_tags_in_range(tags, 0, start, start + static_cast<std::uint64_t>(n));
    for (const auto& tag : tags)
        for (int r = 0; r < d_n_rx; ++r)
            add_item_tag(r, tag);
    lock.lock();
    d_counters["samples"] += static_cast<std::uint64_t>(n);
    ++d_counters["calls"];
    lock.unlock();
    consume_each(n);
    return n;
}

} // namespace semcom
} // namespace gr
