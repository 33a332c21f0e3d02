#include "nnmark/layers/initializers.hpp"

#include "nnmark/core/rng.hpp"

#include "../support/statistics.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

using namespace nnmark;

TEST_CASE("initializers: he_normal has standard deviation sqrt(2 / fan_in) and follows the seed") {
    std::vector<double> w(20000), again(20000);
    rng random(1), same(1);
    he_normal(std::span<double>(w), 50, random);
    he_normal(std::span<double>(again), 50, same);
    CHECK(w == again);
    const testing::moments m = testing::sample_moments(w);
    CHECK(std::abs(m.mean) < 0.05 * 0.2);
    CHECK(m.stddev == doctest::Approx(0.2).epsilon(0.05));

    std::vector<float> f(8);
    rng from_seed(1);
    he_normal(std::span<float>(f), 50, from_seed);
    for (std::size_t i = 0; i < f.size(); ++i) CHECK(f[i] == static_cast<float>(w[i]));  // same draws, rounded
    CHECK_THROWS_AS(he_normal(std::span<float>(f), 0, from_seed), argument_error);
}

TEST_CASE("initializers: glorot_uniform stays within sqrt(6 / (fan_in + fan_out)) with the matching spread") {
    const double limit = std::sqrt(6.0 / (30 + 70));
    std::vector<double> w(20000), again(20000);
    rng random(2), same(2);
    glorot_uniform(std::span<double>(w), 30, 70, random);
    glorot_uniform(std::span<double>(again), 30, 70, same);
    CHECK(w == again);
    CHECK(std::all_of(w.begin(), w.end(), [&](double v) { return -limit <= v && v <= limit; }));
    const testing::moments m = testing::sample_moments(w);
    CHECK(std::abs(m.mean) < 0.05 * limit);
    CHECK(m.stddev == doctest::Approx(limit / std::sqrt(3.0)).epsilon(0.05));
    CHECK(*std::max_element(w.begin(), w.end()) > 0.99 * limit);  // the whole range is used
    CHECK_THROWS_AS(glorot_uniform(std::span<double>(w), 30, 0, random), argument_error);
}
