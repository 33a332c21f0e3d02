#include "nnmark/watermark/unrelated_trigger.hpp"

#include "../support/pools.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <vector>

using namespace nnmark;
using testing::random_pool;

namespace {

// n images of shape `item` with random bytes, all labelled `label`.
}  // namespace

TEST_CASE("resize_bilinear: a 2x2 image upscaled to 4x4 gives the half-pixel-centre values") {
    const std::array<std::uint8_t, 4> in{0, 100, 200, 40};
    std::array<std::uint8_t, 16> out{};
    resize_bilinear(in, 2, 2, out, 4, 4);
    // Output rows/columns sample the input at 0, 0.25, 0.75, 1 (edges clamped).
    const std::array<std::uint8_t, 16> expected{0,   25,  75, 100,  //
                                                50,  59,  76, 85,   // 58.75, 76.25 rounded
                                                150, 126, 79, 55,   // 126.25, 78.75 rounded
                                                200, 160, 80, 40};
    CHECK(out == expected);
}

TEST_CASE("resize_bilinear: same size is the identity, halving averages 2x2 blocks") {
    std::vector<std::uint8_t> image(7 * 5);
    for (std::size_t i = 0; i < image.size(); ++i) image[i] = static_cast<std::uint8_t>(i * 7);
    std::vector<std::uint8_t> same(image.size());
    resize_bilinear(image, 7, 5, same, 7, 5);
    CHECK(same == image);

    const std::array<std::uint8_t, 16> four{10, 20, 30, 40,  //
                                            50, 60, 70, 80,  //
                                            0,  0,  255, 255, //
                                            1,  0,  255, 255};
    std::array<std::uint8_t, 4> two{};
    resize_bilinear(four, 4, 4, two, 2, 2);
    CHECK(two == std::array<std::uint8_t, 4>{35, 55, 0, 255});  // 0.25 rounds down to 0
}

TEST_CASE("resize_bilinear: sizes that do not match the buffers are shape errors") {
    std::array<std::uint8_t, 4> in{}, out{};
    CHECK_THROWS_AS(resize_bilinear(in, 2, 3, out, 2, 2), shape_error);
    CHECK_THROWS_AS(resize_bilinear(in, 2, 2, out, 4, 4), shape_error);
    CHECK_THROWS_AS(resize_bilinear(in, 0, 0, out, 2, 2), shape_error);
}

TEST_CASE("unrelated trigger: grey 28x28 images become 3x32x32 with three equal channels") {
    const dataset pool = random_pool(6, shape{1, 28, 28}, 1, 1);
    const unrelated_trigger generator(shape{3, 32, 32});
    CHECK(generator.kind() == "unrelated");
    rng random(3), replay(3);
    const dataset triggers = generator.make(pool, 4, random);
    REQUIRE(triggers.images.shape() == shape{4, 3, 32, 32});
    CHECK(triggers.labels == std::vector<int>(4, 1));
    const std::vector<index_t> picked = pick_indices(pool, 4, replay, "test");
    for (index_t k = 0; k < 4; ++k) {
        std::vector<std::uint8_t> resized(32 * 32);
        resize_bilinear(pool.images.item(picked[static_cast<std::size_t>(k)]), 28, 28, resized, 32, 32);
        const auto item = triggers.images.item(k);
        for (std::size_t c = 0; c < 3; ++c) CHECK(std::ranges::equal(item.subspan(c * 1024, 1024), resized));
    }
}

TEST_CASE("unrelated trigger: a constant image stays constant, a same-shape image is used as it is") {
    dataset flat = random_pool(1, shape{1, 28, 28}, 1, 8);
    flat.images.fill(77);
    rng random(1);
    const dataset up = unrelated_trigger(shape{3, 32, 32}).make(flat, 1, random);
    CHECK(std::ranges::all_of(up.images.span(), [](std::uint8_t v) { return v == 77; }));

    const dataset pool = random_pool(5, shape{1, 28, 28}, 2, 8);
    rng a(9), replay(9);
    const dataset same = unrelated_trigger(shape{1, 28, 28}).make(pool, 5, a);
    const std::vector<index_t> picked = pick_indices(pool, 5, replay, "test");
    for (index_t k = 0; k < 5; ++k)
        CHECK(std::ranges::equal(same.images.item(k), pool.images.item(picked[static_cast<std::size_t>(k)])));
}

TEST_CASE("unrelated trigger: colour images keep their channels") {
    const dataset pool = random_pool(2, shape{3, 16, 16}, 4, 8);
    rng random(2), replay(2);
    const dataset triggers = unrelated_trigger(shape{3, 32, 32}).make(pool, 2, random);
    const index_t source = pick_indices(pool, 2, replay, "test")[0];
    for (std::size_t c = 0; c < 3; ++c) {
        std::vector<std::uint8_t> resized(32 * 32);
        resize_bilinear(pool.images.item(source).subspan(c * 256, 256), 16, 16, resized, 32, 32);
        CHECK(std::ranges::equal(triggers.images.item(0).subspan(c * 1024, 1024), resized));
    }
}

TEST_CASE("unrelated trigger: the same rng gives identical triggers, another rng other images") {
    const dataset pool = random_pool(40, shape{1, 28, 28}, 5, 8);
    const unrelated_trigger generator(shape{3, 32, 32});
    rng a(4), b(4), c(5);
    const dataset first = generator.make(pool, 10, a), second = generator.make(pool, 10, b);
    CHECK(std::ranges::equal(first.images.span(), second.images.span()));
    CHECK_FALSE(std::ranges::equal(first.images.span(), generator.make(pool, 10, c).images.span()));
}

TEST_CASE("unrelated trigger: shapes it cannot convert and small pools are errors") {
    CHECK_THROWS_AS(unrelated_trigger(shape{32, 32}), shape_error);
    CHECK_THROWS_AS(unrelated_trigger(shape{3, 0, 32}), shape_error);
    rng random(1);
    const dataset two_channel = random_pool(3, shape{2, 28, 28}, 1, 8);
    CHECK_THROWS_WITH_AS(unrelated_trigger(shape{3, 32, 32}).make(two_channel, 1, random),
                         doctest::Contains("[2, 28, 28]"), shape_error);
    const dataset rgb = random_pool(3, shape{3, 32, 32}, 1, 8);
    CHECK_THROWS_AS(unrelated_trigger(shape{1, 28, 28}).make(rgb, 1, random), shape_error);
    const dataset grey = random_pool(3, shape{1, 28, 28}, 1, 8);
    CHECK_THROWS_WITH_AS(unrelated_trigger(shape{3, 32, 32}).make(grey, 4, random), doctest::Contains("holds 3"),
                         argument_error);
}

TEST_CASE("unrelated trigger: parameters give the output shape and the resize rule") {
    const layer_config config = unrelated_trigger(shape{3, 32, 32}).parameters();
    REQUIRE(config.size() == 4);
    CHECK(config[0] == std::pair<std::string, config_value>{"channels", std::int64_t{3}});
    CHECK(config[2] == std::pair<std::string, config_value>{"width", std::int64_t{32}});
    CHECK(config[3] == std::pair<std::string, config_value>{"resize", std::string("bilinear")});
}
