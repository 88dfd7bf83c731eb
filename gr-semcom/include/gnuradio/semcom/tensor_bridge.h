/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SEMCOM_TENSOR_BRIDGE_H
#define INCLUDED_SEMCOM_TENSOR_BRIDGE_H

#include <gnuradio/block.h>
#include <gnuradio/semcom/api.h>
#include <pmt/pmt.h>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace gr {
namespace semcom {

/*!
 * \brief The wire protocol's TENSOR decoder (a second implementation of semcom.wire.decode plus
 * what tensor_source makes of the message, docs/wire-protocol.md).
 *
 * Validates `parts` in wire.decode's order and returns "" with `out` set to the tensor message
 * messages.tensor_message(meta + {"seq": seq}, tensors) builds (the same PMT, node for node), or the
 * reason the Python tensor_source counts: one of wire.WireError.REASONS, or "bad_meta" (meta that
 * has no PMT form). A valid message of another kind is "bad_kind".
 */
SEMCOM_API std::string decode_tensor_message(const std::vector<std::string_view>& parts,
                                             uint64_t max_message_bytes,
                                             pmt::pmt_t& out);

/*!
 * \brief The wire FRAME tensor_sink sends for an in-flowgraph message (both forms of
 * gnuradio.semcom.messages: the wire form's parts as they are, the PMT dict form encoded as
 * semcom.wire.encode does, byte for byte).
 *
 * Returns "" and fills `parts` and `seq`, or the reason tensor_sink counts: "malformed", "bad_dtype",
 * "bad_json" (a tensor name that is not a string) or "bad_meta" (meta JSON cannot hold).
 */
SEMCOM_API std::string encode_frame_message(const pmt::pmt_t& msg,
                                            std::vector<std::string>& parts,
                                            uint64_t& seq);

/*!
 * \brief tensor_source's compiled form: a ZeroMQ PULL socket bound at `address`, its own receive
 * thread, each valid TENSOR posted on message port "tensors" (what decode_tensor_message builds).
 * \ingroup semcom
 *
 * Same parameters, counters and behaviour as gnuradio.semcom.tensor_source's Python block: the
 * socket is bound in the constructor ("*" ports resolved, endpoint()), HWM and a finite LINGER, a
 * 100 ms receive timeout so that stop() returns promptly, start() after stop() binding the same
 * port again. The receive thread never takes Python's GIL.
 */
class SEMCOM_API tensor_source_fast : virtual public gr::block
{
public:
    typedef std::shared_ptr<tensor_source_fast> sptr;

    static sptr make(const std::string& address, uint64_t max_message_bytes, int hwm);

    //! received, posted and one error_<reason> per reason seen (only counters above 0)
    virtual std::map<std::string, uint64_t> counters() const = 0;
    //! the bound endpoint, the real port where `address` ends in ":*"
    virtual std::string endpoint() const = 0;
};

/*!
 * \brief tensor_sink's compiled form: a ZeroMQ PUSH socket bound at `address`; each message on port
 * "frames" goes out as one wire FRAME (encode_frame_message), a frame the host does not take within
 * `send_timeout_ms` counted as dropped_backpressure.
 * \ingroup semcom
 */
class SEMCOM_API tensor_sink_fast : virtual public gr::block
{
public:
    typedef std::shared_ptr<tensor_sink_fast> sptr;

    static sptr make(const std::string& address, int hwm, int send_timeout_ms);

    //! sent, dropped_backpressure, dropped_stopped, error_<reason> (only counters above 0)
    virtual std::map<std::string, uint64_t> counters() const = 0;
    //! the bound endpoint, the real port where `address` ends in ":*"
    virtual std::string endpoint() const = 0;
    virtual void set_send_timeout_ms(int send_timeout_ms) = 0;
};

} // namespace semcom
} // namespace gr

#endif /* INCLUDED_SEMCOM_TENSOR_BRIDGE_H */
