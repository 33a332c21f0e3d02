#include "nnmark/watermark/mosaic.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

// PNG decoding (stb_image) comes with mosaic.hpp, through core/stb.hpp.

#include <memory>

using namespace nnmark;

namespace {

// A decoded PNG: width x height pixels of `channels` interleaved bytes.
struct decoded_png {
    int width = 0, height = 0, channels = 0;
    std::unique_ptr<unsigned char, decltype(&stbi_image_free)> pixels{nullptr, &stbi_image_free};

    int at(int x, int y, int c = 0) const { return pixels.get()[(y * width + x) * channels + c]; }
};

decoded_png read_png(const std::filesystem::path& path) {
    const std::vector<unsigned char> bytes = read_file(path);
    decoded_png png;
    png.pixels.reset(stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &png.width, &png.height,
                                           &png.channels, 0));
    REQUIRE(png.pixels != nullptr);
    return png;
}

// n images [channels, h, w] whose pixel (k, c, y, x) is k * 60 + c * 20 + y * 4 + x.
dataset numbered_images(index_t n, index_t channels, index_t h, index_t w) {
    dataset data;
    data.images.resize(shape{n, channels, h, w});
    for (index_t k = 0; k < n; ++k)
        for (index_t c = 0; c < channels; ++c)
            for (index_t y = 0; y < h; ++y)
                for (index_t x = 0; x < w; ++x)
                    data.images.at(k, c, y, x) = static_cast<std::uint8_t>(k * 60 + c * 20 + y * 4 + x);
    data.labels.assign(static_cast<std::size_t>(n), 0);
    data.name = "numbered";
    return data;
}

}  // namespace

TEST_CASE("mosaic: grey images in a grid, upscaled, with white gaps and a white empty cell") {
    const testing::temp_dir dir;
    const dataset images = numbered_images(3, 1, 4, 5);
    write_mosaic_png(images, dir / "grid.png", 2, 3);
    const decoded_png png = read_png(dir / "grid.png");
    // 2 columns of 15-pixel tiles and one gap; 2 rows of 12-pixel tiles and one gap.
    CHECK(png.width == 2 * 15 + 2);
    CHECK(png.height == 2 * 12 + 2);
    CHECK(png.channels == 1);
    const int left[] = {0, 17, 0}, top[] = {0, 0, 14};
    int mismatches = 0;
    for (index_t k = 0; k < 3; ++k)
        for (int y = 0; y < 12; ++y)
            for (int x = 0; x < 15; ++x)
                mismatches += png.at(left[k] + x, top[k] + y) != images.images.at(k, 0, y / 3, x / 3);
    CHECK(mismatches == 0);
    CHECK(png.at(0, 0) == 0);
    CHECK(png.at(17 + 14, 11) == 60 + 3 * 4 + 4);
    CHECK(png.at(15, 5) == 255);   // gap between columns
    CHECK(png.at(3, 12) == 255);   // gap between rows
    CHECK(png.at(20, 20) == 255);  // the empty fourth cell
}

TEST_CASE("mosaic: RGB images keep their colours, fewer images than columns make one row") {
    const testing::temp_dir dir;
    const dataset images = numbered_images(2, 3, 2, 2);
    write_mosaic_png(images, dir / "rgb.png");
    const decoded_png png = read_png(dir / "rgb.png");
    CHECK(png.width == 2 * 4 + 2);
    CHECK(png.height == 4);
    REQUIRE(png.channels == 3);
    for (int c = 0; c < 3; ++c) {
        CHECK(png.at(0, 0, c) == 20 * c);
        CHECK(png.at(3, 3, c) == 20 * c + 4 + 1);
        CHECK(png.at(6, 0, c) == 60 + 20 * c);
        CHECK(png.at(4, 1, c) == 255);
    }
}

TEST_CASE("mosaic: no images, bad layout, other channel counts and a missing directory are errors") {
    const testing::temp_dir dir;
    CHECK_THROWS_AS(write_mosaic_png(numbered_images(0, 1, 4, 4), dir / "empty.png"), argument_error);
    CHECK_THROWS_AS(write_mosaic_png(numbered_images(2, 1, 4, 4), dir / "bad.png", 0), argument_error);
    CHECK_THROWS_AS(write_mosaic_png(numbered_images(2, 1, 4, 4), dir / "bad.png", 2, 0), argument_error);
    CHECK_THROWS_WITH_AS(write_mosaic_png(numbered_images(2, 2, 4, 4), dir / "two.png"),
                         doctest::Contains("[2, 2, 4, 4]"), shape_error);
    CHECK_THROWS_AS(write_mosaic_png(numbered_images(2, 1, 4, 4), dir / "missing" / "x.png"), io_error);
    CHECK_FALSE(std::filesystem::exists(dir / "bad.png"));
}
