// Safetensors files built by hand, byte by byte, for tests of the reader: a file from
// its header text and data buffer, and the raw bytes of values for that buffer.
#pragma once

#include "files.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace nnmark::testing {

// Appends the bytes of `values` as they lie in memory: little-endian, as safetensors
// stores them, on every platform nnmark builds for.
template <class T>
void append_raw_bytes(bytes& out, const std::vector<T>& values) {
    const std::size_t at = out.size();
    out.resize(at + values.size() * sizeof(T));
    if (!values.empty()) std::memcpy(out.data() + at, values.data(), values.size() * sizeof(T));
}

template <class T>
bytes raw_bytes(const std::vector<T>& values) {
    bytes out;
    append_raw_bytes(out, values);
    return out;
}

// A file from its parts: the 8-byte little-endian length field (normally the header's
// size, but a test may lie), the header text, the data buffer.
inline bytes safetensors_bytes(const std::string& header, const bytes& data, std::uint64_t length_field) {
    // Filled in place: vector::insert after a small vector trips GCC 12's -Warray-bounds.
    bytes out(8 + header.size() + data.size());
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<unsigned char>(length_field >> (8 * i));
    std::copy(header.begin(), header.end(), out.begin() + 8);
    std::copy(data.begin(), data.end(), out.begin() + 8 + static_cast<std::ptrdiff_t>(header.size()));
    return out;
}

inline bytes safetensors_bytes(const std::string& header, const bytes& data) {
    return safetensors_bytes(header, data, header.size());
}

}  // namespace nnmark::testing
