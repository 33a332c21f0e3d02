#include "nnmark/watermark/noise_trigger.hpp"

#include "../support/pools.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

using namespace nnmark;
using testing::random_pool;

namespace {

// n images of shape `item` with random bytes, labelled 1.
}  // namespace

TEST_CASE("noise trigger: every trigger moves each unclamped pixel by the same fixed offset") {
    const shape item{3, 32, 32};
    const dataset pool = random_pool(30, item, 1, 1);
    const noise_trigger generator(item, 0.4, 42);
    CHECK(generator.kind() == "noise");
    rng random(5), replay(5);
    const dataset triggers = generator.make(pool, 10, random);
    REQUIRE(triggers.images.shape() == shape{10, 3, 32, 32});
    CHECK(triggers.labels == std::vector<int>(10, 1));
    const std::vector<index_t> picked = pick_indices(pool, 10, replay, "test");
    const std::vector<int>& offsets = generator.offsets();
    index_t unclamped = 0, clamped = 0, offset_mismatches = 0, clamp_mismatches = 0, formula_mismatches = 0;
    for (index_t k = 0; k < 10; ++k) {
        const auto source = pool.images.item(picked[static_cast<std::size_t>(k)]);
        const auto trigger = triggers.images.item(k);
        for (std::size_t i = 0; i < source.size(); ++i) {
            const int moved = int{source[i]} + offsets[i];
            if (moved >= 0 && moved <= 255) {
                offset_mismatches += int{trigger[i]} - int{source[i]} != offsets[i];
                ++unclamped;
            } else {
                clamp_mismatches += int{trigger[i]} != (moved < 0 ? 0 : 255);
                ++clamped;
            }
            // The definition: clamp(pixel / 255 + noise, 0, 1) stored back with rounding.
            const double defined = std::round(std::clamp(source[i] / 255.0 + generator.pattern()[i], 0.0, 1.0) * 255.0);
            formula_mismatches += trigger[i] != defined;
        }
    }
    CHECK(unclamped > 0);
    CHECK(clamped > 0);  // sigma 0.4 pushes many pixels past 0 or 1
    CHECK(offset_mismatches == 0);
    CHECK(clamp_mismatches == 0);
    CHECK(formula_mismatches == 0);
}

TEST_CASE("noise trigger: the pattern has mean 0 and standard deviation sigma") {
    for (const double sigma : {0.1, 0.4}) {
        const noise_trigger generator(shape{3, 32, 32}, sigma, 7);
        const std::vector<double>& noise = generator.pattern();
        REQUIRE(noise.size() == 3072);
        double sum = 0, squares = 0;
        for (double v : noise) sum += v;
        const double mean = sum / static_cast<double>(noise.size());
        for (double v : noise) squares += (v - mean) * (v - mean);
        const double stddev = std::sqrt(squares / static_cast<double>(noise.size() - 1));
        CHECK(std::abs(mean) < 4 * sigma / std::sqrt(3072.0));
        CHECK(stddev == doctest::Approx(sigma).epsilon(0.05));
        const auto quantized = [](int offset, double v) { return offset == static_cast<int>(std::lround(255 * v)); };
        CHECK(std::ranges::equal(generator.offsets(), noise, quantized));
    }
}

TEST_CASE("noise trigger: the pattern comes from the seed alone") {
    const shape item{1, 28, 28};
    CHECK(noise_trigger(item, 0.1, 3).pattern() == noise_trigger(item, 0.1, 3).pattern());
    CHECK(noise_trigger(item, 0.1, 3).pattern() != noise_trigger(item, 0.1, 4).pattern());
    // Different image picks (different rngs for make) see the same pattern: an image
    // picked by both gets the same trigger.
    const dataset pool = random_pool(1, item, 2, 1);
    const noise_trigger generator(item, 0.1, 3);
    rng a(1), b(999);
    CHECK(std::ranges::equal(generator.make(pool, 1, a).images.span(), generator.make(pool, 1, b).images.span()));
}

TEST_CASE("noise trigger: the same rng gives identical triggers, another rng other images") {
    const shape item{1, 28, 28};
    const dataset pool = random_pool(40, item, 3, 1);
    const noise_trigger generator(item, 0.1, 1);
    rng a(8), b(8), c(9);
    const dataset first = generator.make(pool, 10, a);
    CHECK(std::ranges::equal(first.images.span(), generator.make(pool, 10, b).images.span()));
    CHECK_FALSE(std::ranges::equal(first.images.span(), generator.make(pool, 10, c).images.span()));
}

TEST_CASE("noise trigger: bad sigma, a pool of another shape and a small pool are errors") {
    const shape item{1, 28, 28};
    CHECK_THROWS_AS(noise_trigger(item, 0.0, 1), argument_error);
    CHECK_THROWS_AS(noise_trigger(item, std::numeric_limits<double>::quiet_NaN(), 1), argument_error);
    CHECK_THROWS_AS(noise_trigger(shape{28, 28}, 0.1, 1), shape_error);
    rng random(1);
    const dataset cifar = random_pool(3, shape{3, 32, 32}, 1, 1);
    CHECK_THROWS_WITH_AS(noise_trigger(item, 0.1, 1).make(cifar, 1, random), doctest::Contains("[3, 32, 32]"),
                         shape_error);
    const dataset mnist = random_pool(3, item, 1, 1);
    CHECK_THROWS_AS(noise_trigger(item, 0.1, 1).make(mnist, 5, random), argument_error);
}

TEST_CASE("noise trigger: parameters give sigma and seed") {
    const layer_config config = noise_trigger(shape{1, 28, 28}, 0.1, 77).parameters();
    REQUIRE(config.size() == 2);
    CHECK(config[0] == std::pair<std::string, config_value>{"sigma", 0.1});
    CHECK(config[1] == std::pair<std::string, config_value>{"seed", std::int64_t{77}});
}
