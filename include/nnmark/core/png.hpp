// png: 8-bit images written as PNG files, the one place nnmark encodes them (trigger
// mosaics, watermark/mosaic.hpp; report figures, report/line_chart.hpp).
//
// Contract: write_png(png, width, height, channels, pixels) encodes `pixels` (rows top
// to bottom, channels interleaved: 1 grey, 3 RGB) with stb_image_write (core/stb.hpp)
// and replaces the file atomically (core/atomic_file.hpp). argument_error when the
// size or channel count does not fit `pixels`, io_error when encoding or writing fails.
#pragma once

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/core/stb.hpp"

#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

inline void write_png(const std::filesystem::path& png, index_t width, index_t height, index_t channels,
                      std::span<const unsigned char> pixels) {
    const std::string where = "PNG '" + png.string() + "'";
    if (width < 1 || height < 1 || (channels != 1 && channels != 3) ||
        pixels.size() != static_cast<std::size_t>(width * height * channels))
        throw argument_error(where + ": expected " + std::to_string(width) + " x " + std::to_string(height) +
                             " pixels of 1 or 3 channels (" + std::to_string(channels) + " given) in as many bytes, got " +
                             std::to_string(pixels.size()) + " bytes");
    std::vector<unsigned char> encoded;
    if (stbi_write_png_to_func(detail::append_bytes, &encoded, static_cast<int>(width), static_cast<int>(height),
                               static_cast<int>(channels), pixels.data(), static_cast<int>(width * channels)) == 0)
        throw io_error(where + ": PNG encoding of " + std::to_string(width) + "x" + std::to_string(height) +
                       " pixels failed");
    write_file_atomically(png, std::span<const unsigned char>(encoded));
}

}  // namespace nnmark
