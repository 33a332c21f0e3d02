#include "nnmark/kernels/positive_part.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

using namespace nnmark;

// The one definition every ReLU in the engine shares (the relu layer, the convolutions
// that apply it as they store, the layers that run its backward): what it gives at the
// edges is what a fused and an unfused model must agree on, bit for bit.
TEST_CASE_TEMPLATE("positive_part: v where v > 0, +0 elsewhere, NaN and -0 included", T, float, double) {
    CHECK(positive_part(T(2.5)) == T(2.5));
    CHECK(positive_part(T(-3)) == T(0));
    CHECK_FALSE(std::signbit(positive_part(T(-3))));
    CHECK(positive_part(T(-0.0)) == T(0));
    CHECK_FALSE(std::signbit(positive_part(T(-0.0))));
    const T nan = std::numeric_limits<T>::quiet_NaN();
    CHECK(positive_part(nan) == T(0));
    CHECK(positive_part(std::numeric_limits<T>::infinity()) == std::numeric_limits<T>::infinity());
    CHECK(positive_part(std::numeric_limits<T>::denorm_min()) == std::numeric_limits<T>::denorm_min());
    static_assert(positive_part(T(1)) == T(1));
}

TEST_CASE_TEMPLATE("relu_gradient: dy where the ReLU's output is positive, +0 elsewhere", T, float, double) {
    CHECK(relu_gradient(T(0.5), T(-7)) == T(-7));
    CHECK(relu_gradient(T(0), T(-7)) == T(0));  // the subgradient 0 at 0, as PyTorch
    CHECK_FALSE(std::signbit(relu_gradient(T(0), T(-7))));
    CHECK(relu_gradient(T(-0.0), T(3)) == T(0));
    const T nan = std::numeric_limits<T>::quiet_NaN();
    CHECK(relu_gradient(nan, T(3)) == T(0));     // a NaN output passes no gradient
    CHECK(std::isnan(relu_gradient(T(1), nan)));  // a NaN gradient where it passes stays NaN
    static_assert(relu_gradient(T(2), T(4)) == T(4));
}
