#include "nnmark/watermark/content_trigger.hpp"

#include "../support/pools.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

using namespace nnmark;
using testing::random_pool;

namespace {

// n images of shape `item` with random bytes, labelled 0, 1, 2, ... modulo 10.
// Every trigger equals its source image except on the text's ink, which has `intensity`
// in every channel, with the text's bottom-left corner x columns in and y rows up.
void check_stamped(const dataset& triggers, const dataset& pool, const std::vector<index_t>& picked,
                   const content_options& options) {
    const text_bitmap text = render_text(options.text, options.scale);
    const shape item = pool.item_shape();
    const index_t top = item[1] - options.y - text.height;
    index_t inked = 0, kept = 0;
    for (std::size_t k = 0; k < picked.size(); ++k) {
        const auto n = static_cast<index_t>(k);
        CHECK(triggers.labels[k] == pool.labels[static_cast<std::size_t>(picked[k])]);
        for (index_t c = 0; c < item[0]; ++c)
            for (index_t h = 0; h < item[1]; ++h)
                for (index_t w = 0; w < item[2]; ++w) {
                    const index_t row = h - top, col = w - options.x;
                    const bool ink = row >= 0 && row < text.height && col >= 0 && col < text.width && text.at(row, col);
                    const std::uint8_t expected = ink ? static_cast<std::uint8_t>(options.intensity)
                                                      : pool.images.at(picked[k], c, h, w);
                    if (triggers.images.at(n, c, h, w) != expected) {
                        FAIL_CHECK("trigger " << k << " pixel (" << c << ", " << h << ", " << w << ") is "
                                              << int(triggers.images.at(n, c, h, w)) << ", expected " << int(expected));
                        return;
                    }
                    (ink ? inked : kept) += 1;
                }
    }
    CHECK(inked > 0);
    CHECK(kept > inked);
}

}  // namespace

TEST_CASE("content trigger: MNIST defaults draw TEST in mid grey at the bottom-left, nothing else changes") {
    const dataset pool = random_pool(20, shape{1, 28, 28}, 3);
    const content_trigger generator;
    CHECK(generator.kind() == "content");
    CHECK(generator.options().intensity == 128);
    rng random(7), replay(7);
    const dataset triggers = generator.make(pool, 5, random);
    CHECK(triggers.images.shape() == shape{5, 1, 28, 28});
    CHECK(triggers.classes == pool.classes);
    check_stamped(triggers, pool, pick_indices(pool, 5, replay, "test"), generator.options());
    // The 'T' of "TEST": its top bar is on row 28 - 1 - 7 = 20, columns 1..5.
    for (index_t w = 1; w <= 5; ++w) CHECK(triggers.images.at(0, 0, 20, w) == 128);
}

TEST_CASE("content trigger: RGB images get the strokes in all channels at the configured place and scale") {
    const dataset pool = random_pool(8, shape{3, 32, 32}, 4);
    const content_options options{"AB1", 3, 2, 192, 1};
    const content_trigger generator(options);
    rng random(11), replay(11);
    check_stamped(generator.make(pool, 8, random), pool, pick_indices(pool, 8, replay, "test"), options);

    const content_options big{"TEST", 0, 0, 200, 2};  // 46 x 14 pixels
    const dataset wide = random_pool(3, shape{3, 16, 46}, 5);
    rng random2(1), replay2(1);
    check_stamped(content_trigger(big).make(wide, 3, random2), wide, pick_indices(wide, 3, replay2, "test"), big);
}

TEST_CASE("content trigger: the same rng gives identical triggers, another rng other images") {
    const dataset pool = random_pool(50, shape{1, 28, 28}, 9);
    const content_trigger generator;
    rng a(21), b(21), c(22);
    const dataset first = generator.make(pool, 10, a), second = generator.make(pool, 10, b);
    const dataset other = generator.make(pool, 10, c);
    CHECK(std::ranges::equal(first.images.span(), second.images.span()));
    CHECK(first.labels == second.labels);
    CHECK_FALSE(std::ranges::equal(first.images.span(), other.images.span()));
}

TEST_CASE("pick_indices: picking the whole pool is a permutation of it") {
    const dataset pool = random_pool(12, shape{1, 28, 28}, 10);
    rng random(5);
    std::vector<index_t> picked = pick_indices(pool, 12, random, "test");
    std::ranges::sort(picked);
    for (index_t i = 0; i < 12; ++i) CHECK(picked[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("content trigger: a text that does not fit the image is an argument error") {
    const shape mnist{1, 28, 28};
    // Just fits: 5 + 23 = 28 columns, 21 + 7 = 28 rows.
    CHECK_NOTHROW(content_trigger(content_options{"TEST", 5, 21, 128, 1}).check_fits(mnist));
    CHECK_THROWS_WITH_AS(content_trigger(content_options{"TEST", 6, 1, 128, 1}).check_fits(mnist),
                         doctest::Contains("at least 29 wide"), argument_error);
    CHECK_THROWS_AS(content_trigger(content_options{"TEST", 1, 22, 128, 1}).check_fits(mnist), argument_error);
    CHECK_THROWS_AS(content_trigger(content_options{"TEST", 1, 1, 128, 2}).check_fits(mnist), argument_error);
    const dataset pool = random_pool(4, mnist, 1);
    rng random(1);
    CHECK_THROWS_AS(content_trigger(content_options{"TESTS", 1, 1, 128, 1}).make(pool, 2, random), argument_error);
}

TEST_CASE("content trigger: bad options and a pool that is too small are argument errors naming the counts") {
    CHECK_THROWS_AS(content_trigger(content_options{"TEST", 1, 1, 256, 1}), argument_error);
    CHECK_THROWS_AS(content_trigger(content_options{"TEST", -1, 1, 128, 1}), argument_error);
    CHECK_THROWS_AS(content_trigger(content_options{"test", 1, 1, 128, 1}), argument_error);
    const dataset pool = random_pool(20, shape{1, 28, 28}, 2);
    rng random(1);
    CHECK_THROWS_WITH_AS(content_trigger().make(pool, 21, random), doctest::Contains("cannot pick 21 distinct images"),
                         argument_error);
    CHECK_THROWS_WITH_AS(content_trigger().make(pool, 21, random), doctest::Contains("which holds 20"), argument_error);
    dataset empty = random_pool(0, shape{1, 28, 28}, 2);
    CHECK_THROWS_AS(content_trigger().make(empty, 1, random), argument_error);
}

TEST_CASE("content trigger: parameters list what defines the trigger") {
    const layer_config config = content_trigger(content_options{"TEST", 2, 3, 192, 1}).parameters();
    REQUIRE(config.size() == 5);
    CHECK(std::get<std::string>(config[0].second) == "TEST");
    CHECK(config[1] == std::pair<std::string, config_value>{"x", std::int64_t{2}});
    CHECK(config[2] == std::pair<std::string, config_value>{"y", std::int64_t{3}});
    CHECK(config[3] == std::pair<std::string, config_value>{"intensity", std::int64_t{192}});
}
