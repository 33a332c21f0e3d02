// serve/png_bounds.hpp: a PNG whose pixel data inflates beyond its header is refused cheaply.
#include "nnmark/serve/png_bounds.hpp"

#include <doctest/doctest.h>
#include <zlib.h>

#include <vector>

namespace {

void put32(std::vector<unsigned char>& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}

void chunk(std::vector<unsigned char>& out, const char* type, const std::vector<unsigned char>& data) {
    put32(out, static_cast<std::uint32_t>(data.size()));
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    put32(out, 0);  // CRC: not checked by the bound
}

// A grey 8-bit PNG with header w x h whose pixel stream inflates `raw` zero bytes.
std::vector<unsigned char> png_with(std::uint32_t w, std::uint32_t h, std::size_t raw) {
    std::vector<unsigned char> file{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, ihdr;
    put32(ihdr, w);
    put32(ihdr, h);
    ihdr.insert(ihdr.end(), {8, 0, 0, 0, 0});
    chunk(file, "IHDR", ihdr);
    const std::vector<unsigned char> zeros(raw);
    uLongf size = compressBound(static_cast<uLong>(raw));
    std::vector<unsigned char> packed(size);
    compress(packed.data(), &size, zeros.data(), static_cast<uLong>(raw));
    packed.resize(size);
    chunk(file, "IDAT", packed);
    chunk(file, "IEND", {});
    return file;
}

}  // namespace

TEST_CASE("png_bounds: a PNG inflating to what its header implies passes, one inflating beyond is refused") {
    CHECK(nnmark::check_png_bounds(png_with(28, 28, 28 * 29), "x").width == 28);
    CHECK_THROWS_AS(nnmark::check_png_bounds(png_with(28, 28, 64 << 20), "x"), nnmark::format_error);
    CHECK_THROWS_AS(nnmark::check_png_bounds(png_with(28, 28, 28 * 29 + 1), "x"), nnmark::format_error);
}
