// Helpers for tests that compare a kernel or a layer with its definition: random
// tensors, and reference values computed in double that carry the scale of the
// rounding error an optimized computation of them may make.
#pragma once

#include "nnmark/core/rng.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/core/tensor.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nnmark::testing {

// A tensor of shape `s` filled with independent normal(mean, stddev) draws from `random`.
template <class T>
tensor<T> random_tensor(const shape& s, rng& random, double mean = 0, double stddev = 1) {
    tensor<T> t(s);
    for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<T>(random.normal(mean, stddev));
    return t;
}

// A tensor of standard normal draws from a generator of its own, seeded with `seed`.
template <class T>
tensor<T> random_tensor(const shape& s, std::uint64_t seed) {
    rng random(seed);
    return random_tensor<T>(s, random);
}

// One element of a reference result: the exact-ish value of a sum of terms, and the sum
// of the terms' magnitudes. Summed in another order or another precision, the value may
// differ by about (number of terms) * epsilon * magnitude, not by epsilon * |value|:
// terms that cancel lose their relative precision.
struct reference_sum {
    double value = 0, magnitude = 0;

    void add(double term) {
        value += term;
        magnitude += std::abs(term);
    }
};

// Whether every element of `actual` is within tolerance * (1 + magnitude) of its
// reference (false for a NaN).
template <class T>
bool close_to_reference(const tensor<T>& actual, const std::vector<reference_sum>& expected, double tolerance) {
    REQUIRE(static_cast<std::size_t>(actual.size()) == expected.size());
    for (index_t i = 0; i < actual.size(); ++i) {
        const reference_sum& want = expected[static_cast<std::size_t>(i)];
        if (!(std::abs(static_cast<double>(actual[i]) - want.value) <= tolerance * (1 + want.magnitude))) return false;
    }
    return true;
}

}  // namespace nnmark::testing
