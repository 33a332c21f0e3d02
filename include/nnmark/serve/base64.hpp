// base64: the standard alphabet of RFC 4648 (section 4), as TensorFlow Serving's REST
// API carries binary values: {"b64": "<base64 text>"}.
//
// decode_base64 is strict, because its input comes from the network: only the 64
// letters, '=' padding only at the end and only as much as the length needs (the
// unpadded form is accepted too, as many encoders omit it), no whitespace, and the
// unused low bits of the last letter must be zero, so each byte string has exactly
// one accepted text. Anything else throws format_error naming `what` and the offset.
#pragma once

#include "nnmark/core/error.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

namespace detail::base64 {

inline constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The 6-bit value of each letter, -1 for every other byte.
inline constexpr std::array<std::int8_t, 256> letter_values = [] {
    std::array<std::int8_t, 256> values{};
    values.fill(-1);
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        values[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return values;
}();

}  // namespace detail::base64

inline std::string encode_base64(std::span<const unsigned char> bytes) {
    using detail::base64::alphabet;
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
        std::uint32_t group = 0;
        for (std::size_t k = 0; k < 3; ++k) group = group << 8 | (k < n ? bytes[i + k] : 0u);
        for (std::size_t k = 0; k < 4; ++k) out.push_back(k <= n ? alphabet[(group >> (18 - 6 * k)) & 63] : '=');
    }
    return out;
}

inline std::vector<unsigned char> decode_base64(std::string_view text, std::string_view what) {
    const auto fail = [&](std::size_t offset, const std::string& problem) {
        throw format_error(std::string(what) + ": invalid base64 at character " + std::to_string(offset) + ": " +
                           problem);
    };
    std::size_t letters = text.size();
    while (letters > 0 && text.size() - letters < 2 && text[letters - 1] == '=') --letters;
    const std::size_t padding = text.size() - letters;

    std::vector<unsigned char> out;
    out.reserve(letters / 4 * 3 + 2);
    std::uint32_t bits = 0;
    int pending = 0;  // bits collected in `bits` and not yet written
    for (std::size_t i = 0; i < letters; ++i) {
        const int value = detail::base64::letter_values[static_cast<unsigned char>(text[i])];
        if (value < 0) fail(i, text[i] == '=' ? "'=' before the end" : "a byte outside the base64 alphabet");
        bits = (bits << 6 | static_cast<std::uint32_t>(value)) & 0xFFFFFF;
        pending += 6;
        if (pending >= 8) {
            pending -= 8;
            out.push_back(static_cast<unsigned char>(bits >> pending));
        }
    }
    if (letters % 4 == 1) fail(letters, "a text of " + std::to_string(letters) + " letters cannot end a byte string");
    if (padding > 0 && (letters + padding) % 4 != 0)
        fail(letters, std::to_string(padding) + " '=' do not complete a group of 4");
    if ((bits & ((1u << pending) - 1)) != 0) fail(letters - 1, "the last letter has bits set past the end of the data");
    return out;
}

}  // namespace nnmark
