#include "nnmark/kernels/lowp_gemm.hpp"

#include "nnmark/core/half_float.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace nnmark;

namespace {

// Random codes of a Dot's weights and inputs: int8 over the whole s8 / u8 ranges (the
// extremes included: vpdpbusd must not saturate), bf16 from floats in [-2, 2].
template <class Dot>
struct random_codes {
    std::mt19937 rng{42};
    typename Dot::weight weight() {
        if constexpr (std::is_same_v<Dot, int8_dot>) return static_cast<std::int8_t>(std::uniform_int_distribution<int>(-128, 127)(rng));
        else return bf16_from_float(std::uniform_real_distribution<float>(-2, 2)(rng));
    }
    typename Dot::input input() {
        if constexpr (std::is_same_v<Dot, int8_dot>) return static_cast<std::uint8_t>(std::uniform_int_distribution<int>(0, 255)(rng));
        else return bf16_from_float(std::uniform_real_distribution<float>(-2, 2)(rng));
    }
};

// lowp_gemm against lowp_gemm_reference for A [m x k] (row stride k + 3) and B [n x k]
// (row stride k + 5, the padding filled with values that must not be read: NaN for bf16).
template <class Dot>
void check_against_reference(index_t m, index_t n, index_t k) {
    CAPTURE(m);
    CAPTURE(n);
    CAPTURE(k);
    random_codes<Dot> codes;
    const index_t lda = k + 3, ldb = k + 5;
    std::vector<typename Dot::weight> a(static_cast<std::size_t>(m * lda));
    std::vector<typename Dot::input> b(static_cast<std::size_t>(n * ldb), typename Dot::input(0x7fc1));
    for (index_t i = 0; i < m; ++i)
        for (index_t p = 0; p < k; ++p) a[static_cast<std::size_t>(i * lda + p)] = codes.weight();
    for (index_t j = 0; j < n; ++j)
        for (index_t p = 0; p < k; ++p) b[static_cast<std::size_t>(j * ldb + p)] = codes.input();
    using acc = typename Dot::accumulator;
    std::vector<acc> expected(static_cast<std::size_t>(m * n)), found(expected.size(), acc(-1));
    lowp_gemm_reference<Dot>(m, n, k, a.data(), lda, b.data(), ldb, expected.data(), n);
    lowp_gemm(lowp_weights<Dot>(m, k, a.data(), lda), n, b.data(), ldb, found.data(), n);
    for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) {
            const auto at = static_cast<std::size_t>(i * n + j);
            if constexpr (std::is_same_v<Dot, int8_dot>) {
                REQUIRE(found[at] == expected[at]);
            } else {
                // Products are exact in float; the sums differ by order only: at most
                // k roundings of a partial sum bounded by the sum of the magnitudes.
                double magnitude = 0;
                for (index_t p = 0; p < k; ++p)
                    magnitude += std::abs(static_cast<double>(Dot::product(a[static_cast<std::size_t>(i * lda + p)],
                                                                           b[static_cast<std::size_t>(j * ldb + p)])));
                REQUIRE(std::abs(static_cast<double>(found[at]) - expected[at]) <= 2.0 * k * 0x1p-24 * magnitude);
            }
        }
}

const index_t rows[] = {1, 7, 8, 9, 33};
const index_t cols[] = {1, 15, 16, 17, 47, 48, 49, 100};
const index_t depths[] = {1, 3, 4, 5, 33, 290};

}  // namespace

TEST_CASE_TEMPLATE("lowp_gemm matches lowp_gemm_reference on odd sizes", Dot, int8_dot, bf16_dot) {
    for (index_t m : rows)
        for (index_t n : cols)
            for (index_t k : depths) check_against_reference<Dot>(m, n, k);
}

TEST_CASE("lowp_product_in_place reads columns where they lie, as the reference multiplies them") {
    // B laid out [group][column][group's elements] with room for 15 columns past the
    // last (the whole vectors the kernel loads): column c's q-th group at
    // c * group + q * stride, as a stride-1 convolution's bordered image has them.
    using Dot = int8_dot;
    constexpr index_t g = Dot::group;
    random_codes<Dot> codes;
    for (index_t m : {5, 16}) {
        for (index_t n : {1, 17, 50, 97}) {
            CAPTURE(m);
            CAPTURE(n);
            const index_t k = 12, groups = k / g, stride = (n + 16) * g;
            std::vector<std::int8_t> a(static_cast<std::size_t>(m * k));
            for (auto& w : a) w = codes.weight();
            std::vector<std::uint8_t> laid_out(static_cast<std::size_t>(groups * stride), std::uint8_t(0));
            std::vector<std::uint8_t> b(static_cast<std::size_t>(n * k));  // row j: column j's k values
            for (index_t j = 0; j < n; ++j)
                for (index_t p = 0; p < k; ++p)
                    b[static_cast<std::size_t>(j * k + p)] = laid_out[static_cast<std::size_t>(p / g * stride + j * g + p % g)] =
                        codes.input();
            std::vector<index_t> offsets;
            for (index_t q = 0; q < groups; ++q) offsets.push_back(q * stride);
            std::vector<std::int32_t> expected(static_cast<std::size_t>(m * n)), found(expected.size(), -1);
            lowp_gemm_reference<Dot>(m, n, k, a.data(), k, b.data(), k, expected.data(), n);
            lowp_product_in_place(lowp_weights<Dot>(m, k, a.data(), k), laid_out.data(), offsets, n, 0,
                                  [&](index_t row0, index_t col0, index_t rows, index_t cols, const std::int32_t* tile) {
                                      for (index_t r = 0; r < rows; ++r)
                                          std::copy_n(tile + r * detail::lowp::nr, cols, found.data() + (row0 + r) * n + col0);
                                  });
            CHECK(found == expected);
        }
    }
}

TEST_CASE("int8 lowp_gemm sums the extreme codes exactly") {
    // 255 * -128 over k = 1031: far beyond 16 bits, within s32; vpmaddubsw-style
    // saturation would show here.
    const index_t k = 1031;
    std::vector<std::int8_t> a(static_cast<std::size_t>(k), std::int8_t(-128));
    std::vector<std::uint8_t> b(static_cast<std::size_t>(k), std::uint8_t(255));
    std::int32_t c = 0;
    lowp_gemm(lowp_weights<int8_dot>(1, k, a.data(), k), 1, b.data(), k, &c, 1);
    CHECK(c == -128 * 255 * k);
}

TEST_CASE("bf16_from_float rounds to nearest, ties to even, and keeps NaN a NaN") {
    CHECK(bf16_from_float(1.0f) == 0x3f80);
    CHECK(float_from_bf16(bf16_from_float(1.0f + 0x1p-8f)) == 1.0f);                  // tie: to even (down)
    CHECK(float_from_bf16(bf16_from_float(1.0f + 3 * 0x1p-8f)) == 1.0f + 0x1p-6f);     // tie: to even (up)
    CHECK(float_from_bf16(bf16_from_float(1.0f + 0x1p-8f + 0x1p-20f)) == 1.0f + 0x1p-7f);  // above the tie
    CHECK(std::isnan(float_from_bf16(bf16_from_float(std::nanf("")))));
    CHECK(std::isinf(float_from_bf16(bf16_from_float(3.4e38f))));  // beyond bf16's largest finite: rounds up
}
