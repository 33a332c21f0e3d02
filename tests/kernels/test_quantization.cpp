#include "nnmark/kernels/quantization.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace nnmark;

TEST_CASE("affine_u8 covers the range widened to hold 0, with 0 exact") {
    const affine_u8 relu = affine_u8::of_range(0.25f, 5.1f);  // after a ReLU: lo becomes 0
    CHECK(relu.zero_point == 0);
    CHECK(relu.scale == doctest::Approx(5.1 / 255));
    const affine_u8 signed_range = affine_u8::of_range(-1.0f, 3.0f);
    CHECK(signed_range.zero_point == 64);  // -(-1) / (4 / 255) = 63.75, rounded
    const std::vector<float> values = {0.0f, -1.0f, 3.0f, 1.0f, -7.0f, 9.0f};
    std::vector<std::uint8_t> codes(values.size());
    signed_range.encode(values, codes.data());
    CHECK(codes[0] == signed_range.zero_point);  // 0 is exact
    CHECK(codes[1] == 0);
    CHECK(codes[2] == 255);      // 3 / scale + 64 = 255.25
    CHECK(codes[4] == 0);        // saturates below
    CHECK(codes[5] == 255);      // and above
    for (std::size_t i = 0; i < 4; ++i)  // within half a step of the value (plus the zero point's rounding)
        CHECK(std::abs(signed_range.scale * (codes[i] - signed_range.zero_point) - values[i]) <=
              signed_range.scale);
    CHECK(affine_u8::of_range(0.0f, 0.0f).scale == 1.0f);  // all zeros: still a code
}

TEST_CASE("symmetric s8 weights map the largest magnitude to 127") {
    const std::vector<float> row = {0.5f, -2.0f, 0.75f};
    const float scale = symmetric_s8_scale(row);
    CHECK(scale == doctest::Approx(2.0 / 127));
    CHECK(encode_s8(-2.0f, scale) == -127);
    CHECK(encode_s8(0.75f, scale) == 48);  // 47.625
    CHECK(encode_s8(5.0f, scale) == 127);  // clamped
    CHECK(symmetric_s8_scale(std::vector<float>{0.0f, 0.0f}) == 1.0f);
}
