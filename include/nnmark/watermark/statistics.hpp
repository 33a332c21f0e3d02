// statistics: the binomial test that turns "m of n trigger queries returned the key's
// label" into a p-value and a decision, and the Clopper-Pearson bounds that turn
// reference-model counts into a null rate.
//
// The test (PAPER.md, "Detection"): under the null hypothesis the suspect model does
// not carry the watermark, so each trigger query matches its key label independently
// with probability at most p0 (the null rate). The p-value is the exact binomial tail
// P[Binomial(n, p0) >= m]; the watermark is declared present iff p <= alpha.
//
// Numerics: everything is double and computed in log space, because a watermarked
// model answering 1000 of 1000 triggers at p0 = 0.1 has p = 1e-1000, far below what a
// double can hold (~1e-308). The log of a sum of pmf terms is taken as
// peak + log(sum exp(term - peak)) with the peak at the mode, and log binomial
// coefficients come from lgamma; the relative error of p is about n * log(n) * 1e-16
// (1e-12 at n = 1000, 1e-10 at n = 100000), as the tests measure against exact sums.
// Callers display log10_p_value when p_value underflows to 0.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>
#include <numbers>
#include <string>
#include <utility>

namespace nnmark {

namespace detail {

// The shortest text that reads back as `x` ("0.5", "0.06454273204860783"), for messages.
inline std::string number_text(double x) {
    char buffer[32];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, x).ptr;
    return std::string(buffer, end);
}

inline void check_trials(const char* where, index_t n) {
    if (n < 0) throw argument_error(std::string(where) + ": number of trials " + std::to_string(n) + " is negative");
}

inline void check_probability(const char* where, double p) {
    if (!(p >= 0.0 && p <= 1.0))
        throw argument_error(std::string(where) + ": probability " + number_text(p) + " is outside [0, 1]");
}

inline void check_count(const char* where, index_t n, index_t k) {
    if (k < 0 || k > n)
        throw argument_error(std::string(where) + ": count " + std::to_string(k) + " is outside 0.." +
                             std::to_string(n));
}

inline void check_confidence(const char* where, double confidence) {
    if (!(confidence > 0.0 && confidence < 1.0))
        throw argument_error(std::string(where) + ": confidence " + number_text(confidence) +
                             " is outside (0, 1)");
}

// log P[Binomial(n, p) = i] for 0 < p < 1, from precomputed log p and log(1 - p).
inline double log_binomial_pmf(index_t n, index_t i, double log_p, double log_q) {
    const auto d = [](index_t x) { return static_cast<double>(x); };
    return std::lgamma(d(n) + 1) - std::lgamma(d(i) + 1) - std::lgamma(d(n - i) + 1) + d(i) * log_p +
           d(n - i) * log_q;
}

// Terms this far (in nats) below the largest are left out: the pmf is log-concave, so
// past such a term every further one is smaller still and together they change the
// sum by less than 1e-20 relative for any n a verification uses.
inline constexpr double negligible_log_ratio = 60.0;

// log P[first <= Binomial(n, p) <= last] for 0 < p < 1 and 0 <= first <= last <= n.
// Summed outward from the mode (clamped into the range), so the terms fall off in
// both directions and the loops stop as soon as they no longer matter.
inline double log_binomial_range(index_t n, index_t first, index_t last, double p) {
    const double log_p = std::log(p);
    const double log_q = std::log1p(-p);
    const auto mode = std::clamp(static_cast<index_t>(std::floor(static_cast<double>(n + 1) * p)), first, last);
    const double peak = log_binomial_pmf(n, mode, log_p, log_q);
    double sum = 1.0;  // the peak term itself, exp(peak - peak)
    const auto add_while_significant = [&](index_t from, index_t to, index_t step) {
        for (index_t i = from; step > 0 ? i <= to : i >= to; i += step) {
            const double relative = log_binomial_pmf(n, i, log_p, log_q) - peak;
            if (relative < -negligible_log_ratio) break;
            sum += std::exp(relative);
        }
    };
    add_while_significant(mode + 1, last, +1);
    add_while_significant(mode - 1, first, -1);
    return peak + std::log(sum);
}

// log P[first <= Binomial(n, p) <= last] for any p in [0, 1]: at p = 0 all mass is at
// 0, at p = 1 all mass is at n.
inline double log_binomial_mass(index_t n, index_t first, index_t last, double p) {
    constexpr double log_zero = -std::numeric_limits<double>::infinity();
    if (first > last) return log_zero;
    if (p == 0.0) return first == 0 ? 0.0 : log_zero;
    if (p == 1.0) return last == n ? 0.0 : log_zero;
    return log_binomial_range(n, first, last, p);
}

// The p in [0, 1] where a function of p that is monotone crosses `target`, by
// bisection until the bracket is narrower than 1e-12 of its upper end (or
// ~1e-300 absolute, for bounds near 0). `increasing` says which way it runs.
// Returns the bracket [lo, hi]; callers pick the conservative end.
template <class LogProbability>
std::pair<double, double> bisect_probability(LogProbability log_probability, double target, bool increasing) {
    double lo = 0.0;
    double hi = 1.0;
    while (hi - lo > 1e-12 * hi && hi - lo > 1e-300) {
        const double mid = lo + (hi - lo) / 2;
        if ((log_probability(mid) < target) == increasing) lo = mid;
        else hi = mid;
    }
    return {lo, hi};
}

}  // namespace detail

// Natural log of P[Binomial(n, p0) >= k]: 0 for k <= 0, -inf for k > n.
inline double log_binomial_tail(index_t n, index_t k, double p0) {
    detail::check_trials("log_binomial_tail", n);
    detail::check_probability("log_binomial_tail", p0);
    if (k <= 0) return 0.0;
    return detail::log_binomial_mass(n, k, n, p0);
}

// P[Binomial(n, p0) >= k]; underflows to 0 below ~1e-308, where the log still holds.
inline double binomial_tail_p_value(index_t n, index_t k, double p0) { return std::exp(log_binomial_tail(n, k, p0)); }

// Natural log of P[Binomial(n, p) <= k]: 0 for k >= n, -inf for k < 0.
inline double log_binomial_cdf(index_t n, index_t k, double p) {
    detail::check_trials("log_binomial_cdf", n);
    detail::check_probability("log_binomial_cdf", p);
    if (k >= n) return 0.0;
    if (k < 0) return -std::numeric_limits<double>::infinity();
    return detail::log_binomial_mass(n, 0, k, p);
}

// One-sided Clopper-Pearson upper bound: the p with P[Binomial(n, p) <= k] = 1 - confidence,
// so a rate above it would make k or fewer successes in n trials that unlikely; 1 when
// k == n. Solved by bisection on the log-space CDF to 1e-12 relative; the upper end of
// the final bracket is returned so rounding never makes the bound smaller.
inline double clopper_pearson_upper(index_t n, index_t k, double confidence = 0.99) {
    detail::check_count("clopper_pearson_upper", n, k);
    detail::check_confidence("clopper_pearson_upper", confidence);
    if (k == n) return 1.0;
    const auto cdf = [&](double p) { return detail::log_binomial_mass(n, 0, k, p); };
    return detail::bisect_probability(cdf, std::log1p(-confidence), false).second;
}

// One-sided Clopper-Pearson lower bound: the p with P[Binomial(n, p) >= k] = 1 - confidence;
// 0 when k == 0. The lower end of the final bracket is returned.
inline double clopper_pearson_lower(index_t n, index_t k, double confidence = 0.99) {
    detail::check_count("clopper_pearson_lower", n, k);
    detail::check_confidence("clopper_pearson_lower", confidence);
    if (k == 0) return 0.0;
    const auto tail = [&](double p) { return detail::log_binomial_mass(n, k, n, p); };
    return detail::bisect_probability(tail, std::log1p(-confidence), true).first;
}

// The outcome of a black-box verification.
struct verification_result {
    index_t queries = 0;            // trigger images sent to the suspect
    index_t matches = 0;            // answers equal to the key's label
    double trigger_accuracy = 0.0;  // matches / queries
    double null_rate = 0.0;         // p0: match probability of a model without the watermark
    std::string null_source;        // "random-labels" | "calibrated" | "assumed" (see watermark/key.hpp)
    double p_value = 1.0;           // P[Binomial(queries, p0) >= matches]; 0 if it underflows
    double log10_p_value = 0.0;     // exact even where p_value underflows
    double alpha = 0.0;             // significance level of the decision
    bool watermark_present = false; // p <= alpha
};

inline constexpr const char* null_sources[] = {"random-labels", "calibrated", "assumed"};

// The binomial test of `matches` of `queries` against null rate `null_rate`.
inline verification_result decide(index_t queries, index_t matches, double null_rate, std::string null_source,
                                  double alpha) {
    if (queries < 1) throw argument_error("decide: no trigger queries were made (queries = " + std::to_string(queries) + ")");
    detail::check_count("decide (matches of queries)", queries, matches);
    detail::check_probability("decide (null rate)", null_rate);
    if (!(alpha > 0.0 && alpha < 1.0))
        throw argument_error("decide: significance level alpha = " + detail::number_text(alpha) + " is outside (0, 1)");
    if (std::find(std::begin(null_sources), std::end(null_sources), null_source) == std::end(null_sources))
        throw argument_error("decide: null source \"" + null_source +
                             "\" is none of \"random-labels\", \"calibrated\", \"assumed\"");
    const double log_p = log_binomial_tail(queries, matches, null_rate);
    verification_result r;
    r.queries = queries;
    r.matches = matches;
    r.trigger_accuracy = static_cast<double>(matches) / static_cast<double>(queries);
    r.null_rate = null_rate;
    r.null_source = std::move(null_source);
    r.p_value = std::exp(log_p);
    r.log10_p_value = log_p / std::numbers::ln10;
    r.alpha = alpha;
    r.watermark_present = log_p <= std::log(alpha);
    return r;
}

}  // namespace nnmark
