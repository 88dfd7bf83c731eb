/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/***********************************************************************************/
/* Written by hand in the form bindtool generates; no automatic regeneration.      */
/* BINDTOOL_GEN_AUTOMATIC(0)                                                       */
/* BINDTOOL_USE_PYGCCXML(0)                                                        */
/* BINDTOOL_HEADER_FILE(tensor_bridge.h)                                           */
/* BINDTOOL_HEADER_FILE_HASH(0)                                                    */
/***********************************************************************************/

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#include <gnuradio/semcom/tensor_bridge.h>

void bind_tensor_bridge(py::module& m)
{
    using gr::semcom::tensor_sink_fast;
    using gr::semcom::tensor_source_fast;
    py::module::import("pmt"); // the PMT type, registered by GNU Radio's pmt bindings

    py::class_<tensor_source_fast, gr::block, gr::basic_block, std::shared_ptr<tensor_source_fast>>(
        m,
        "tensor_source_fast",
        "tensor_source compiled (make it with gnuradio.semcom.tensor_source(..., implementation=...))")
        .def(py::init(&tensor_source_fast::make),
             py::arg("address"),
             py::arg("max_message_bytes"),
             py::arg("hwm"))
        // start() may wait up to 2 s for its port (a closed socket's, still held by ZeroMQ's I/O thread),
        // stop() for the receive thread: neither holds the GIL meanwhile.
        .def("start", [](tensor_source_fast& block) { return block.start(); }, py::call_guard<py::gil_scoped_release>())
        .def("stop", [](tensor_source_fast& block) { return block.stop(); }, py::call_guard<py::gil_scoped_release>())
        .def("counters", &tensor_source_fast::counters, "received, posted, error_<reason> (those above 0)")
        .def("endpoint", &tensor_source_fast::endpoint, "the bound endpoint (the real port for ':*')");

    py::class_<tensor_sink_fast, gr::block, gr::basic_block, std::shared_ptr<tensor_sink_fast>>(
        m,
        "tensor_sink_fast",
        "tensor_sink compiled (make it with gnuradio.semcom.tensor_sink(..., implementation=...))")
        .def(py::init(&tensor_sink_fast::make),
             py::arg("address"),
             py::arg("hwm"),
             py::arg("send_timeout_ms"))
        .def("start", [](tensor_sink_fast& block) { return block.start(); }, py::call_guard<py::gil_scoped_release>())
        .def("stop", [](tensor_sink_fast& block) { return block.stop(); }, py::call_guard<py::gil_scoped_release>())
        .def("counters", &tensor_sink_fast::counters, "sent, dropped_*, error_<reason> (those above 0)")
        .def("endpoint", &tensor_sink_fast::endpoint, "the bound endpoint (the real port for ':*')")
        .def("set_send_timeout_ms", &tensor_sink_fast::set_send_timeout_ms, py::arg("send_timeout_ms"));

    // The two conversions on their own, for the tests that hold them against the Python definitions.
    m.def(
        "decode_tensor_message",
        [](const std::vector<py::bytes>& parts, uint64_t max_message_bytes) {
            std::vector<std::string_view> views;
            for (const auto& p : parts) {
                char* data;
                Py_ssize_t size;
                PyBytes_AsStringAndSize(p.ptr(), &data, &size);
                views.emplace_back(data, static_cast<size_t>(size));
            }
            pmt::pmt_t msg;
            std::string reason;
            {
                py::gil_scoped_release release;
                reason = gr::semcom::decode_tensor_message(views, max_message_bytes, msg);
            }
            return py::make_tuple(reason, reason.empty() ? py::cast(msg) : py::none());
        },
        py::arg("parts"),
        py::arg("max_message_bytes"),
        "(reason, message): '' and what tensor_source posts, or the reason it counts (message None)");
    m.def(
        "encode_frame_message",
        [](const pmt::pmt_t& msg) {
            std::vector<std::string> parts;
            uint64_t seq = 0;
            const std::string reason = gr::semcom::encode_frame_message(msg, parts, seq);
            py::list out;
            for (const auto& p : parts) out.append(py::bytes(p));
            return py::make_tuple(reason, reason.empty() ? py::object(out) : py::none());
        },
        py::arg("msg"),
        "(reason, parts): '' and the FRAME tensor_sink sends, or the reason it counts (parts None)");
}
