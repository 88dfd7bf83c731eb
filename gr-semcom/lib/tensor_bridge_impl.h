/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SEMCOM_TENSOR_BRIDGE_IMPL_H
#define INCLUDED_SEMCOM_TENSOR_BRIDGE_IMPL_H

#include <gnuradio/semcom/tensor_bridge.h>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <zmq.hpp>

namespace gr {
namespace semcom {

//! What both bridge blocks share (bridge_socket.BoundSocket's C++ twin): one bound PUSH or PULL
//! socket that keeps its real port across stop()/start(), and counters any thread may read.
class bound_socket
{
public:
    bound_socket(const std::string& address, zmq::socket_type type, int hwm, int send_timeout_ms);
    ~bound_socket();

    void open();   //! bind at the address (the first time) or at the endpoint bound before
    void close();  //! close; the port may stay taken a moment (ZeroMQ's I/O thread)
    void reopen(); //! bind again after close(), waiting up to REBIND_TIMEOUT_S for the port
    zmq::socket_t* socket() { return d_sock.get(); }
    std::string endpoint() const;
    void count(const std::string& key);
    std::map<std::string, uint64_t> counters() const;
    void set_send_timeout_ms(int ms);

    mutable std::mutex mutex; //! guards the socket (the sink's send against stop())

private:
    static constexpr double REBIND_TIMEOUT_S = 2.0;
    static constexpr int LINGER_MS = 200; // semcom.wire.DEFAULT_LINGER_MS
    std::string d_address, d_endpoint;
    const zmq::socket_type d_type;
    const int d_hwm;
    int d_send_timeout_ms;
    std::unique_ptr<zmq::socket_t> d_sock;
    mutable std::mutex d_count_mutex;
    std::map<std::string, uint64_t> d_counters;
};

class tensor_source_fast_impl : public tensor_source_fast
{
    static constexpr int POLL_MS = 100; // the receive timeout: how soon stop() is seen
    const uint64_t d_max_message_bytes;
    const pmt::pmt_t d_port;
    bound_socket d_socket;
    std::thread d_thread;
    std::atomic<bool> d_stop{ false };

    void run();
    void handle(std::vector<zmq::message_t>& parts);

public:
    tensor_source_fast_impl(const std::string& address, uint64_t max_message_bytes, int hwm);
    ~tensor_source_fast_impl() override;

    bool start() override;
    bool stop() override;
    std::map<std::string, uint64_t> counters() const override { return d_socket.counters(); }
    std::string endpoint() const override { return d_socket.endpoint(); }
};

class tensor_sink_fast_impl : public tensor_sink_fast
{
    const pmt::pmt_t d_port;
    bound_socket d_socket;
    std::atomic<int> d_send_timeout_ms;
    bool d_running = false; // between start() and stop(); guarded by d_socket.mutex
    // Frames handed to the block's own thread and not yet handled: while there are any, later frames
    // queue behind them (never overtake).
    std::atomic<int> d_queued{ 0 };

    enum class send_result { counted, would_wait };
    void on_frame(const pmt::pmt_t& msg);
    bool send_now(const pmt::pmt_t& msg);
    //! Sends (or counts why not) an encoded frame; the caller holds d_socket.mutex, the socket is open.
    //! `wait`: up to the send timeout for room at the host, else not at all (would_wait, not counted).
    send_result send_locked(const std::string& reason,
                            const std::vector<std::string>& parts,
                            uint64_t seq,
                            bool wait);

public:
    tensor_sink_fast_impl(const std::string& address, int hwm, int send_timeout_ms);

    //! A frame goes out at once, on the publisher's thread, when the host's queue has room (a send
    //! that cannot wait); otherwise, and before start(), it queues for the block's thread as usual.
    void post(pmt::pmt_t which_port, pmt::pmt_t msg) override;
    bool start() override;
    bool stop() override;
    std::map<std::string, uint64_t> counters() const override { return d_socket.counters(); }
    std::string endpoint() const override { return d_socket.endpoint(); }
    void set_send_timeout_ms(int send_timeout_ms) override;
};

} // namespace semcom
} // namespace gr

#endif /* INCLUDED_SEMCOM_TENSOR_BRIDGE_IMPL_H */
