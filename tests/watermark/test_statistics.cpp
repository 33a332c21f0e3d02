#include "nnmark/watermark/statistics.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <functional>
#include <numbers>
#include <random>
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

// Beta-binomial and hypergeometric references: exact rational sums (Python fractions,
// logs in 50-digit decimals), the beta-binomial pmf as
//   C(n, i) prod_{j<i}(a + j) prod_{j<n-i}(b + j) / prod_{j<n}(a + b + j),
// a = mu (1 - rho) / rho, b = (1 - mu) (1 - rho) / rho, for rational mu and rho.
TEST_CASE("log_beta_binomial_tail: exact rational references; correlation 0 is the binomial") {
    CHECK(close_relative(log_beta_binomial_tail(100, 62, 0.2, 0.05), -8.2014899017678775764, 1e-11));
    CHECK(close_relative(log_beta_binomial_tail(100, 100, 0.25, 0.1), -20.941397681125329801, 1e-11));
    CHECK(close_relative(log_beta_binomial_tail(20, 5, 0.1, 0.5), -1.8849167885519630355, 1e-11));
    CHECK(close_relative(log_beta_binomial_tail(100, 30, 0.2, 0.02), -2.3725142098495010219, 1e-11));
    CHECK(log_beta_binomial_tail(100, 30, 0.2, 0.0) == doctest::Approx(log_binomial_tail(100, 30, 0.2)).epsilon(1e-14));
    CHECK(log_beta_binomial_tail(100, 0, 0.2, 0.3) == 0.0);
    CHECK(log_beta_binomial_tail(100, 101, 0.2, 0.3) == minus_infinity);
    // Overdispersion fattens the upper tail far out: 62 of 100 at mean 0.2.
    CHECK(log_beta_binomial_tail(100, 62, 0.2, 0.05) > log_binomial_tail(100, 62, 0.2) + 20);
    CHECK_THROWS_AS(log_beta_binomial_tail(100, 5, 0.2, 1.0), argument_error);
    CHECK_THROWS_AS(log_beta_binomial_tail(100, 5, 1.2, 0.1), argument_error);
}

TEST_CASE("chi_square_quantile: closed forms for 2 and 4 degrees of freedom") {
    // df = 2: P(x) = 1 - exp(-x/2); df = 4: P(x) = 1 - exp(-x/2) (1 + x/2).
    for (double p : {1e-6, 0.01, 0.5, 0.99}) {
        CAPTURE(p);
        CHECK(close_relative(chi_square_quantile(2, p), -2 * std::log1p(-p), 1e-10));
        const double x = chi_square_quantile(4, p);
        CHECK(std::abs(1 - std::exp(-x / 2) * (1 + x / 2) - p) <= 1e-11 * std::max(p, 1e-3));
    }
    // A table value: chi2_9(0.01) = 2.0879 (e.g. NIST/SEMATECH e-Handbook, 1.3.6.7.4).
    CHECK(chi_square_quantile(9, 0.01) == doctest::Approx(2.0879).epsilon(1e-4));
    CHECK_THROWS_AS(chi_square_quantile(0, 0.5), argument_error);
    CHECK_THROWS_AS(chi_square_quantile(3, 1.0), argument_error);
}

TEST_CASE("fit_overdispersed_null: Pearson's dispersion, its upper bound and the effective sample") {
    // Ten models, pooled rate 0.2, X^2 = sum (k - 20)^2 / (100 0.2 0.8) = 200 / 16 = 12.5.
    const std::vector<index_t> spread{10, 30, 20, 20, 20, 20, 20, 20, 20, 20};
    const overdispersed_null fit = fit_overdispersed_null(spread, 100, 0.99);
    CHECK(fit.pooled_rate == 0.2);
    CHECK(fit.dispersion_bound == doctest::Approx(12.5 / chi_square_quantile(9, 0.01)).epsilon(1e-12));
    CHECK(fit.correlation_bound == doctest::Approx((fit.dispersion_bound - 1) / 99).epsilon(1e-12));
    const auto effective = static_cast<index_t>(std::floor(1000 / fit.dispersion_bound));
    CHECK(fit.mean_bound == clopper_pearson_upper(effective, static_cast<index_t>(std::ceil(0.2 * effective)), 0.99));
    // Models that agree exactly show no overdispersion: the binomial bound of the pool.
    const std::vector<index_t> same(10, 20);
    const overdispersed_null tight = fit_overdispersed_null(same, 100, 0.99);
    CHECK(tight.dispersion_bound == 1.0);
    CHECK(tight.correlation_bound == 0.0);
    CHECK(tight.mean_bound == clopper_pearson_upper(1000, 200, 0.99));
    CHECK_THROWS_AS(fit_overdispersed_null(std::vector<index_t>{20}, 100, 0.99), argument_error);
    CHECK_THROWS_AS(fit_overdispersed_null(std::vector<index_t>{20, 101}, 100, 0.99), argument_error);
}

TEST_CASE("log_control_tail: the one-sided hypergeometric tail, exact references") {
    CHECK(close_relative(log_control_tail(100, 100, 0, 90), -128.58544770009071455, 1e-11));
    CHECK(close_relative(log_control_tail(10, 20, 5, 30), -4.2697614247194812766, 1e-11));
    // A model answering the target for everything: nothing distinguishes the triggers.
    CHECK(log_control_tail(20, 20, 40, 40) == 0.0);
    CHECK(log_control_tail(0, 20, 3, 40) == 0.0);
}

TEST_CASE("log_null_tail: binomial at correlation 0, the largest grid tail above it") {
    const null_hypothesis binomial{0.2, 0.0, "calibrated"};
    CHECK(log_null_tail(100, 30, binomial) == doctest::Approx(log_binomial_tail(100, 30, 0.2)).epsilon(1e-14));
    const null_hypothesis overdispersed{0.2, 0.08, "calibrated"};
    double largest = log_binomial_tail(100, 62, 0.2);
    for (int j = 1; j <= 16; ++j) largest = std::max(largest, log_beta_binomial_tail(100, 62, 0.2, 0.08 * j / 16));
    CHECK(log_null_tail(100, 62, overdispersed) == doctest::Approx(largest).epsilon(1e-14));
    CHECK_THROWS_AS(log_null_tail(100, 62, null_hypothesis{0.2, 0.0, "guessed"}), argument_error);
    CHECK_THROWS_AS(log_null_tail(100, 101, binomial), argument_error);
}

// The argument of the calibrated null, checked by simulation: the innocent population is
// a beta-binomial (mean 0.2; correlation 0.05: clean models answering 10-30 of 100
// triggers, as the README's reproduce run measured; correlation 0.2: 0-60 of 100); each
// trial draws ten reference models, fits the null, draws one more innocent model and
// tests it. The share of p <= alpha must stay at or below alpha (plus three binomial
// standard errors). Two weaker nulls fail the same simulation: the pooled binomial an
// earlier nnmark used, and the binomial at the fitted mean bound without the correlation
// (what log_null_tail would be without its grid over correlations).
TEST_CASE("calibrated null: the rejection rate of innocent models stays at or below alpha") {
    std::mt19937_64 random(2026);
    const auto innocent_matches = [&](double mean, double rho) {
        const double scale = (1 - rho) / rho;
        std::gamma_distribution<double> ga(mean * scale), gb((1 - mean) * scale);
        const double x = ga(random), y = gb(random);
        std::binomial_distribution<index_t> answers(100, x / (x + y));
        return answers(random);
    };
    const int trials = 3000;
    const auto at_most = [&](double alpha) { return alpha * trials + 3 * std::sqrt(alpha * (1 - alpha) * trials); };
    for (const double rho : {0.05, 0.2}) {
        CAPTURE(rho);
        int rejected_05 = 0, rejected_01 = 0, pooled_05 = 0, without_correlation_01 = 0;
        for (int t = 0; t < trials; ++t) {
            std::vector<index_t> references;
            for (int r = 0; r < 10; ++r) references.push_back(innocent_matches(0.2, rho));
            const overdispersed_null fit = fit_overdispersed_null(references, 100, 0.99);
            const index_t suspect = innocent_matches(0.2, rho);
            const double log_p = log_null_tail(100, suspect, {fit.mean_bound, fit.correlation_bound, "calibrated"});
            rejected_05 += log_p <= std::log(0.05);
            rejected_01 += log_p <= std::log(0.01);
            index_t pooled = 0;
            for (index_t k : references) pooled += k;
            pooled_05 += log_binomial_tail(100, suspect, clopper_pearson_upper(1000, pooled, 0.99)) <= std::log(0.05);
            without_correlation_01 += log_binomial_tail(100, suspect, fit.mean_bound) <= std::log(0.01);
        }
        CHECK(rejected_05 <= at_most(0.05));
        CHECK(rejected_01 <= at_most(0.01));
        CHECK(pooled_05 > 2 * at_most(0.05));
        if (rho >= 0.2) CHECK(without_correlation_01 > at_most(0.01));
    }
}

// The random-label argument, by simulation: whatever a model answers (one class always,
// uniform guesses, the source class), fresh random labels over the K - 1 other classes
// make the binomial at 1/(K - 1) reject at most alpha of the time.
TEST_CASE("random-label null: degenerate answers are rejected at most alpha of the time") {
    std::mt19937_64 random(7);
    const int classes = 10, source = 1, triggers = 50, trials = 4000;
    std::uniform_int_distribution<int> any_class(0, classes - 1), other_class(0, classes - 2);
    const std::vector<std::function<int()>> models = {
        [] { return 0; }, [&] { return any_class(random); }, [] { return 1; }, [] { return 7; }};
    for (const auto& answer : models) {
        int rejected = 0;
        for (int t = 0; t < trials; ++t) {
            index_t matches = 0;
            for (int i = 0; i < triggers; ++i) {
                int label = other_class(random);
                if (label >= source) ++label;  // uniform over the classes other than the source
                matches += answer() == label;
            }
            rejected += log_binomial_tail(triggers, matches, 1.0 / (classes - 1)) <= std::log(0.05);
        }
        CHECK(rejected <= 0.05 * trials + 3 * std::sqrt(0.05 * 0.95 * trials));
    }
}
