/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

// The tensor dtypes of messages.py (gr-semcom/python/semcom/messages.py, the definition) and the PMT
// uniform-vector storage each is held in: the one C++ table ofat_tx_fast and the compiled bridge read.
// Private to gr-semcom/lib (not installed).

#ifndef INCLUDED_SEMCOM_MESSAGE_DTYPES_H
#define INCLUDED_SEMCOM_MESSAGE_DTYPES_H

#include <pmt/pmt.h>
#include <string_view>

namespace gr {
namespace semcom {
namespace message_dtypes {

//! PMT uniform-vector storage types, in the order of OWN_DTYPE below.
enum class storage { u8, s8, u16, s16, u32, s32, u64, s64, f32, f64, c32, c64, none };

inline storage storage_of(const pmt::pmt_t& v)
{
    if (pmt::is_f32vector(v)) return storage::f32;
    if (pmt::is_f64vector(v)) return storage::f64;
    if (pmt::is_s32vector(v)) return storage::s32;
    if (pmt::is_s64vector(v)) return storage::s64;
    if (pmt::is_u16vector(v)) return storage::u16;
    if (pmt::is_u8vector(v)) return storage::u8;
    if (pmt::is_s8vector(v)) return storage::s8;
    if (pmt::is_s16vector(v)) return storage::s16;
    if (pmt::is_u32vector(v)) return storage::u32;
    if (pmt::is_u64vector(v)) return storage::u64;
    if (pmt::is_c32vector(v)) return storage::c32;
    if (pmt::is_c64vector(v)) return storage::c64;
    return storage::none;
}

//! A dtype name of messages.py: its storage, whether it is real-valued (what OFAT carries) and
//! whether the wire protocol has it (docs/wire-protocol.md's dtype table).
struct dtype {
    const char* name;
    storage store;
    bool real;
    bool wire;
};

inline constexpr dtype DTYPES[] = {
    { "float32", storage::f32, true, true },      { "float64", storage::f64, true, true },
    { "float16", storage::u16, true, true },      { "int8", storage::s8, true, true },
    { "int16", storage::s16, true, false },       { "int32", storage::s32, true, true },
    { "int64", storage::s64, true, true },        { "uint8", storage::u8, true, true },
    { "uint16", storage::u16, true, false },      { "uint32", storage::u32, true, false },
    { "uint64", storage::u64, true, false },      { "bool", storage::u8, false, false },
    { "complex64", storage::c32, false, true },   { "complex128", storage::c64, false, true },
};

inline const dtype* named(std::string_view name)
{
    for (const auto& d : DTYPES)
        if (name == d.name) return &d;
    return nullptr;
}

//! The dtype a vector of this storage has when its message names none (its own type: uint16, not
//! float16; uint8, not bool); nullptr for storage::none.
inline const dtype* own_dtype(storage s)
{
    static constexpr const char* OWN_DTYPE[] = { "uint8",  "int8",  "uint16",  "int16",   "uint32",    "int32",
                                                 "uint64", "int64", "float32", "float64", "complex64", "complex128" };
    return s == storage::none ? nullptr : named(OWN_DTYPE[static_cast<int>(s)]);
}

} // namespace message_dtypes
} // namespace semcom
} // namespace gr

#endif /* INCLUDED_SEMCOM_MESSAGE_DTYPES_H */
