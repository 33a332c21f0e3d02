// Tests of schedule: PyTorch's closed forms at known epochs, warmup, parse_schedule.
#include "nnmark/optim/schedule.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

using namespace nnmark;

namespace {

doctest::Approx near(double value) { return doctest::Approx(value).epsilon(1e-12); }

}  // namespace

TEST_CASE("schedule: constant") {
    const auto s = schedule::constant(0.01);
    CHECK(s.at(0) == 0.01);
    CHECK(s.at(7.5) == 0.01);
    CHECK(s.name() == "constant");
}

TEST_CASE("schedule: step decay changes exactly at the boundaries (StepLR)") {
    const auto s = schedule::step_decay(0.1, 0.1, 30);
    CHECK(s.at(0) == 0.1);
    CHECK(s.at(29) == 0.1);
    CHECK(s.at(29.999) == 0.1);  // fractional epochs of the first period
    CHECK(s.at(30) == near(0.01));
    CHECK(s.at(59.5) == near(0.01));
    CHECK(s.at(60) == near(0.001));
    const auto half = schedule::step_decay(1.0, 0.5, 2);
    CHECK(half.at(1) == 1.0);
    CHECK(half.at(2) == 0.5);
    CHECK(half.at(5) == 0.25);
    CHECK(half.at(6) == 0.125);
}

TEST_CASE("schedule: cosine at start, middle, quarter and end (CosineAnnealingLR)") {
    const auto s = schedule::cosine(0.1, 10);
    CHECK(s.at(0) == near(0.1));
    CHECK(s.at(5) == near(0.05));
    // Quarter way by hand: 0.05 * (1 + cos(pi / 4)) = 0.05 * 1.70710678 = 0.0853553391.
    CHECK(s.at(2.5) == doctest::Approx(0.0853553391).epsilon(1e-9));
    CHECK(std::abs(s.at(10)) < 1e-15);
    CHECK(std::abs(s.at(13)) < 1e-15);  // held at the minimum
    const auto with_min = schedule::cosine(0.1, 10, 0.01);
    CHECK(with_min.at(0) == near(0.1));
    CHECK(with_min.at(5) == near(0.055));
    CHECK(with_min.at(10) == near(0.01));
    CHECK(with_min.at(20) == near(0.01));
}

TEST_CASE("schedule: linear warmup scales the curve until the warmup ends") {
    const auto s = schedule::cosine(0.1, 10).with_warmup(2);
    const auto plain = schedule::cosine(0.1, 10);
    CHECK(s.at(0) == 0.0);
    CHECK(s.at(1) == near(0.5 * plain.at(1)));
    CHECK(s.at(1.5) == near(0.75 * plain.at(1.5)));
    CHECK(s.at(2) == plain.at(2));
    CHECK(s.at(7) == plain.at(7));
    CHECK(s.warmup_epochs() == 2.0);
    CHECK(schedule::constant(0.2).with_warmup(0) == schedule::constant(0.2));
}

TEST_CASE("schedule: parse_schedule builds each named curve") {
    const auto constant = parse_schedule("constant", 0.05, 20);
    CHECK(constant == schedule::constant(0.05));

    // "step" on 30 epochs: a tenth every 10 epochs.
    const auto step = parse_schedule("step", 0.1, 30);
    CHECK(step.kind() == schedule::curve::step_decay);
    CHECK(step.at(9.9) == 0.1);
    CHECK(step.at(10) == near(0.01));
    CHECK(step.at(20) == near(0.001));
    // On 10 epochs: every 4, so at most two decays within the run.
    CHECK(parse_schedule("step", 0.1, 10) == schedule::step_decay(0.1, 0.1, 4));

    const auto cosine = parse_schedule("cosine", 0.1, 8);
    CHECK(cosine == schedule::cosine(0.1, 8));
    CHECK(cosine.at(4) == near(0.05));
    CHECK(cosine.name() == "cosine");
    CHECK(step.name() == "step");
}

TEST_CASE("schedule: bad names and values are rejected") {
    try {
        parse_schedule("linear", 0.1, 10);
        FAIL("expected an argument_error");
    } catch (const argument_error& e) {
        const std::string message = e.what();
        CHECK(message.find("'linear'") != std::string::npos);
        CHECK(message.find("constant, step, cosine") != std::string::npos);
    }
    CHECK_THROWS_AS(parse_schedule("", 0.1, 10), argument_error);
    CHECK_THROWS_AS(parse_schedule("Cosine", 0.1, 10), argument_error);
    CHECK_THROWS_AS(parse_schedule("cosine", 0.1, 0), argument_error);
    CHECK_THROWS_AS(parse_schedule("cosine", -0.1, 10), argument_error);
    CHECK_THROWS_AS(schedule::step_decay(0.1, 0.1, 0), argument_error);
    CHECK_THROWS_AS(schedule::cosine(0.1, 10, -1), argument_error);
    CHECK_THROWS_AS(schedule::constant(0.1).with_warmup(-1), argument_error);
    CHECK_THROWS_AS(schedule::constant(0.1).at(-0.5), argument_error);
}
