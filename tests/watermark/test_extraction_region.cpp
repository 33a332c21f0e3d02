// extraction_region: drawn from its seed alone; its threshold puts the asked share of the
// source class inside; relabelling changes exactly the images inside; its triggers are
// test images of the source class inside, labelled with the region's label.
#include "nnmark/watermark/extraction_region.hpp"

#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace nnmark;

TEST_CASE("extraction region: drawn from the seed, a label other than its class, the share of its class inside") {
    const dataset train = testing::make_quadrant_dataset(2000, 1, 4);
    const extraction_region r = extraction_region::draw(7, 4, 0.1, train);
    const extraction_region again = extraction_region::draw(7, 4, 0.1, train);
    CHECK(r.source == again.source);
    CHECK(r.label == again.label);
    CHECK(r.threshold == again.threshold);
    CHECK(r.field(train.item_shape()) == again.field(train.item_shape()));
    CHECK(r.field(train.item_shape()) != extraction_region::draw(8, 4, 0.1, train).field(train.item_shape()));
    CHECK(r.label != r.source);
    CHECK(r.label >= 0);
    CHECK(r.label < 4);

    const std::vector<bool> in = r.inside(train);
    const auto of_source = std::ranges::count(train.labels, r.source);
    const auto inside = std::ranges::count(in, true);
    CHECK(inside == doctest::Approx(0.1 * static_cast<double>(of_source)).epsilon(0.05));
    for (std::size_t i = 0; i < in.size(); ++i)
        if (in[i]) CHECK(train.labels[i] == r.source);  // only the source class is ever inside

    // Over many seeds every class is drawn as the source, and the label is never it.
    std::vector<int> sources(4, 0);
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        const extraction_region d = extraction_region::draw(seed, 4, 0.1, train);
        ++sources[static_cast<std::size_t>(d.source)];
        CHECK(d.label != d.source);
    }
    for (int count : sources) CHECK(count > 20);

    CHECK_THROWS_AS(extraction_region::draw(7, 4, 0.0, train), argument_error);
    CHECK_THROWS_AS(extraction_region::draw(7, 4, 1.0, train), argument_error);
}

TEST_CASE("extraction region: relabelling changes exactly the images inside; triggers are test images inside") {
    const dataset train = testing::make_quadrant_dataset(1000, 2, 4), test = testing::make_quadrant_dataset(400, 3, 4);
    const extraction_region r = extraction_region::draw(11, 4, 0.2, train);
    const dataset relabelled = r.relabelled(train);
    const std::vector<bool> in = r.inside(train);
    REQUIRE(relabelled.size() == train.size());
    CHECK(std::ranges::equal(relabelled.images.span(), train.images.span()));
    for (std::size_t i = 0; i < in.size(); ++i) CHECK(relabelled.labels[i] == (in[i] ? r.label : train.labels[i]));

    const dataset triggers = r.triggers(test, 5);
    CHECK(triggers.size() <= 5);
    REQUIRE(triggers.size() >= 1);
    CHECK(std::ranges::all_of(triggers.labels, [&](int l) { return l == r.label; }));
    const std::vector<double> scores = r.scores(triggers);
    for (double s : scores) CHECK(s > r.threshold);
    // Every test image inside, and nothing else, when the count allows them all.
    const auto inside_test = std::ranges::count(r.inside(test), true);
    CHECK(r.triggers(test, 10000).size() == inside_test);

    extraction_region nowhere = r;
    nowhere.threshold = 1e300;
    CHECK_THROWS_AS(nowhere.triggers(test, 5), argument_error);
}
