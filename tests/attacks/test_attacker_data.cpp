// The attacker's data: the paper's Table 5 split (first half of the test set to attack
// with, second half to measure on) and a seeded fraction of the training set.
#include "nnmark/attacks/attacker_data.hpp"

#include "../support/errors.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>

using namespace nnmark;

namespace attacker_data_test {

bool same_image(const dataset& a, index_t i, const dataset& b, index_t j) {
    return std::ranges::equal(a.images.item(i), b.images.item(j));
}

}  // namespace attacker_data_test

TEST_CASE("attacker data: test-half gives the attacker the first half and measures on the second") {
    using namespace attacker_data_test;
    const dataset test = testing::make_quadrant_dataset(41, 1);
    const attack_data d = make_attack_data(dataset{}, test, attacker_split{});
    REQUIRE(d.attacker.size() == 20);
    REQUIRE(d.evaluation.size() == 21);
    for (index_t i = 0; i < 20; ++i) CHECK(same_image(d.attacker, i, test, i));
    for (index_t i = 0; i < 21; ++i) CHECK(same_image(d.evaluation, i, test, 20 + i));
    CHECK(d.attacker.labels == std::vector<int>(test.labels.begin(), test.labels.begin() + 20));
    CHECK(evaluation_half(test).labels == d.evaluation.labels);
}

TEST_CASE("attacker data: train-fraction holds a seeded random share of the training set") {
    using namespace attacker_data_test;
    dataset train = testing::make_quadrant_dataset(200, 2);
    for (index_t i = 0; i < train.size(); ++i) train.images.item(i)[0] = static_cast<std::uint8_t>(i);  // tell them apart
    const dataset test = testing::make_quadrant_dataset(10, 3);
    const attacker_split split{attacker_source::train_fraction, 0.25, 9};
    const attack_data d = make_attack_data(train, test, split);
    REQUIRE(d.attacker.size() == 50);
    std::set<int> seen;
    for (index_t i = 0; i < 50; ++i) seen.insert(d.attacker.images.item(i)[0]);
    CHECK(seen.size() == 50);  // no image twice
    CHECK(make_attack_data(train, test, split).attacker.images.span()[0] == d.attacker.images.span()[0]);
    CHECK(std::ranges::equal(make_attack_data(train, test, split).attacker.images.span(), d.attacker.images.span()));
    CHECK_FALSE(std::ranges::equal(make_attack_data(train, test, {attacker_source::train_fraction, 0.25, 10}).attacker.images.span(),
                                   d.attacker.images.span()));
    CHECK(d.evaluation.labels == evaluation_half(test).labels);  // measured where test-half measures
}

TEST_CASE("attacker data: stripped labels, names, and bad splits") {
    const dataset data = testing::make_quadrant_dataset(6, 4);
    const unlabeled_images thief = strip_labels(data);
    CHECK(thief.size() == 6);
    CHECK(std::ranges::equal(thief.images.span(), data.images.span()));
    CHECK(parse_attacker_source("train-fraction") == attacker_source::train_fraction);
    CHECK(to_string(parse_attacker_source("test-half")) == "test-half");
    CHECK_THROWS_AS(parse_attacker_source("half"), argument_error);
    for (double bad : {0.0, 1.5}) {
        CAPTURE(bad);
        CHECK(testing::contains(testing::error_message<argument_error>([&] {
                                    make_attack_data(data, data, {attacker_source::train_fraction, bad, 1});
                                }),
                                "fraction"));
    }
    CHECK_THROWS_AS(make_attack_data(data, testing::make_quadrant_dataset(1, 5), attacker_split{}), argument_error);
}
