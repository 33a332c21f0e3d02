// png_bounds: a PNG file checked against what its header (IHDR) promises, before any
// decoding, so a client cannot make the server inflate gigabytes.
//
// A PNG's pixel data is one zlib stream split over IDAT chunks. Its inflated size is
// fixed by the header: each row is one filter byte plus width * bits-per-pixel bits,
// for the 7 Adam7 passes of an interlaced image (PNG spec, 7 and 8.2). stb_image
// inflates the whole stream into a growing buffer before it compares sizes, so a 2 MB
// "decompression bomb" whose header says 28x28 costs it hundreds of megabytes. Here the
// stream is inflated by zlib into a small scratch buffer, counting bytes, and refused
// as soon as it yields more than the header implies: at most that size plus one
// scratch buffer of work, whatever the file says.
//
// Contract: check_png_bounds(file, where) returns the header of a PNG file whose pixel
// data inflates to no more than the header implies; format_error naming `where`
// otherwise (not a PNG, truncated chunks, bad IHDR, data beyond the header's size, a
// corrupt stream). Files that are not PNG (no PNG signature) are not its business:
// is_png() tells them apart. Too little data is left to the decoder to report.
#pragma once

#include "nnmark/core/error.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace nnmark {

struct png_header {
    std::uint32_t width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    bool interlaced = false;
};

namespace detail::png {

inline constexpr std::array<unsigned char, 8> signature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

inline std::uint32_t big_endian32(const unsigned char* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | std::uint32_t(p[3]);
}

// Samples per pixel of a PNG color type, 0 for a type the spec does not define.
inline int samples_per_pixel(int color_type) {
    switch (color_type) {
        case 0: return 1;  // grey
        case 2: return 3;  // RGB
        case 3: return 1;  // palette index
        case 4: return 2;  // grey + alpha
        case 6: return 4;  // RGBA
        default: return 0;
    }
}

// Bytes of the inflated pixel data of an image with header `h` (filter bytes included).
inline std::uint64_t inflated_size(const png_header& h) {
    const std::uint64_t bits = std::uint64_t(samples_per_pixel(h.color_type)) * std::uint64_t(h.bit_depth);
    const auto rows = [&](std::uint64_t width, std::uint64_t height) {
        return width && height ? height * (1 + (width * bits + 7) / 8) : 0;
    };
    if (!h.interlaced) return rows(h.width, h.height);
    // Adam7: pass p covers the pixels x = x0 + k dx, y = y0 + k dy.
    constexpr int x0[] = {0, 4, 0, 2, 0, 1, 0}, y0[] = {0, 0, 4, 0, 2, 0, 1};
    constexpr int dx[] = {8, 8, 4, 4, 2, 2, 1}, dy[] = {8, 8, 8, 4, 4, 2, 2};
    std::uint64_t total = 0;
    for (int p = 0; p < 7; ++p)
        total += rows((h.width + dx[p] - 1 - x0[p]) / dx[p], (h.height + dy[p] - 1 - y0[p]) / dy[p]);
    return total;
}

inline png_header read_ihdr(std::span<const unsigned char> data, const std::string& where) {
    png_header h;
    if (data.size() != 13) throw format_error(where + ": expected a PNG IHDR chunk of 13 bytes, found " + std::to_string(data.size()));
    h.width = big_endian32(data.data());
    h.height = big_endian32(data.data() + 4);
    h.bit_depth = data[8];
    h.color_type = data[9];
    h.interlaced = data[12] == 1;
    const int d = h.bit_depth;
    const bool depth_ok = (d == 1 || d == 2 || d == 4 || d == 8 || d == 16) && samples_per_pixel(h.color_type) &&
                          (h.color_type == 0 || d >= 8) && (h.color_type != 3 || d <= 8);
    if (!h.width || !h.height || !depth_ok || data[12] > 1)
        throw format_error(where + ": the PNG header is invalid (" + std::to_string(h.width) + "x" +
                           std::to_string(h.height) + ", bit depth " + std::to_string(d) + ", color type " +
                           std::to_string(h.color_type) + ", interlace " + std::to_string(data[12]) + ")");
    return h;
}

// Inflates the IDAT chunks' zlib stream, refusing it once it yields more than `limit` bytes.
class bounded_inflater {
public:
    bounded_inflater(std::uint64_t limit, const std::string& where) : limit_(limit), where_(where) {
        if (inflateInit(&z_) != Z_OK) throw format_error(where + ": zlib cannot start inflating");
    }
    ~bounded_inflater() { inflateEnd(&z_); }
    bounded_inflater(const bounded_inflater&) = delete;
    bounded_inflater& operator=(const bounded_inflater&) = delete;

    void feed(std::span<const unsigned char> chunk) {
        z_.next_in = const_cast<unsigned char*>(chunk.data());  // zlib's API is not const-correct
        z_.avail_in = static_cast<uInt>(chunk.size());
        while (z_.avail_in > 0 && !ended_) {
            z_.next_out = scratch_.data();
            z_.avail_out = static_cast<uInt>(scratch_.size());
            const int status = inflate(&z_, Z_NO_FLUSH);
            if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR)
                throw format_error(where_ + ": the PNG pixel data is not a valid zlib stream (" +
                                   (z_.msg ? z_.msg : "error " + std::to_string(status)) + ")");
            ended_ = status == Z_STREAM_END;
            if (z_.total_out > limit_)
                throw format_error(where_ + ": the PNG pixel data inflates to more than the " +
                                   std::to_string(limit_) + " bytes its header implies");
            if (status == Z_BUF_ERROR && z_.avail_out == scratch_.size()) break;  // needs more input
        }
    }

private:
    std::uint64_t limit_;
    std::string where_;  // a copy: the inflater must not outlive a caller's string
    z_stream z_{};
    std::array<unsigned char, 16384> scratch_{};
    bool ended_ = false;
};

}  // namespace detail::png

inline bool is_png(std::span<const unsigned char> file) {
    return file.size() >= 8 && std::equal(detail::png::signature.begin(), detail::png::signature.end(), file.begin());
}

inline png_header check_png_bounds(std::span<const unsigned char> file, const std::string& where) {
    using namespace detail::png;
    if (!is_png(file)) throw format_error(where + ": expected a PNG file, found no PNG signature");
    std::size_t at = 8;
    std::optional<png_header> header;
    std::optional<bounded_inflater> pixels;
    while (at + 12 <= file.size()) {
        const std::uint64_t length = big_endian32(&file[at]);
        const std::string type(reinterpret_cast<const char*>(&file[at + 4]), 4);
        if (length > file.size() - at - 12)
            throw format_error(where + ": the PNG chunk '" + type + "' at byte " + std::to_string(at) + " claims " +
                               std::to_string(length) + " bytes, more than the file holds");
        const std::span<const unsigned char> data = file.subspan(at + 8, static_cast<std::size_t>(length));
        if (!header) {
            if (type != "IHDR") throw format_error(where + ": expected the PNG chunk IHDR first, found '" + type + "'");
            header = read_ihdr(data, where);
            pixels.emplace(inflated_size(*header), where);
        } else if (type == "IDAT") {
            pixels->feed(data);
        } else if (type == "IEND") {
            return *header;
        }
        at += 12 + static_cast<std::size_t>(length);
    }
    if (!header) throw format_error(where + ": the PNG file ends before its IHDR chunk");
    return *header;  // no IEND: a truncated file, which the decoder reports
}

}  // namespace nnmark
