#include "nnmark/watermark/embed_schedule.hpp"

#include <doctest/doctest.h>

using namespace nnmark;

TEST_CASE("embed schedule: constant is the paper's plain mixing") {
    const auto s = parse_embed_schedule("constant", 1.0, 10);
    for (int e = 0; e < 10; ++e) CHECK(s.at(e) == 1.0);
}

TEST_CASE("embed schedule: warmup ramps over the first fifth, then holds") {
    const auto s = parse_embed_schedule("warmup", 2.0, 10);  // ramp of 2 epochs
    CHECK(s.at(0) == doctest::Approx(1.0));
    CHECK(s.at(1) == doctest::Approx(2.0));
    CHECK(s.at(9) == doctest::Approx(2.0));
    const auto one = parse_embed_schedule("warmup", 1.0, 1);
    CHECK(one.at(0) == doctest::Approx(1.0));
}

TEST_CASE("embed schedule: step doubles the weight in the second half") {
    const auto s = parse_embed_schedule("step", 0.5, 10);
    CHECK(s.at(4) == doctest::Approx(0.5));
    CHECK(s.at(5) == doctest::Approx(1.0));
}

TEST_CASE("embed schedule: bad names and weights are rejected") {
    CHECK_THROWS_AS(parse_embed_schedule("linear", 1.0, 10), argument_error);
    CHECK_THROWS_AS(parse_embed_schedule("constant", -1.0, 10), argument_error);
    CHECK_THROWS_AS(parse_embed_schedule("constant", 1.0, 0), argument_error);
}
