// png: grey and RGB pixels written as a PNG decode to the same pixels; sizes that do not
// fit the pixels and unwritable paths are refused without leaving a file.
#include "nnmark/core/png.hpp"

#include "nnmark/core/atomic_file.hpp"
#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace nnmark;

namespace png_test {

// The pixels of the PNG file `path`, decoded with stb_image, and its size and channels.
struct decoded_png {
    int width = 0, height = 0, channels = 0;
    std::vector<unsigned char> pixels;
};

decoded_png decode(const std::filesystem::path& path) {
    const std::vector<unsigned char> bytes = read_file(path);
    decoded_png out;
    unsigned char* data = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &out.width, &out.height,
                                                &out.channels, 0);
    REQUIRE(data != nullptr);
    out.pixels.assign(data, data + out.width * out.height * out.channels);
    stbi_image_free(data);
    return out;
}

}  // namespace png_test
using namespace png_test;

TEST_CASE("png: grey and RGB images decode to the pixels written") {
    testing::temp_dir dir;
    for (const index_t channels : {index_t{1}, index_t{3}}) {
        CAPTURE(channels);
        const index_t width = 7, height = 3;  // odd sizes: no row padding assumed
        std::vector<unsigned char> pixels(static_cast<std::size_t>(width * height * channels));
        for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i * 37 % 256);
        write_png(dir / "image.png", width, height, channels, pixels);
        const decoded_png png = decode(dir / "image.png");
        CHECK(png.width == width);
        CHECK(png.height == height);
        CHECK(png.channels == channels);
        CHECK(png.pixels == pixels);
    }
}

TEST_CASE("png: sizes that do not fit the pixels and unwritable paths are refused") {
    testing::temp_dir dir;
    const std::vector<unsigned char> six(6, 128);
    CHECK_THROWS_WITH_AS(write_png(dir / "bad.png", 2, 2, 3, six), doctest::Contains("got 6 bytes"), argument_error);
    CHECK_THROWS_AS(write_png(dir / "bad.png", 3, 2, 2, six), argument_error);  // 2 channels
    CHECK_THROWS_AS(write_png(dir / "bad.png", 0, 2, 3, six), argument_error);
    CHECK_FALSE(std::filesystem::exists(dir / "bad.png"));
    CHECK_THROWS_AS(write_png(dir / "missing" / "image.png", 2, 1, 3, six), io_error);
}
