/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

// The compiled bridge's two conversions (docs/wire-protocol.md): a wire TENSOR into the PMT tensor
// message gnuradio.semcom.messages.tensor_message builds, and an in-flowgraph message into the wire
// FRAME semcom.wire.encode writes. Both are second implementations of Python code that stays the
// definition (wire.decode, messages.tensor_message / parse_serialized, wire.encode); the tests run
// both on the same corpus (tests/test_zmq_bridge.py).

#include <gnuradio/semcom/ofat_rx_kernels.h>
#include <gnuradio/semcom/tensor_bridge.h>
#include "message_dtypes.h"
#include <nlohmann/json.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace gr {
namespace semcom {

namespace {

using ojson = nlohmann::ordered_json; // keeps the key order, as Python's dict does

constexpr char MAGIC[4] = { 'S', 'C', 'O', 'M' };
constexpr uint8_t VERSION = 1;
constexpr uint8_t KIND_TENSOR = 1, KIND_FRAME = 2, KIND_STATS = 3;
constexpr size_t HEADER_LEN = 16;
// Deeper JSON than this is bad_json (Python's decoder stops at its recursion limit, ~1000 levels).
constexpr size_t MAX_JSON_DEPTH = 500;
// A big integer (beyond 64 bits) in the JSON: Python reads it as an int, nlohmann as a float; it is
// kept as a binary node with this subtype (JSON text has no binary values of its own).
constexpr uint64_t BIG_POSITIVE = 1, BIG_NEGATIVE = 2;

//! A wire dtype: its name, element size and the PMT uniform vector it is stored in (messages.py).
struct wire_dtype {
    const char* name;
    size_t itemsize;
    pmt::pmt_t (*make)(size_t);
};

pmt::pmt_t make_u8(size_t n) { return pmt::make_u8vector(n, 0); }
pmt::pmt_t make_s8(size_t n) { return pmt::make_s8vector(n, 0); }
pmt::pmt_t make_u16(size_t n) { return pmt::make_u16vector(n, 0); }
pmt::pmt_t make_s32(size_t n) { return pmt::make_s32vector(n, 0); }
pmt::pmt_t make_s64(size_t n) { return pmt::make_s64vector(n, 0); }
pmt::pmt_t make_f32(size_t n) { return pmt::make_f32vector(n, 0); }
pmt::pmt_t make_f64(size_t n) { return pmt::make_f64vector(n, 0); }
pmt::pmt_t make_c32(size_t n) { return pmt::make_c32vector(n, 0); }
pmt::pmt_t make_c64(size_t n) { return pmt::make_c64vector(n, 0); }

const wire_dtype WIRE_DTYPES[] = {
    { "float16", 2, make_u16 },   { "float32", 4, make_f32 },    { "float64", 8, make_f64 },
    { "complex64", 8, make_c32 }, { "complex128", 16, make_c64 }, { "int8", 1, make_s8 },
    { "uint8", 1, make_u8 },      { "int32", 4, make_s32 },      { "int64", 8, make_s64 },
};

const wire_dtype* wire_dtype_named(const std::string& name)
{
    for (const auto& d : WIRE_DTYPES)
        if (name == d.name) return &d;
    return nullptr;
}

struct rejected : std::runtime_error {
    std::string reason;
    rejected(const std::string& r, const std::string& detail) : std::runtime_error(detail), reason(r) {}
};

// ---------------------------------------------------------------------------------- JSON in
//! nlohmann's DOM builder with Python's reading of big integers and a depth limit.
class json_reader
{
    nlohmann::detail::json_sax_dom_parser<ojson> d_dom;
    size_t d_depth = 0;

public:
    explicit json_reader(ojson& out) : d_dom(out, false) {}
    bool null() { return d_dom.null(); }
    bool boolean(bool v) { return d_dom.boolean(v); }
    bool number_integer(ojson::number_integer_t v) { return d_dom.number_integer(v); }
    bool number_unsigned(ojson::number_unsigned_t v) { return d_dom.number_unsigned(v); }
    bool number_float(ojson::number_float_t v, const ojson::string_t& text)
    {
        if (text.find_first_of(".eE") == std::string::npos) { // an integer that overflowed 64 bits
            ojson::binary_t big;
            big.set_subtype(!text.empty() && text[0] == '-' ? BIG_NEGATIVE : BIG_POSITIVE);
            return d_dom.binary(big);
        }
        return d_dom.number_float(v, text);
    }
    bool string(ojson::string_t& v) { return d_dom.string(v); }
    bool binary(ojson::binary_t& v) { return d_dom.binary(v); }
    bool start_object(std::size_t n) { return ++d_depth <= MAX_JSON_DEPTH && d_dom.start_object(n); }
    bool key(ojson::string_t& k) { return d_dom.key(k); }
    bool end_object() { --d_depth; return d_dom.end_object(); }
    bool start_array(std::size_t n) { return ++d_depth <= MAX_JSON_DEPTH && d_dom.start_array(n); }
    bool end_array() { --d_depth; return d_dom.end_array(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
};

bool is_big(const ojson& v) { return v.is_binary(); }

//! A JSON value of meta as the PMT messages._meta_bytes makes of Python's json reading of it.
pmt::pmt_t meta_to_pmt(const ojson& v);

pmt::pmt_t symbol(const std::string& text)
{
    if (text.size() > 0xFFFF)
        throw rejected("bad_meta", "string of " + std::to_string(text.size()) +
                                       " bytes: a PMT symbol holds at most 65535");
    return pmt::string_to_symbol(text);
}

pmt::pmt_t meta_dict(const ojson& object, const pmt::pmt_t& seq_key = pmt::PMT_NIL,
                     const pmt::pmt_t& seq = pmt::PMT_NIL)
{
    // pmt.dict_add puts a new key in front, so the last key heads the list (messages.py does the same).
    pmt::pmt_t dict = pmt::make_dict();
    bool seq_done = pmt::is_null(seq_key);
    for (const auto& item : object.items()) {
        pmt::pmt_t key = symbol(item.key());
        if (!seq_done && pmt::eqv(key, seq_key)) { // {**meta, "seq": seq}: replaced in its place
            dict = pmt::dcons(pmt::cons(key, seq), dict);
            seq_done = true;
        } else {
            dict = pmt::dcons(pmt::cons(key, meta_to_pmt(item.value())), dict);
        }
    }
    if (!seq_done) dict = pmt::dcons(pmt::cons(seq_key, seq), dict);
    return dict;
}

pmt::pmt_t integer(uint64_t u)
{
    return u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? pmt::from_long(static_cast<int64_t>(u))
               : pmt::from_uint64(u);
}

pmt::pmt_t meta_to_pmt(const ojson& v)
{
    switch (v.type()) {
    case ojson::value_t::null: return pmt::PMT_NIL;
    case ojson::value_t::boolean: return pmt::from_bool(v.get<bool>());
    case ojson::value_t::number_integer: return pmt::from_long(v.get<int64_t>());
    case ojson::value_t::number_unsigned: return integer(v.get<uint64_t>());
    case ojson::value_t::number_float: return pmt::from_double(v.get<double>());
    case ojson::value_t::string: return symbol(v.get_ref<const std::string&>());
    case ojson::value_t::binary: throw rejected("bad_meta", "an integer in meta does not fit 64 bits");
    case ojson::value_t::array: {
        pmt::pmt_t out = pmt::make_vector(v.size(), pmt::PMT_NIL);
        size_t i = 0;
        for (const auto& item : v) pmt::vector_set(out, i++, meta_to_pmt(item));
        return out;
    }
    case ojson::value_t::object: return meta_dict(v);
    default: throw rejected("bad_meta", "meta value without a PMT form");
    }
}

uint64_t read_u64_le(const char* p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(p[i]);
    return v;
}

//! One checked tensor spec of the JSON header.
struct tensor_spec {
    std::string name;
    const wire_dtype* dtype;
    std::vector<int64_t> shape;
};

//! wire.decode's checks after the header (bad_json, bad_dtype, shape_mismatch), in its order.
std::vector<tensor_spec> check_specs(const ojson& specs, const std::vector<std::string_view>& parts)
{
    std::vector<tensor_spec> out;
    out.reserve(specs.size());
    for (size_t i = 0; i < specs.size(); i++) {
        const ojson& spec = specs[i];
        if (!spec.is_object() || !spec.contains("name") || !spec.contains("dtype") ||
            !spec.contains("shape"))
            throw rejected("bad_json", "tensor spec without name, dtype or shape");
        const ojson &name = spec["name"], &dtype = spec["dtype"], &shape = spec["shape"];
        if (!name.is_string() || !dtype.is_string() || !shape.is_array())
            throw rejected("bad_json", "name and dtype must be strings, shape a list");
        for (const auto& d : shape)
            if (!d.is_number_integer() && !is_big(d))
                throw rejected("bad_json", "shape must hold integers");
        for (const auto& seen : out)
            if (seen.name == name.get_ref<const std::string&>())
                throw rejected("bad_json", "tensor name " + seen.name + " appears twice");
        tensor_spec t{ name.get<std::string>(), wire_dtype_named(dtype.get<std::string>()), {} };
        if (t.dtype == nullptr)
            throw rejected("bad_dtype", "tensor " + t.name + ": dtype " + dtype.get<std::string>() +
                                            " not allowed");
        bool big = false; // a dimension beyond int64: no payload is that large
        for (const auto& d : shape) {
            if ((is_big(d) && d.get_binary().subtype() == BIG_NEGATIVE) ||
                (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0))
                throw rejected("shape_mismatch", "tensor " + t.name + ": negative dimension");
            const uint64_t dim = is_big(d) ? std::numeric_limits<uint64_t>::max() : d.get<uint64_t>();
            big = big || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
            t.shape.push_back(static_cast<int64_t>(std::min<uint64_t>(dim, std::numeric_limits<int64_t>::max())));
        }
        // prod(shape) * itemsize in 128 bits: no dimension list can wrap it around to the payload size.
        unsigned __int128 expected = t.dtype->itemsize;
        const unsigned __int128 cap = static_cast<unsigned __int128>(1) << 100;
        for (int64_t d : t.shape) expected = std::min(cap, expected * static_cast<uint64_t>(d));
        if (big || expected != parts[2 + i].size())
            throw rejected("shape_mismatch", "tensor " + t.name + ": payload size does not match its shape");
        out.push_back(std::move(t));
    }
    return out;
}

pmt::pmt_t tensor_vector(const tensor_spec& t, std::string_view payload)
{
    const size_t n = payload.size() / t.dtype->itemsize;
    pmt::pmt_t v = t.dtype->make(n);
    size_t len = 0;
    void* dst = pmt::uniform_vector_writable_elements(v, len);
    if (n) std::memcpy(dst, payload.data(), payload.size()); // little-endian wire = this host's order
    return v;
}

} // namespace

std::string decode_tensor_message(const std::vector<std::string_view>& parts,
                                  uint64_t max_message_bytes,
                                  pmt::pmt_t& out)
{
    try {
        uint64_t total = 0;
        for (const auto& p : parts) total += p.size();
        if (total > max_message_bytes)
            throw rejected("oversized", std::to_string(total) + " bytes > limit " +
                                            std::to_string(max_message_bytes));
        if (parts.empty()) throw rejected("truncated", "empty message");
        const std::string_view head = parts[0];
        if (head.substr(0, 4) != std::string_view(MAGIC, 4))
            throw rejected("bad_magic", "part 0 does not start with SCOM");
        if (head.size() >= 5 && static_cast<uint8_t>(head[4]) != VERSION)
            throw rejected("bad_version", "version " + std::to_string(static_cast<uint8_t>(head[4])));
        if (head.size() != HEADER_LEN)
            throw rejected(head.size() < HEADER_LEN ? "truncated" : "bad_magic",
                           "part 0 is " + std::to_string(head.size()) + " bytes");
        const uint8_t kind = static_cast<uint8_t>(head[5]);
        const size_t n_tensors = static_cast<uint8_t>(head[6]) | (static_cast<uint8_t>(head[7]) << 8);
        const uint64_t seq = read_u64_le(head.data() + 8);
        if (kind != KIND_TENSOR && kind != KIND_FRAME && kind != KIND_STATS)
            throw rejected("bad_kind", "unknown kind " + std::to_string(kind));
        if (parts.size() != 2 + n_tensors)
            throw rejected("truncated", "header announces " + std::to_string(n_tensors) + " tensors");

        const std::string_view text = parts[1];
        if (text.substr(0, 3) == "\xEF\xBB\xBF") // Python's decoder takes no byte-order mark
            throw rejected("bad_json", "JSON starts with a byte-order mark");
        ojson body;
        json_reader reader(body);
        if (!ojson::sax_parse(text.data(), text.data() + text.size(), &reader))
            throw rejected("bad_json", "part 1 is not JSON (or nested too deeply)");
        if (!body.is_object() || !body.contains("tensors"))
            throw rejected("bad_json", "not an object with a tensors list");
        const ojson& specs = body["tensors"];
        const ojson empty_meta = ojson::object();
        const ojson& meta = body.contains("meta") ? body["meta"] : empty_meta;
        if (!specs.is_array() || !meta.is_object() || specs.size() != n_tensors)
            throw rejected("bad_json", "tensors must be a list of n_tensors entries, meta an object");
        const std::vector<tensor_spec> checked = check_specs(specs, parts);
        if (kind != KIND_TENSOR) // tensor_source checks the kind after a complete decode
            throw rejected("bad_kind", "tensor_source takes TENSOR messages");

        // messages.tensor_message({**meta, "seq": seq}, tensors): meta first, then tensors, shapes,
        // dtypes, each dict with its first entry last (dict_add order).
        pmt::pmt_t vectors = pmt::make_dict(), shapes = pmt::make_dict(), dtypes = pmt::make_dict();
        for (size_t i = 0; i < checked.size(); i++) {
            const tensor_spec& t = checked[i];
            pmt::pmt_t key = symbol(t.name);
            pmt::pmt_t shape = pmt::make_vector(t.shape.size(), pmt::PMT_NIL);
            for (size_t d = 0; d < t.shape.size(); d++) pmt::vector_set(shape, d, pmt::from_long(t.shape[d]));
            vectors = pmt::dcons(pmt::cons(key, tensor_vector(t, parts[2 + i])), vectors);
            shapes = pmt::dcons(pmt::cons(key, shape), shapes);
            dtypes = pmt::dcons(pmt::cons(key, pmt::string_to_symbol(t.dtype->name)), dtypes);
        }
        static const pmt::pmt_t KEY_META = pmt::mp("meta"), KEY_TENSORS = pmt::mp("tensors"),
                                KEY_SHAPES = pmt::mp("shapes"), KEY_DTYPES = pmt::mp("dtypes"),
                                KEY_SEQ = pmt::mp("seq");
        pmt::pmt_t msg = pmt::dcons(pmt::cons(KEY_META, meta_dict(meta, KEY_SEQ, integer(seq))),
                                    pmt::make_dict());
        msg = pmt::dcons(pmt::cons(KEY_TENSORS, vectors), msg);
        msg = pmt::dcons(pmt::cons(KEY_SHAPES, shapes), msg);
        out = pmt::dcons(pmt::cons(KEY_DTYPES, dtypes), msg);
        return "";
    } catch (const rejected& err) {
        out = pmt::PMT_NIL;
        return err.reason;
    }
}

// ---------------------------------------------------------------------------------- JSON out
namespace {

//! float.__repr__ (json writes floats so): the receiver's, which writes its FRAME's meta the same way.
void python_float(double v, std::string& out) { ofat_rx_kernels::append_float_repr(out, v); }

struct malformed_pmt : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct meta_unwritable : std::runtime_error {
    using std::runtime_error::runtime_error;
};

//! json's encode_basestring_ascii of UTF-8 text; throws malformed_pmt for text that is not UTF-8
//! (Python cannot read such a symbol: messages.parse_serialized refuses the message).
void json_string(const std::string& text, std::string& out)
{
    static const char* HEX = "0123456789abcdef";
    auto u_escape = [&](uint32_t c) {
        out += "\\u";
        for (int s = 12; s >= 0; s -= 4) out += HEX[(c >> s) & 0xF];
    };
    out += '"';
    const auto* p = reinterpret_cast<const uint8_t*>(text.data());
    const auto* end = p + text.size();
    while (p < end) {
        uint32_t c = *p++;
        if (c >= 0x80) { // a UTF-8 sequence, checked as Python's strict decoder checks it
            int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : -1;
            if (more < 0 || c > 0xF4 || end - p < more) throw malformed_pmt("symbol is not UTF-8");
            c &= (0x3F >> more);
            for (int i = 0; i < more; i++) {
                if ((p[i] & 0xC0) != 0x80) throw malformed_pmt("symbol is not UTF-8");
                c = (c << 6) | (p[i] & 0x3F);
            }
            p += more;
            if ((more == 2 && (c < 0x800 || (c >= 0xD800 && c < 0xE000))) || (more == 3 && (c < 0x10000 || c > 0x10FFFF)))
                throw malformed_pmt("symbol is not UTF-8");
            if (c >= 0x10000) {
                c -= 0x10000;
                u_escape(0xD800 | (c >> 10));
                u_escape(0xDC00 | (c & 0x3FF));
            } else {
                u_escape(c);
            }
            continue;
        }
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (c < 0x20 || c == 0x7F)
                u_escape(c);
            else
                out += static_cast<char>(c);
        }
    }
    out += '"';
}

//! Python's reading of a PMT dict (messages._decode): its (key, value) cells in the order added.
std::vector<std::pair<pmt::pmt_t, pmt::pmt_t>> dict_cells(const pmt::pmt_t& dict)
{
    std::vector<std::pair<pmt::pmt_t, pmt::pmt_t>> cells;
    for (pmt::pmt_t cell = dict; !pmt::is_null(cell); cell = pmt::cdr(cell)) {
        if (!pmt::is_pair(cell) || !pmt::is_pair(pmt::car(cell)))
            throw malformed_pmt("PMT dict entry that is not a (key . value) pair");
        cells.emplace_back(pmt::caar(cell), pmt::cdar(cell));
    }
    return { cells.rbegin(), cells.rend() };
}

bool is_mapping(const pmt::pmt_t& p) { return !pmt::is_null(p) && pmt::is_dict(p); }

//! A PMT whose Python form (messages._decode) is an int: integer or uint64 (not a bool).
bool python_int(const pmt::pmt_t& p, bool& negative, uint64_t& magnitude_or_value, int64_t& value)
{
    if (pmt::is_uint64(p)) {
        negative = false;
        magnitude_or_value = pmt::to_uint64(p);
        return true;
    }
    if (pmt::is_integer(p)) {
        value = pmt::to_long(p);
        negative = value < 0;
        magnitude_or_value = static_cast<uint64_t>(value);
        return true;
    }
    return false;
}

template <typename T>
void numbers(const T* v, size_t n, std::string& out)
{
    out += '[';
    for (size_t i = 0; i < n; i++) {
        if (i) out += ", ";
        if constexpr (std::is_floating_point_v<T>) {
            if (!std::isfinite(static_cast<double>(v[i]))) throw meta_unwritable("NaN or infinity");
            python_float(static_cast<double>(v[i]), out);
        } else {
            out += std::to_string(v[i]);
        }
    }
    out += ']';
}

//! A meta value as json.JSONEncoder(allow_nan=False, default=wire._json_default) writes what
//! messages.parse_serialized reads from it. Throws malformed_pmt (no Python form: the message is
//! refused as malformed, found first) or meta_unwritable (no JSON form: bad_meta).
void json_value(const pmt::pmt_t& v, std::string& out, std::string& meta_error, int depth);

void json_key(const pmt::pmt_t& k, std::string& out, std::string& meta_error)
{
    bool negative;
    uint64_t u;
    int64_t i;
    if (pmt::is_symbol(k)) {
        json_string(pmt::symbol_to_string(k), out);
    } else if (pmt::is_bool(k)) {
        out += pmt::to_bool(k) ? "\"true\"" : "\"false\"";
    } else if (pmt::is_null(k)) {
        out += "\"null\"";
    } else if (python_int(k, negative, u, i)) {
        out += '"' + (pmt::is_uint64(k) ? std::to_string(u) : std::to_string(i)) + '"';
    } else if (pmt::is_real(k)) {
        std::string text;
        if (!std::isfinite(pmt::to_double(k))) meta_error = "a NaN or infinite key";
        python_float(pmt::to_double(k), text);
        out += '"' + text + '"';
    } else if (meta_error.empty()) {
        meta_error = "a meta key JSON cannot hold";
    }
}

void json_value(const pmt::pmt_t& v, std::string& out, std::string& meta_error, int depth)
{
    if (depth > 1000) throw malformed_pmt("PMT nested too deeply");
    bool negative;
    uint64_t u;
    int64_t i;
    size_t n;
    if (pmt::is_null(v)) {
        out += "null";
    } else if (pmt::is_bool(v)) {
        out += pmt::to_bool(v) ? "true" : "false";
    } else if (pmt::is_symbol(v)) {
        json_string(pmt::symbol_to_string(v), out);
    } else if (python_int(v, negative, u, i)) {
        out += pmt::is_uint64(v) ? std::to_string(u) : std::to_string(i);
    } else if (pmt::is_real(v)) {
        const double d = pmt::to_double(v);
        if (!std::isfinite(d) && meta_error.empty()) meta_error = "a NaN or infinite float";
        python_float(std::isfinite(d) ? d : 0.0, out);
    } else if (pmt::is_complex(v)) {
        if (meta_error.empty()) meta_error = "a complex number";
    } else if (pmt::is_dict(v)) {
        out += '{';
        bool first = true;
        for (const auto& [key, value] : dict_cells(v)) {
            if (!first) out += ", ";
            first = false;
            json_key(key, out, meta_error);
            out += ": ";
            json_value(value, out, meta_error, depth + 1);
        }
        out += '}';
    } else if (pmt::is_pair(v)) { // a tuple (car, cdr)
        out += '[';
        json_value(pmt::car(v), out, meta_error, depth + 1);
        out += ", ";
        json_value(pmt::cdr(v), out, meta_error, depth + 1);
        out += ']';
    } else if (pmt::is_vector(v) || pmt::is_tuple(v)) {
        const bool vec = pmt::is_vector(v);
        n = pmt::length(v);
        out += '[';
        for (size_t k = 0; k < n; k++) {
            if (k) out += ", ";
            json_value(vec ? pmt::vector_ref(v, k) : pmt::tuple_ref(v, k), out, meta_error, depth + 1);
        }
        out += ']';
    } else if (pmt::is_uniform_vector(v)) { // numpy's tolist()
        size_t len = 0;
        // the elements first: they set len (an argument beside them would be read before)
        auto list = [&](const auto* elements) { numbers(elements, len, out); };
        try {
            if (pmt::is_u8vector(v)) list(pmt::u8vector_elements(v, len));
            else if (pmt::is_s8vector(v)) list(pmt::s8vector_elements(v, len));
            else if (pmt::is_u16vector(v)) list(pmt::u16vector_elements(v, len));
            else if (pmt::is_s16vector(v)) list(pmt::s16vector_elements(v, len));
            else if (pmt::is_u32vector(v)) list(pmt::u32vector_elements(v, len));
            else if (pmt::is_s32vector(v)) list(pmt::s32vector_elements(v, len));
            else if (pmt::is_u64vector(v)) list(pmt::u64vector_elements(v, len));
            else if (pmt::is_s64vector(v)) list(pmt::s64vector_elements(v, len));
            else if (pmt::is_f32vector(v)) list(pmt::f32vector_elements(v, len));
            else if (pmt::is_f64vector(v)) list(pmt::f64vector_elements(v, len));
            else if (meta_error.empty()) meta_error = "a complex array";
        } catch (const meta_unwritable& err) {
            if (meta_error.empty()) meta_error = err.what();
        }
    } else {
        throw malformed_pmt("a PMT without a Python form");
    }
}

//! Whether Python can hash the value of this PMT (a dict key must be hashable).
bool hashable(const pmt::pmt_t& p)
{
    if (pmt::is_null(p) || pmt::is_bool(p) || pmt::is_symbol(p) || pmt::is_number(p)) return true;
    if (pmt::is_dict(p) || pmt::is_vector(p) || pmt::is_uniform_vector(p)) return false;
    if (pmt::is_pair(p)) return hashable(pmt::car(p)) && hashable(pmt::cdr(p));
    if (pmt::is_tuple(p)) {
        for (size_t k = 0; k < pmt::length(p); k++)
            if (!hashable(pmt::tuple_ref(p, k))) return false;
        return true;
    }
    return false;
}

//! Throws malformed_pmt where messages.parse_serialized cannot read the message at all: a PMT type
//! without a Python form, a symbol that is not UTF-8, an unhashable dict key.
void readable(const pmt::pmt_t& v, int depth)
{
    if (depth > 1000) throw malformed_pmt("PMT nested too deeply");
    if (pmt::is_null(v) || pmt::is_bool(v) || pmt::is_number(v) || pmt::is_uniform_vector(v)) return;
    if (pmt::is_symbol(v)) {
        std::string ignored;
        json_string(pmt::symbol_to_string(v), ignored);
    } else if (pmt::is_dict(v)) {
        for (const auto& [key, value] : dict_cells(v)) {
            readable(key, depth + 1);
            if (!hashable(key)) throw malformed_pmt("an unhashable dict key");
            readable(value, depth + 1);
        }
    } else if (pmt::is_pair(v)) {
        readable(pmt::car(v), depth + 1);
        readable(pmt::cdr(v), depth + 1);
    } else if (pmt::is_vector(v)) {
        for (size_t k = 0; k < pmt::length(v); k++) readable(pmt::vector_ref(v, k), depth + 1);
    } else if (pmt::is_tuple(v)) {
        for (size_t k = 0; k < pmt::length(v); k++) readable(pmt::tuple_ref(v, k), depth + 1);
    } else {
        throw malformed_pmt("a PMT without a Python form");
    }
}

//! Python's truth of a PMT dtype entry (messages._parse: `dtypes.get(name) or default`).
bool falsy(const pmt::pmt_t& p)
{
    if (pmt::is_null(p)) return true;
    if (pmt::is_bool(p)) return !pmt::to_bool(p);
    if (pmt::is_symbol(p)) return pmt::symbol_to_string(p).empty();
    if (pmt::is_integer(p)) return pmt::to_long(p) == 0;
    if (pmt::is_uint64(p)) return pmt::to_uint64(p) == 0;
    if (pmt::is_real(p)) return pmt::to_double(p) == 0.0;
    return false;
}

//! A PMT dict cell's value for `key` (a symbol), or nullptr.
const pmt::pmt_t* lookup(const std::vector<std::pair<pmt::pmt_t, pmt::pmt_t>>& cells, const pmt::pmt_t& key)
{
    const pmt::pmt_t* found = nullptr;
    for (const auto& cell : cells)
        if (pmt::eqv(cell.first, key)) found = &cell.second; // Python's dict keeps the last one
    return found;
}

using known_dtype = message_dtypes::dtype;

const pmt::pmt_t WIRE_FORM_KEY = pmt::mp("semcom_wire");

//! The wire form's parts (messages.wire_parts), or false when `msg` is not in the wire form.
bool wire_form_parts(const pmt::pmt_t& msg, std::vector<std::string>& parts, uint64_t& seq)
{
    if (!pmt::is_pair(msg) || pmt::is_dict(msg)) return false;
    const pmt::pmt_t car = pmt::car(msg);
    if (!is_mapping(car) || !pmt::is_null(pmt::cdr(car)) || !pmt::eqv(pmt::caar(car), WIRE_FORM_KEY) ||
        !pmt::is_integer(pmt::cdar(car)) || pmt::to_long(pmt::cdar(car)) != 1 || !pmt::is_u8vector(pmt::cdr(msg)))
        return false;
    size_t len = 0;
    const uint8_t* raw = pmt::u8vector_elements(pmt::cdr(msg), len);
    parts.clear();
    size_t pos = 0;
    while (pos < len) {
        if (pos + 4 > len) throw malformed_pmt("wire-form message: a part length runs past the end");
        const size_t n = raw[pos] | (raw[pos + 1] << 8) | (raw[pos + 2] << 16) | (size_t(raw[pos + 3]) << 24);
        pos += 4;
        if (pos + n > len) throw malformed_pmt("wire-form message: a part runs past the end");
        parts.emplace_back(reinterpret_cast<const char*>(raw + pos), n);
        pos += n;
    }
    if (parts.empty() || parts[0].size() != HEADER_LEN)
        throw malformed_pmt("wire-form message: header of the wrong size");
    const std::string& head = parts[0];
    const size_t n_tensors = static_cast<uint8_t>(head[6]) | (static_cast<uint8_t>(head[7]) << 8);
    if (head.compare(0, 4, MAGIC, 4) != 0 || static_cast<uint8_t>(head[4]) != VERSION ||
        static_cast<uint8_t>(head[5]) != KIND_FRAME || parts.size() != 2 + n_tensors)
        throw malformed_pmt("wire-form message is not a version 1 FRAME of 2 + n_tensors parts");
    seq = read_u64_le(head.data() + 8);
    return true;
}

} // namespace

std::string encode_frame_message(const pmt::pmt_t& msg, std::vector<std::string>& parts, uint64_t& seq)
{
    try {
        if (wire_form_parts(msg, parts, seq)) return "";
        if (!is_mapping(msg)) throw malformed_pmt("not a PMT dict");
        // Everything Python would read first (messages.parse_serialized reads the whole message).
        readable(msg, 0);
        std::string meta_error;
        const auto body = dict_cells(msg);
        static const pmt::pmt_t KEY_META = pmt::mp("meta"), KEY_TENSORS = pmt::mp("tensors"),
                                KEY_SHAPES = pmt::mp("shapes"), KEY_DTYPES = pmt::mp("dtypes"),
                                KEY_SEQ = pmt::mp("seq");
        const pmt::pmt_t *meta = lookup(body, KEY_META), *vectors = lookup(body, KEY_TENSORS),
                         *shapes = lookup(body, KEY_SHAPES), *dtypes = lookup(body, KEY_DTYPES);
        if (!meta || !vectors || !shapes) throw malformed_pmt("tensor message lacks meta, tensors or shapes");
        for (const pmt::pmt_t* d : { meta, shapes })
            if (!pmt::is_null(*d) && !pmt::is_dict(*d)) throw malformed_pmt("meta, shapes and dtypes must be dicts");
        if (dtypes && !pmt::is_null(*dtypes) && !pmt::is_dict(*dtypes))
            throw malformed_pmt("meta, shapes and dtypes must be dicts");
        if (!pmt::is_null(*vectors) && !pmt::is_dict(*vectors))
            throw malformed_pmt("'tensors' must be a dict name -> uniform vector");
        const auto shape_cells = dict_cells(*shapes);
        const auto dtype_cells = dtypes ? dict_cells(*dtypes) : decltype(shape_cells){};
        struct tensor {
            pmt::pmt_t name, vector;
            const known_dtype* dtype;
            std::vector<int64_t> shape;
        };
        std::vector<tensor> tensors;
        for (const auto& [name, flat] : dict_cells(*vectors)) {
            if (!pmt::is_uniform_vector(flat)) throw malformed_pmt("a tensor that is not a uniform vector");
            const pmt::pmt_t* named = lookup(dtype_cells, name);
            const known_dtype* dtype = nullptr;
            if (named && !falsy(*named)) {
                if (!pmt::is_symbol(*named) || !(dtype = message_dtypes::named(pmt::symbol_to_string(*named))))
                    throw malformed_pmt("unknown dtype");
            } else {
                dtype = message_dtypes::own_dtype(message_dtypes::storage_of(flat));
            }
            if (!dtype || message_dtypes::storage_of(flat) != dtype->store)
                throw malformed_pmt("PMT vector does not hold its dtype");
            const pmt::pmt_t* shape = lookup(shape_cells, name);
            if (!shape || !(pmt::is_vector(*shape) || pmt::is_tuple(*shape)))
                throw malformed_pmt("missing or invalid shape");
            tensor t{ name, flat, dtype, {} };
            const size_t rank = pmt::length(*shape);
            unsigned __int128 size = 1;
            for (size_t k = 0; k < rank; k++) {
                const pmt::pmt_t d = pmt::is_vector(*shape) ? pmt::vector_ref(*shape, k) : pmt::tuple_ref(*shape, k);
                int64_t dim;
                if (pmt::is_bool(d)) dim = pmt::to_bool(d);
                else if (pmt::is_integer(d) && pmt::to_long(d) >= 0) dim = pmt::to_long(d);
                else throw malformed_pmt("invalid shape");
                t.shape.push_back(dim);
                size = std::min<unsigned __int128>(size * static_cast<uint64_t>(dim), (unsigned __int128)1 << 100);
            }
            if (size != pmt::length(flat)) throw malformed_pmt("shape does not match the values");
            tensors.push_back(std::move(t));
        }
        // tensor_sink: an integer meta["seq"] in [0, 2^64)
        const auto meta_cells = dict_cells(*meta);
        const pmt::pmt_t* seq_value = lookup(meta_cells, KEY_SEQ);
        bool negative;
        uint64_t u;
        int64_t i;
        if (!seq_value || !python_int(*seq_value, negative, u, i) || negative)
            throw malformed_pmt("meta['seq'] must be an integer in [0, 2^64)");
        seq = u;
        // wire.encode_arrays: the tensor count, then per tensor its name and dtype, then the JSON.
        if (tensors.size() > 0xFFFF) return "bad_meta";
        std::string json = "{\"tensors\": [";
        for (size_t k = 0; k < tensors.size(); k++) {
            const tensor& t = tensors[k];
            if (!pmt::is_symbol(t.name)) return "bad_json";
            if (!t.dtype->wire) return "bad_dtype";
            if (k) json += ", ";
            json += "{\"name\": ";
            json_string(pmt::symbol_to_string(t.name), json);
            json += ", \"dtype\": \"";
            json += t.dtype->name;
            json += "\", \"shape\": [";
            for (size_t d = 0; d < t.shape.size(); d++) json += (d ? ", " : "") + std::to_string(t.shape[d]);
            json += "]}";
        }
        json += "], \"meta\": ";
        if (pmt::is_null(*meta))
            json += "{}";
        else
            json_value(*meta, json, meta_error, 0);
        json += '}';
        if (!meta_error.empty()) return "bad_meta";

        parts.clear();
        std::string head(HEADER_LEN, '\0');
        std::memcpy(head.data(), MAGIC, 4);
        head[4] = static_cast<char>(VERSION);
        head[5] = static_cast<char>(KIND_FRAME);
        head[6] = static_cast<char>(tensors.size() & 0xFF);
        head[7] = static_cast<char>(tensors.size() >> 8);
        for (int b = 0; b < 8; b++) head[8 + b] = static_cast<char>((seq >> (8 * b)) & 0xFF);
        parts.push_back(std::move(head));
        parts.push_back(std::move(json));
        for (const tensor& t : tensors) {
            size_t bytes = 0;
            const void* data = pmt::uniform_vector_elements(t.vector, bytes);
            parts.emplace_back(static_cast<const char*>(data), bytes);
        }
        return "";
    } catch (const malformed_pmt&) {
        return "malformed";
    } catch (const pmt::exception&) {
        return "malformed";
    } catch (const std::out_of_range&) {
        return "malformed";
    }
}

} // namespace semcom
} // namespace gr
