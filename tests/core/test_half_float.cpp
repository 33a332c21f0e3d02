#include "nnmark/core/half_float.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

using namespace nnmark;

namespace {

// binary16 from its definition (IEEE 754-2008, 3.4), in double: an independent
// reference for the bit manipulation of float_from_f16.
double f16_by_definition(std::uint16_t bits) {
    const int sign = bits >> 15, exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
    const double magnitude = exponent == 0    ? std::ldexp(fraction, -24)
                             : exponent == 31 ? (fraction ? std::numeric_limits<double>::quiet_NaN()
                                                          : std::numeric_limits<double>::infinity())
                                              : std::ldexp(1.0 + fraction / 1024.0, exponent - 15);
    return sign ? -magnitude : magnitude;
}

}  // namespace

TEST_CASE("half_float: every F16 bit pattern widens to the value its definition gives") {
    int checked = 0;
    for (std::uint32_t bits = 0; bits <= 0xffff; ++bits) {
        const float got = float_from_f16(static_cast<std::uint16_t>(bits));
        const double want = f16_by_definition(static_cast<std::uint16_t>(bits));
        if (std::isnan(want)) {
            CHECK(std::isnan(got));
        } else {
            CHECK(static_cast<double>(got) == want);
            CHECK(std::signbit(got) == std::signbit(want));  // -0 stays -0
        }
        ++checked;
    }
    CHECK(checked == 65536);
}

TEST_CASE("half_float: landmarks of F16 and BF16") {
    CHECK(float_from_f16(0x3c00) == 1.0f);
    CHECK(float_from_f16(0xc000) == -2.0f);
    CHECK(float_from_f16(0x7bff) == 65504.0f);       // the largest finite half
    CHECK(float_from_f16(0x0001) == 0x1p-24f);       // the smallest subnormal
    CHECK(float_from_f16(0x03ff) == 1023 * 0x1p-24f);  // the largest subnormal
    CHECK(float_from_f16(0x7c00) == std::numeric_limits<float>::infinity());
    CHECK(std::isnan(float_from_f16(0x7e00)));

    CHECK(float_from_bf16(0x3f80) == 1.0f);
    CHECK(float_from_bf16(0xc049) == -3.140625f);
    CHECK(float_from_bf16(0x0001) == std::bit_cast<float>(0x00010000u));  // a float subnormal
    CHECK(float_from_bf16(0xff80) == -std::numeric_limits<float>::infinity());
    CHECK(std::isnan(float_from_bf16(0x7fc0)));
    // Every bfloat16 is the upper half of the float it widens to.
    for (std::uint32_t bits = 0; bits <= 0xffff; bits += 7)
        CHECK(std::bit_cast<std::uint32_t>(float_from_bf16(static_cast<std::uint16_t>(bits))) == bits << 16);
}
