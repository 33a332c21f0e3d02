#include "nnmark/watermark/statistics.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

using namespace nnmark;

// Reference values: exact rational sums with Python's fractions, printed with 60-digit
// decimal arithmetic (Python 3.11, this machine):
//   from fractions import Fraction as F; from decimal import Decimal as D, getcontext
//   getcontext().prec = 60
//   tail = lambda n, k, p: sum(math.comb(n, i) * p**i * (1 - p)**(n - i) for i in range(k, n + 1))
//   cdf  = lambda n, k, p: sum(math.comb(n, i) * p**i * (1 - p)**(n - i) for i in range(0, k + 1))
//   t = tail(100, 20, F(1, 10)); D(t.numerator) / D(t.denominator)
//   log10: D(t.numerator).log10() - D(t.denominator).log10()
// The n = 100000 tail sums the pmf by its recurrence t[i+1] = t[i] (n-i)/(i+1) p/q in
// 60-digit decimals with an unbounded exponent range (the exact fraction is too large).
// Clopper-Pearson references: 70 steps of bisection over dyadic rationals p with the
// exact rational cdf/tail compared to F(1, 100) (or F(5, 100)), e.g.
//   lo, hi = F(0), F(1)
//   for _ in range(70): mid = (lo + hi) / 2; (hi, lo) = (mid, lo) if cdf(n, k, mid) < F(1, 100) else (hi, mid)
// The p0 = 0.1 references use exactly 1/10; the double 0.1 differs by 5.6e-17
// relative, which moves log10 p by at most 1000 * 2.4e-17.

namespace {

constexpr double minus_infinity = -std::numeric_limits<double>::infinity();

// Binomial coefficients C(n, i) for n <= 60 as exact integers (Pascal's triangle).
std::vector<std::vector<std::uint64_t>> pascal_triangle(int rows) {
    std::vector<std::vector<std::uint64_t>> c(static_cast<std::size_t>(rows + 1));
    for (int n = 0; n <= rows; ++n) {
        c[static_cast<std::size_t>(n)].assign(static_cast<std::size_t>(n + 1), 1);
        for (int i = 1; i < n; ++i)
            c[static_cast<std::size_t>(n)][static_cast<std::size_t>(i)] =
                c[static_cast<std::size_t>(n - 1)][static_cast<std::size_t>(i - 1)] +
                c[static_cast<std::size_t>(n - 1)][static_cast<std::size_t>(i)];
    }
    return c;
}

// P[Binomial(n, p) in [first, last]] as a plain long double sum of pmf terms.
long double direct_mass(const std::vector<std::uint64_t>& row, int first, int last, long double p) {
    const int n = static_cast<int>(row.size()) - 1;
    long double sum = 0;
    for (int i = first; i <= last; ++i)
        sum += static_cast<long double>(row[static_cast<std::size_t>(i)]) * std::pow(p, i) * std::pow(1 - p, n - i);
    return sum;
}

bool close_relative(double value, double reference, double tolerance) {
    return std::abs(value - reference) <= tolerance * std::abs(reference);
}

}  // namespace

TEST_CASE("log_binomial_tail: equals a direct long double sum of pmf terms for small n") {
    const auto c = pascal_triangle(60);
    for (int n : {1, 2, 7, 20, 33, 60})
        for (double p : {0.001, 0.1, 1.0 / 3, 0.5, 0.9, 0.999})
            for (int k = 1; k <= n; ++k) {
                CAPTURE(n);
                CAPTURE(p);
                CAPTURE(k);
                const long double reference = direct_mass(c[static_cast<std::size_t>(n)], k, n, p);
                CHECK(std::abs(log_binomial_tail(n, k, p) - static_cast<double>(std::log(reference))) <= 1e-12);
                const long double lower = direct_mass(c[static_cast<std::size_t>(n)], 0, k - 1, p);
                CHECK(std::abs(log_binomial_cdf(n, k - 1, p) - static_cast<double>(std::log(lower))) <= 1e-12);
            }
    CHECK(binomial_tail_p_value(10, 3, 0.5) == doctest::Approx(968.0 / 1024.0).epsilon(1e-14));
}

TEST_CASE("log_binomial_tail: literal values from exact rational sums") {
    CHECK(close_relative(binomial_tail_p_value(100, 20, 0.1), 0.0019785608657712312080, 1e-12));
    CHECK(close_relative(binomial_tail_p_value(1000, 150, 0.1), 4.4894428594500085640e-7, 1e-11));
    CHECK(close_relative(binomial_tail_p_value(50, 1, 0.001), 0.048794371802968650017, 1e-12));
    CHECK(close_relative(binomial_tail_p_value(200, 30, 1.0 / 9), 0.055219240471480948746, 1e-12));
}

TEST_CASE("log_binomial_tail: p-values far below the smallest double keep an exact log") {
    // 1000 of 1000 at p0 = 0.1: exactly 10^-1000.
    CHECK(log_binomial_tail(1000, 1000, 0.1) / std::numbers::ln10 == doctest::Approx(-1000.0).epsilon(1e-13));
    CHECK(binomial_tail_p_value(1000, 1000, 0.1) == 0.0);
    CHECK(log_binomial_tail(1000, 900, 0.1) / std::numbers::ln10 ==
          doctest::Approx(-764.76519641685049137).epsilon(1e-12));
    CHECK(log_binomial_tail(100000, 2000, 0.01) / std::numbers::ln10 ==
          doctest::Approx(-171.71533366033019107).epsilon(1e-10));
}

TEST_CASE("log_binomial_tail: edge cases") {
    CHECK(log_binomial_tail(10, 0, 0.3) == 0.0);
    CHECK(log_binomial_tail(10, -5, 0.3) == 0.0);
    CHECK(log_binomial_tail(10, 11, 0.3) == minus_infinity);
    CHECK(log_binomial_tail(0, 0, 0.3) == 0.0);
    CHECK(log_binomial_tail(0, 1, 0.3) == minus_infinity);
    CHECK(log_binomial_tail(10, 1, 0.0) == minus_infinity);
    CHECK(log_binomial_tail(10, 0, 0.0) == 0.0);
    CHECK(log_binomial_tail(10, 10, 1.0) == 0.0);
    CHECK(log_binomial_tail(10, 11, 1.0) == minus_infinity);
    CHECK(log_binomial_cdf(10, 10, 0.3) == 0.0);
    CHECK(log_binomial_cdf(10, -1, 0.3) == minus_infinity);
    CHECK(log_binomial_cdf(10, 9, 1.0) == minus_infinity);
    CHECK(log_binomial_cdf(10, 0, 0.0) == 0.0);
    CHECK_THROWS_AS(log_binomial_tail(-1, 0, 0.5), argument_error);
    CHECK_THROWS_AS(log_binomial_tail(10, 3, 1.5), argument_error);
    CHECK_THROWS_AS(log_binomial_tail(10, 3, std::nan("")), argument_error);
}

TEST_CASE("log_binomial_tail: decreases in k and increases in p0") {
    double previous = 0.0;
    for (index_t k = 0; k <= 500; ++k) {
        const double now = log_binomial_tail(500, k, 0.2);
        CHECK(now <= previous);
        previous = now;
    }
    CHECK(log_binomial_tail(500, 150, 0.2) < log_binomial_tail(500, 150, 0.25));
}

TEST_CASE("clopper_pearson_upper: matches bisection on exact rational cdfs") {
    CHECK(close_relative(clopper_pearson_upper(1000, 5), 0.013055421233690194068, 1e-10));
    CHECK(close_relative(clopper_pearson_upper(100, 50), 0.61928253309304754779, 1e-10));
    CHECK(close_relative(clopper_pearson_upper(20, 19), 0.99949760944774152626, 1e-10));
    CHECK(close_relative(clopper_pearson_upper(1000, 0), 0.0045945826484730375521, 1e-10));
    CHECK(close_relative(clopper_pearson_upper(100, 50, 0.95), 0.58637828536908824027, 1e-10));
}

TEST_CASE("clopper_pearson_upper: k = 0 has the closed form 1 - (1 - confidence)^(1/n)") {
    CHECK(close_relative(clopper_pearson_upper(300, 0), 0.015233347889841824850, 1e-10));
    for (index_t n : {1, 10, 300, 10000})
        CHECK(close_relative(clopper_pearson_upper(n, 0), -std::expm1(std::log(0.01) / static_cast<double>(n)), 1e-10));
}

TEST_CASE("clopper_pearson_upper: the cdf at the bound is 1 - confidence, and the bound exceeds k / n") {
    for (auto [n, k] : std::array<std::pair<index_t, index_t>, 4>{{{50, 3}, {1000, 5}, {5000, 100}, {7, 6}}}) {
        const double upper = clopper_pearson_upper(n, k, 0.99);
        CHECK(upper > static_cast<double>(k) / static_cast<double>(n));
        CHECK(log_binomial_cdf(n, k, upper) == doctest::Approx(std::log(0.01)).epsilon(1e-9));
        CHECK(clopper_pearson_upper(n, k, 0.999) > upper);
    }
    CHECK(clopper_pearson_upper(10, 10) == 1.0);
    CHECK_THROWS_AS(clopper_pearson_upper(10, 11), argument_error);
    CHECK_THROWS_AS(clopper_pearson_upper(10, -1), argument_error);
    CHECK_THROWS_AS(clopper_pearson_upper(10, 3, 1.0), argument_error);
    CHECK_THROWS_AS(clopper_pearson_upper(10, 3, 0.0), argument_error);
}

TEST_CASE("clopper_pearson_lower: references, closed form and symmetry with the upper bound") {
    CHECK(close_relative(clopper_pearson_lower(1000, 5), 0.0012808499906078708057, 1e-9));
    CHECK(close_relative(clopper_pearson_lower(100, 50), 0.38071746690695245221, 1e-10));
    CHECK(close_relative(clopper_pearson_lower(20, 1), 0.00050239055225847374, 1e-9));
    CHECK(close_relative(clopper_pearson_lower(300, 300), 0.98476665211015817515, 1e-10));
    CHECK(clopper_pearson_lower(10, 0) == 0.0);
    // lower(n, k) = 1 - upper(n, n - k): swapping success and failure.
    CHECK(clopper_pearson_lower(80, 30) == doctest::Approx(1 - clopper_pearson_upper(80, 50)).epsilon(1e-10));
    CHECK(clopper_pearson_lower(80, 30) < 30.0 / 80.0);
}

TEST_CASE("decide: p-value, trigger accuracy and the decision p <= alpha") {
    const verification_result r = decide(100, 20, 0.1, "assumed", 0.01);
    CHECK(r.queries == 100);
    CHECK(r.matches == 20);
    CHECK(r.trigger_accuracy == 0.2);
    CHECK(r.null_rate == 0.1);
    CHECK(r.null_source == "assumed");
    CHECK(r.alpha == 0.01);
    CHECK(close_relative(r.p_value, 0.0019785608657712312080, 1e-12));
    CHECK(r.log10_p_value == doctest::Approx(std::log10(0.0019785608657712312080)).epsilon(1e-12));
    CHECK(r.watermark_present);
    CHECK_FALSE(decide(100, 20, 0.1, "assumed", 0.001).watermark_present);
    CHECK_FALSE(decide(100, 10, 0.1, "calibrated", 0.01).watermark_present);
}

TEST_CASE("decide: p equal to alpha counts as present; an underflowing p is still decided") {
    // P[Bin(1, 0.5) >= 1] = 0.5 exactly (lgamma(1) = lgamma(2) = 0).
    CHECK(decide(1, 1, 0.5, "random-labels", 0.5).watermark_present);
    const verification_result r = decide(1000, 1000, 0.1, "random-labels", 1e-6);
    CHECK(r.p_value == 0.0);
    CHECK(r.log10_p_value == doctest::Approx(-1000.0).epsilon(1e-13));
    CHECK(r.trigger_accuracy == 1.0);
    CHECK(r.watermark_present);
}

TEST_CASE("decide: rejects arguments outside their ranges") {
    CHECK_THROWS_AS(decide(0, 0, 0.1, "assumed", 0.01), argument_error);
    CHECK_THROWS_AS(decide(10, 11, 0.1, "assumed", 0.01), argument_error);
    CHECK_THROWS_AS(decide(10, -1, 0.1, "assumed", 0.01), argument_error);
    CHECK_THROWS_AS(decide(10, 5, 1.5, "assumed", 0.01), argument_error);
    CHECK_THROWS_AS(decide(10, 5, 0.1, "assumed", 0.0), argument_error);
    CHECK_THROWS_AS(decide(10, 5, 0.1, "assumed", 1.0), argument_error);
    CHECK_THROWS_AS(decide(10, 5, 0.1, "guessed", 0.01), argument_error);
}
