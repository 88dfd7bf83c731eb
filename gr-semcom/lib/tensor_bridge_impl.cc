/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

// tensor_source / tensor_sink compiled (docs/wire-protocol.md). Why: with the Python blocks, three
// threads (the host's, the source's receive thread, the sink's GNU Radio thread) hand Python's GIL
// along every round trip; here neither block touches Python.

#include "tensor_bridge_impl.h"
#include <gnuradio/io_signature.h>
#include <pthread.h>
#include <chrono>
#include <stdexcept>
#include <zmq_addon.hpp>

namespace gr {
namespace semcom {

namespace {
zmq::context_t& context()
{
    // One context for every bridge block of the process, never destroyed: its destructor would wait
    // at exit for any socket a block still left open (a block Python never freed).
    static auto* ctx = new zmq::context_t();
    return *ctx;
}
} // namespace

// ---------------------------------------------------------------------------------- bound_socket
bound_socket::bound_socket(const std::string& address,
                           zmq::socket_type type,
                           int hwm,
                           int send_timeout_ms)
    : d_address(address), d_type(type), d_hwm(hwm), d_send_timeout_ms(send_timeout_ms)
{
    if (hwm < 1) // 0 would mean unbounded queues in ZeroMQ (semcom.wire.make_socket refuses it too)
        throw std::invalid_argument("hwm=" + std::to_string(hwm) + ": must be >= 1");
    open();
}

bound_socket::~bound_socket() { close(); }

void bound_socket::open()
{
    auto sock = std::make_unique<zmq::socket_t>(context(), d_type);
    sock->set(zmq::sockopt::linger, LINGER_MS);
    if (d_type == zmq::socket_type::push) {
        sock->set(zmq::sockopt::sndhwm, d_hwm);
        sock->set(zmq::sockopt::sndtimeo, d_send_timeout_ms);
    } else {
        sock->set(zmq::sockopt::rcvhwm, d_hwm);
    }
    const std::string address = d_endpoint.empty() ? d_address : d_endpoint;
    try {
        sock->bind(address);
    } catch (const zmq::error_t&) {
        sock->close(); // e.g. address in use: do not leak the socket
        throw;
    }
    d_endpoint = sock->get(zmq::sockopt::last_endpoint);
    d_sock = std::move(sock);
}

void bound_socket::close()
{
    if (d_sock) {
        d_sock->close();
        d_sock.reset();
    }
}

void bound_socket::reopen()
{
    if (d_sock) return;
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration<double>(REBIND_TIMEOUT_S);
    while (true) {
        try {
            open();
            return;
        } catch (const zmq::error_t& err) {
            if (err.num() != EADDRINUSE || std::chrono::steady_clock::now() > deadline) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
}

std::string bound_socket::endpoint() const { return d_endpoint; }

void bound_socket::count(const std::string& key)
{
    std::lock_guard<std::mutex> lock(d_count_mutex);
    d_counters[key]++;
}

std::map<std::string, uint64_t> bound_socket::counters() const
{
    std::lock_guard<std::mutex> lock(d_count_mutex);
    return d_counters;
}

void bound_socket::set_send_timeout_ms(int ms)
{
    std::lock_guard<std::mutex> lock(mutex);
    d_send_timeout_ms = ms;
    if (d_sock) d_sock->set(zmq::sockopt::sndtimeo, ms);
}

// ---------------------------------------------------------------------------------- tensor_source
tensor_source_fast::sptr
tensor_source_fast::make(const std::string& address, uint64_t max_message_bytes, int hwm)
{
    return gnuradio::make_block_sptr<tensor_source_fast_impl>(address, max_message_bytes, hwm);
}

tensor_source_fast_impl::tensor_source_fast_impl(const std::string& address,
                                                 uint64_t max_message_bytes,
                                                 int hwm)
    : gr::block("semcom_tensor_source",
                gr::io_signature::make(0, 0, 0),
                gr::io_signature::make(0, 0, 0)),
      d_max_message_bytes(max_message_bytes),
      d_port(pmt::mp("tensors")),
      d_socket(address, zmq::socket_type::pull, hwm, -1)
{
    message_port_register_out(d_port);
}

tensor_source_fast_impl::~tensor_source_fast_impl() { stop(); }

bool tensor_source_fast_impl::start()
{
    if (d_thread.joinable()) { // started twice: never a second thread on the same socket
        d_stop = true;
        d_thread.join();
    }
    d_socket.reopen();
    d_socket.socket()->set(zmq::sockopt::rcvtimeo, POLL_MS);
    d_stop = false;
    d_thread = std::thread([this] { run(); });
    return true;
}

bool tensor_source_fast_impl::stop()
{
    d_stop = true;
    if (d_thread.joinable()) d_thread.join(); // within POLL_MS: the receive times out
    d_socket.close();
    return true;
}

void tensor_source_fast_impl::run()
{
    // Named as GNU Radio names a block's thread (its first 13 characters the block's name), so that
    // per-thread profiles (benchmarks/profile_loopback.py) put it with the bridge blocks.
    pthread_setname_np(pthread_self(), "semcom_tensor_r");
    zmq::socket_t& sock = *d_socket.socket();
    std::vector<zmq::message_t> parts;
    while (!d_stop) {
        parts.clear();
        try {
            if (!zmq::recv_multipart(sock, std::back_inserter(parts))) continue; // timed out
        } catch (const zmq::error_t& err) {
            d_logger->error("receive failed: {:s}", err.what());
            d_socket.count("error_socket");
            std::this_thread::sleep_for(std::chrono::milliseconds(POLL_MS));
            continue;
        }
        d_socket.count("received");
        try {
            handle(parts);
        } catch (const std::exception& err) { // keep receiving whatever happens to one message
            d_socket.count("error_internal");
            d_logger->error("message dropped by an internal error: {:s}", err.what());
        }
    }
}

void tensor_source_fast_impl::handle(std::vector<zmq::message_t>& parts)
{
    std::vector<std::string_view> views;
    views.reserve(parts.size());
    for (const auto& p : parts) views.emplace_back(static_cast<const char*>(p.data()), p.size());
    pmt::pmt_t msg;
    const std::string reason = decode_tensor_message(views, d_max_message_bytes, msg);
    if (!reason.empty()) {
        d_socket.count("error_" + reason);
        d_logger->error("message rejected ({:s})", reason);
        return;
    }
    message_port_pub(d_port, msg);
    d_socket.count("posted");
}

// ---------------------------------------------------------------------------------- tensor_sink
tensor_sink_fast::sptr
tensor_sink_fast::make(const std::string& address, int hwm, int send_timeout_ms)
{
    return gnuradio::make_block_sptr<tensor_sink_fast_impl>(address, hwm, send_timeout_ms);
}

tensor_sink_fast_impl::tensor_sink_fast_impl(const std::string& address, int hwm, int send_timeout_ms)
    : gr::block("semcom_tensor_sink", gr::io_signature::make(0, 0, 0), gr::io_signature::make(0, 0, 0)),
      d_port(pmt::mp("frames")),
      d_socket(address, zmq::socket_type::push, hwm, send_timeout_ms),
      d_send_timeout_ms(send_timeout_ms)
{
    message_port_register_in(d_port);
    set_msg_handler(d_port, [this](const pmt::pmt_t& msg) {
        on_frame(msg);
        // One fewer queued frame (never below 0: a frame _post()ed directly was not counted).
        int queued = d_queued.load();
        while (queued > 0 && !d_queued.compare_exchange_weak(queued, queued - 1)) {
        }
    });
}

bool tensor_sink_fast_impl::start()
{
    std::lock_guard<std::mutex> lock(d_socket.mutex);
    d_socket.reopen();
    d_running = true;
    return true;
}

bool tensor_sink_fast_impl::stop()
{
    std::lock_guard<std::mutex> lock(d_socket.mutex); // never in the middle of a send
    d_running = false;
    d_socket.close();
    return true;
}

void tensor_sink_fast_impl::post(pmt::pmt_t which_port, pmt::pmt_t msg)
{
    // Why: handing every frame to the block's own thread costs a thread wake-up (15-25 us on a loaded
    // machine) on the way to the host; the send itself takes a few.
    if (pmt::eqv(which_port, d_port) && d_queued == 0 && send_now(msg)) return;
    d_queued++;
    gr::block::post(which_port, msg);
}

void tensor_sink_fast_impl::set_send_timeout_ms(int send_timeout_ms)
{
    d_send_timeout_ms = send_timeout_ms;
    d_socket.set_send_timeout_ms(send_timeout_ms);
}

bool tensor_sink_fast_impl::send_now(const pmt::pmt_t& msg)
{
    std::vector<std::string> parts;
    uint64_t seq = 0;
    const std::string reason = encode_frame_message(msg, parts, seq);
    std::lock_guard<std::mutex> lock(d_socket.mutex);
    if (!d_running || !d_socket.socket() || d_queued != 0) return false; // the block's thread, in order
    return send_locked(reason, parts, seq, false) != send_result::would_wait;
}

void tensor_sink_fast_impl::on_frame(const pmt::pmt_t& msg)
{
    std::vector<std::string> parts;
    uint64_t seq = 0;
    const std::string reason = encode_frame_message(msg, parts, seq);
    std::lock_guard<std::mutex> lock(d_socket.mutex); // stop() must not close the socket mid-send
    if (reason.empty() && !d_socket.socket()) {
        d_socket.count("dropped_stopped");
        d_logger->warn("frame seq {:d} dropped: sink is stopped", seq);
        return;
    }
    if (send_locked(reason, parts, seq, true) == send_result::would_wait) {
        d_socket.count("dropped_backpressure");
        d_logger->warn("frame seq {:d} dropped (dropped_backpressure): host did not take it within {:d} ms",
                       seq,
                       d_send_timeout_ms.load());
    }
}

tensor_sink_fast_impl::send_result tensor_sink_fast_impl::send_locked(const std::string& reason,
                                                                      const std::vector<std::string>& parts,
                                                                      uint64_t seq,
                                                                      bool wait)
{
    if (!reason.empty()) {
        d_socket.count("error_" + reason);
        d_logger->error("frame not sent ({:s})", reason);
        return send_result::counted;
    }
    zmq::socket_t& sock = *d_socket.socket();
    try {
        // A multipart message is queued whole or not at all: only the first part can find the queue
        // full (and wait up to the send timeout, or not at all).
        const auto first = wait ? zmq::send_flags::none : zmq::send_flags::dontwait;
        for (size_t i = 0; i < parts.size(); i++) {
            const auto flags = (i ? zmq::send_flags::none : first) |
                               (i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
            if (!sock.send(zmq::buffer(parts[i]), flags)) return send_result::would_wait;
        }
    } catch (const zmq::error_t& err) {
        d_socket.count("error_socket");
        d_logger->error("frame seq {:d} not sent: {:s}", seq, err.what());
        return send_result::counted;
    }
    d_socket.count("sent");
    return send_result::counted;
}

} // namespace semcom
} // namespace gr
