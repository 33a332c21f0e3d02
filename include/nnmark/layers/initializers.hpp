// Weight initializers: fill a parameter slice with random initial values.
//
// - he_normal: N(0, 2 / fan_in) (He et al. 2015). Each ReLU halves the second moment
//   of its input, the factor 2 restores it, so activations keep their scale through a
//   deep ReLU stack instead of shrinking (Glorot) or exploding.
// - glorot_uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio
//   2010), variance 2 / (fan_in + fan_out); Keras' default, for tanh/linear layers.
// fan_in is the number of inputs each output sums over (in_channels * k * k for a
// convolution, in_features for a dense layer); fan_out likewise for the backward pass.
//
// Values come only from the given nnmark::rng (its own normal/uniform, not the standard
// library's implementation-defined distributions), in element order, so the same seed
// gives the same weights with any compiler. Draws are made in double and rounded to T.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/shape.hpp"

#include <cmath>
#include <span>
#include <string>

namespace nnmark {

namespace detail {
inline void expect_positive_fan(index_t fan, const char* what, const char* initializer) {
    if (fan < 1)
        throw argument_error(std::string(initializer) + ": expected " + what + " >= 1, got " + std::to_string(fan));
}
}  // namespace detail

template <class T>
void he_normal(std::span<T> w, index_t fan_in, rng& random) {
    detail::expect_positive_fan(fan_in, "fan_in", "he_normal");
    const double stddev = std::sqrt(2.0 / static_cast<double>(fan_in));
    for (T& v : w) v = static_cast<T>(random.normal(0.0, stddev));
}

template <class T>
void glorot_uniform(std::span<T> w, index_t fan_in, index_t fan_out, rng& random) {
    detail::expect_positive_fan(fan_in, "fan_in", "glorot_uniform");
    detail::expect_positive_fan(fan_out, "fan_out", "glorot_uniform");
    const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    for (T& v : w) v = static_cast<T>(random.uniform(-limit, limit));
}

}  // namespace nnmark
