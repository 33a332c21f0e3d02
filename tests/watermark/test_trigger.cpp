// trigger.hpp: pick_indices draws distinct pool items reproducibly, and the shared
// make_triggers keeps each picked item's label, in pick order.
#include "nnmark/watermark/trigger.hpp"

#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>

using namespace nnmark;

namespace trigger_test {

// A generator whose "trigger" is the source image inverted, to see what make_triggers does.
class inverting_generator : public trigger_generator {
public:
    std::string kind() const override { return "inverting"; }
    layer_config parameters() const override { return {}; }
    dataset make(const dataset& pool, index_t count, rng& random) const override {
        return detail::make_triggers(*this, pool, count, random, pool.item_shape(),
                                     [](std::span<const std::uint8_t> in, std::span<std::uint8_t> out) {
                                         std::ranges::transform(in, out.begin(), [](std::uint8_t v) { return 255 - v; });
                                     });
    }
};

}  // namespace trigger_test
using namespace trigger_test;

TEST_CASE("trigger: pick_indices draws distinct items, the same ones for the same rng state") {
    const dataset pool = testing::make_quadrant_dataset(17, 1);
    for (const index_t count : {index_t{0}, index_t{1}, index_t{7}, index_t{17}}) {
        CAPTURE(count);
        rng a(5), b(5);
        const auto picked = pick_indices(pool, count, a, "test");
        CHECK(picked == pick_indices(pool, count, b, "test"));
        CHECK(static_cast<index_t>(picked.size()) == count);
        CHECK(std::set<index_t>(picked.begin(), picked.end()).size() == picked.size());
        CHECK(std::ranges::all_of(picked, [&](index_t i) { return i >= 0 && i < pool.size(); }));
    }
    rng a(5), c(6);
    CHECK(pick_indices(pool, 7, a, "test") != pick_indices(pool, 7, c, "test"));
    // A smaller count draws a prefix of a larger one: new triggers can be added to a key.
    rng small(9), large(9);
    const auto few = pick_indices(pool, 4, small, "test"), more = pick_indices(pool, 10, large, "test");
    CHECK(std::equal(few.begin(), few.end(), more.begin()));
}

TEST_CASE("trigger: pick_indices refuses more images than the pool holds, naming both counts") {
    const dataset pool = testing::make_quadrant_dataset(5, 1);
    rng random(1);
    CHECK_THROWS_WITH_AS(pick_indices(pool, 6, random, "content trigger"),
                         doctest::Contains("content trigger: cannot pick 6 distinct images from 'quadrants', which holds 5"),
                         argument_error);
    CHECK_THROWS_AS(pick_indices(dataset{}, 0, random, "noise trigger"), argument_error);
}

TEST_CASE("trigger: make_triggers transforms the picked items in pick order and keeps their labels") {
    const dataset pool = testing::make_quadrant_dataset(12, 3);
    const inverting_generator generator;
    rng random(4), replay(4);
    const dataset triggers = generator.make(pool, 5, random);
    const auto picked = pick_indices(pool, 5, replay, "inverting trigger");
    REQUIRE(triggers.size() == 5);
    CHECK(triggers.classes == pool.classes);
    for (index_t k = 0; k < 5; ++k) {
        const index_t source = picked[static_cast<std::size_t>(k)];
        CHECK(triggers.labels[static_cast<std::size_t>(k)] == pool.labels[static_cast<std::size_t>(source)]);
        CHECK(triggers.images.item(k)[3] == 255 - pool.images.item(source)[3]);
    }
}
