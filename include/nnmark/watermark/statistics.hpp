// statistics: the tests that turn "k of n trigger queries returned the key's label" into
// a p-value, and the bounds that turn reference-model counts into a null.
//
// What a p-value means here. The null hypothesis H0 is "the suspect was not derived from
// the watermarked model": it never saw the key. p is a number with P[p <= alpha | H0] <=
// alpha, so declaring the watermark present at p <= alpha accuses an innocent model with
// probability at most alpha. Which argument makes that hold depends on the key's labels:
//
// 1. Random labels (label_mode "random", watermark/trigger_set.hpp). Each trigger's label
//    is drawn uniformly from the K - 1 classes other than the class y of the image it was
//    made from (its source class; for natural triggers, ordinary training images of every
//    class, the image's own true class), from the key's seed and y alone. An innocent
//    model's answers are a function of the images only (whatever it is: constant, random,
//    NaN, another task's model, one trained on the same images with their true labels),
//    and y is fixed by the image, so given its answer a a label matches with probability
//    0 if a = y and 1/(K - 1) otherwise, independently across triggers. k is then
//    stochastically at most Binomial(n, 1/(K - 1)), and the binomial tail is a valid p
//    for EVERY innocent model. No calibration is needed; this is the mode to prefer.
// 2. Target labels (every trigger labelled with one target class). Nothing is random
//    here, so the null must come from models: how often do innocent models answer the
//    target on these triggers? Their answers to one key are strongly correlated (a model
//    that likes the target on one trigger likes it on most), so the spread between models
//    is what matters, not the number of queries. The calibration (watermark/key.hpp) fits
//    a beta-binomial to R reference models with upper bounds on its mean and correlation
//    (fit_overdispersed_null below), valid for the next innocent model when it is drawn
//    from the population the references represent. verify also runs the suspect's own
//    control (log_control_tail) and reports the LARGER of the two p-values, which stays
//    valid if either argument holds; and it refuses to call a watermark present in a
//    suspect that does not behave as a classifier of the task at all
//    (watermark/suspect_checks.hpp).
// 3. Target labels without a calibration: the null rate 1/K of a chance-level model, an
//    assumption and not a bound (source "assumed"); the tool warns.
//
// Numerics: everything is double and computed in log space, because a watermarked
// model answering 1000 of 1000 triggers at p0 = 0.1 has p = 1e-1000, far below what a
// double can hold (~1e-308). The log of a sum of pmf terms is taken as
// peak + log(sum exp(term - peak)) with the peak at the mode, and log binomial
// coefficients come from lgamma; the relative error of p is about n * log(n) * 1e-16
// (1e-12 at n = 1000, 1e-10 at n = 100000), as the tests measure against exact sums.
// Callers display log10 p when p underflows to 0.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>
#include <numbers>
#include <span>
#include <string>
#include <utility>
#include <vector>

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


// ---------------------------------------------------------------------------------------
// Overdispersed nulls: the beta-binomial.
//
// A model answers the n triggers of one key with correlated answers: the triggers look
// alike (one stamp, one noise pattern, one foreign domain), so a model that likes the
// target on one likes it on most. Over the population of models that never saw the key,
// model j's match probability pi_j varies, and X_j | pi_j ~ Binomial(n, pi_j). With
// pi ~ Beta(mean mu, intra-model correlation rho), X ~ BetaBinomial(n, mu, rho): mean n mu,
// variance n mu (1 - mu) (1 + (n - 1) rho) (Skellam 1948; Williams 1975, "The analysis
// of binary responses from toxicological experiments involving reproduction and
// teratogenicity"). rho = 0 is the binomial.
namespace detail {

inline void check_correlation(const char* where, double rho) {
    if (!(rho >= 0.0 && rho < 1.0))
        throw argument_error(std::string(where) + ": correlation " + number_text(rho) + " is outside [0, 1)");
}

}  // namespace detail

// Natural log of P[BetaBinomial(n, mean, correlation) >= k]. The pmf is
// C(n, i) B(i + a, n - i + b) / B(a, b) with a = mean (1 - rho) / rho and
// b = (1 - mean) (1 - rho) / rho; every term from k to n is summed in log space (a
// beta-binomial pmf need not be log-concave, so no term can be skipped).
inline double log_beta_binomial_tail(index_t n, index_t k, double mean, double correlation) {
    detail::check_trials("log_beta_binomial_tail", n);
    detail::check_probability("log_beta_binomial_tail", mean);
    detail::check_correlation("log_beta_binomial_tail", correlation);
    if (k <= 0) return 0.0;
    if (k > n) return -std::numeric_limits<double>::infinity();
    if (correlation == 0.0 || mean == 0.0 || mean == 1.0) return log_binomial_tail(n, k, mean);
    const double scale = (1.0 - correlation) / correlation;
    const double a = mean * scale, b = (1.0 - mean) * scale;
    const auto d = [](index_t x) { return static_cast<double>(x); };
    const auto log_beta = [](double x, double y) { return std::lgamma(x) + std::lgamma(y) - std::lgamma(x + y); };
    std::vector<double> terms;
    terms.reserve(static_cast<std::size_t>(n - k + 1));
    for (index_t i = k; i <= n; ++i)
        terms.push_back(std::lgamma(d(n) + 1) - std::lgamma(d(i) + 1) - std::lgamma(d(n - i) + 1) +
                        log_beta(d(i) + a, d(n - i) + b) - log_beta(a, b));
    const double peak = *std::max_element(terms.begin(), terms.end());
    double sum = 0.0;
    for (double t : terms) sum += std::exp(t - peak);
    return std::min(0.0, peak + std::log(sum));
}

// ---------------------------------------------------------------------------------------
// The chi-square quantile, for an upper confidence bound on overdispersion.
namespace detail {

// Regularized lower incomplete gamma P(s, x) = gamma(s, x) / Gamma(s): its power series
// for x < s + 1, else 1 - Q from the Legendre continued fraction (evaluated by the
// modified Lentz method); both converge fast in their own region (Numerical Recipes, 6.2).
inline double regularized_gamma_lower(double s, double x) {
    if (x <= 0.0) return 0.0;
    const double log_prefix = s * std::log(x) - x - std::lgamma(s);
    if (x < s + 1.0) {
        double term = 1.0 / s, sum = term;
        for (int i = 1; i < 10000 && std::abs(term) > 1e-17 * std::abs(sum); ++i) {
            term *= x / (s + i);
            sum += term;
        }
        return std::min(1.0, std::exp(log_prefix) * sum);
    }
    constexpr double tiny = 1e-300;
    double b = x + 1.0 - s, c = 1.0 / tiny, f = 1.0 / b, delta = 0.0;
    double d = f;
    for (int i = 1; i < 10000 && std::abs(delta - 1.0) > 1e-16; ++i) {
        const double an = -i * (i - s);
        b += 2.0;
        d = an * d + b;
        if (std::abs(d) < tiny) d = tiny;
        c = b + an / c;
        if (std::abs(c) < tiny) c = tiny;
        d = 1.0 / d;
        delta = d * c;
        f *= delta;
    }
    return std::max(0.0, 1.0 - std::exp(log_prefix) * f);
}

}  // namespace detail

// The x with P[ChiSquare(df) <= x] = probability, by bisection to 1e-12 relative.
inline double chi_square_quantile(double df, double probability) {
    if (!(df > 0.0)) throw argument_error("chi_square_quantile: degrees of freedom " + detail::number_text(df) + " are not positive");
    if (!(probability > 0.0 && probability < 1.0))
        throw argument_error("chi_square_quantile: probability " + detail::number_text(probability) + " is outside (0, 1)");
    double lo = 0.0, hi = std::max(1.0, df);
    while (detail::regularized_gamma_lower(df / 2, hi / 2) < probability) hi *= 2;
    while (hi - lo > 1e-12 * hi) {
        const double mid = lo + (hi - lo) / 2;
        if (detail::regularized_gamma_lower(df / 2, mid / 2) < probability) lo = mid;
        else hi = mid;
    }
    return lo + (hi - lo) / 2;
}

// ---------------------------------------------------------------------------------------
// The population null fitted to reference models (watermark/key.hpp's calibration).
//
// R reference models that never saw the key matched k_1..k_R of its n triggers. They are
// a sample of the population of innocent models; the suspect, if innocent, is one more
// draw. Upper bounds, each at `confidence`, for the two parameters of a beta-binomial:
// - overdispersion phi = 1 + (n - 1) rho: Pearson's X^2 = sum (k_j - n m)^2 / (n m (1 - m))
//   with the pooled rate m is approximately phi * ChiSquare(R - 1) (Williams 1982, "Extra-
//   binomial variation in logistic linear models"; McCullagh & Nelder, GLM 4.5), so
//   phi_u = max(1, X^2 / chi2_{R-1}(1 - confidence)), and rho_u = (phi_u - 1) / (n - 1);
// - mean mu: the R n answers carry the information of R n / phi_u independent ones
//   (Kish's effective sample size), so mu_u is the Clopper-Pearson upper bound of m on
//   that many trials.
// Both hold together with probability at least 1 - 2 (1 - confidence) when the
// beta-binomial describes the population. The p-value of k matches is then the largest
// beta-binomial tail over mean mu_u and correlations 0..rho_u (the tail grows with the
// mean at a fixed correlation, Beta(a, b) being stochastically increasing in a at fixed
// a + b; it need not be monotone in the correlation, so 17 values are tried).
// What this cannot see: a kind of innocent model absent from the references (a model
// of another recipe that answers the target more often). So the references should span
// the recipes an innocent party plausibly used, R >= 10 (the study in README measures
// it), and verify adds the suspect's own control (watermark/verify.hpp).
struct overdispersed_null {
    double pooled_rate = 0.0;        // m: matches / queries over all reference models
    double dispersion_bound = 1.0;   // phi_u
    double mean_bound = 1.0;         // mu_u
    double correlation_bound = 0.0;  // rho_u
};

inline constexpr int correlation_grid_steps = 16;

inline overdispersed_null fit_overdispersed_null(std::span<const index_t> matches_per_model, index_t triggers,
                                                 double confidence) {
    const auto models = static_cast<index_t>(matches_per_model.size());
    if (models < 2)
        throw argument_error("calibration: " + std::to_string(models) +
                             " reference model(s); at least 2 are needed to measure how models differ (10 or more recommended)");
    if (triggers < 1) throw argument_error("calibration: a key of no triggers");
    detail::check_confidence("calibration", confidence);
    index_t total = 0;
    for (index_t k : matches_per_model) {
        detail::check_count("calibration (matches of one model)", triggers, k);
        total += k;
    }
    const auto d = [](index_t x) { return static_cast<double>(x); };
    overdispersed_null fit;
    fit.pooled_rate = d(total) / (d(models) * d(triggers));
    const double m = fit.pooled_rate;
    if (m > 0.0 && m < 1.0 && triggers > 1) {
        double pearson = 0.0;
        for (index_t k : matches_per_model) pearson += (d(k) - d(triggers) * m) * (d(k) - d(triggers) * m);
        pearson /= d(triggers) * m * (1.0 - m);
        fit.dispersion_bound = std::min(d(triggers), std::max(1.0, pearson / chi_square_quantile(d(models - 1), 1.0 - confidence)));
        fit.correlation_bound = std::min(0.999, (fit.dispersion_bound - 1.0) / (d(triggers) - 1.0));
    }
    const auto effective = std::max<index_t>(1, static_cast<index_t>(std::floor(d(models * triggers) / fit.dispersion_bound)));
    const index_t effective_matches = std::min(effective, static_cast<index_t>(std::ceil(m * d(effective))));
    fit.mean_bound = clopper_pearson_upper(effective, effective_matches, confidence);
    return fit;
}

// ---------------------------------------------------------------------------------------
// The suspect's own control (target labels): the hypergeometric (one-sided Fisher) test.
//
// Among the suspect's answers to `triggers` triggers and `decoys` decoys of classes other
// than the target, `trigger_hits` and `decoy_hits` were the target. Null: the suspect's
// answer "target" does not depend on whether an image is a trigger, i.e. given the total
// number of target answers, which of the queries got them is exchangeable; then
// trigger_hits is hypergeometric and p = P[X >= trigger_hits]. A model that answers the
// target for everything (or nearly) is never significant here, whatever the references.
// This null alone is not enough (triggers are unusual images, and an innocent model may
// answer them differently from test images), which is why verify takes the larger of
// this p and the population one: the larger of two p-values is valid if either null is.
inline double log_control_tail(index_t trigger_hits, index_t triggers, index_t decoy_hits, index_t decoys) {
    detail::check_count("control (target answers of triggers)", triggers, trigger_hits);
    detail::check_count("control (target answers of decoys)", decoys, decoy_hits);
    if (trigger_hits == 0) return 0.0;
    const index_t hits = trigger_hits + decoy_hits, total = triggers + decoys;
    const auto lc = [](index_t n, index_t k) {
        return std::lgamma(static_cast<double>(n) + 1) - std::lgamma(static_cast<double>(k) + 1) -
               std::lgamma(static_cast<double>(n - k) + 1);
    };
    std::vector<double> terms;
    for (index_t x = trigger_hits; x <= std::min(hits, triggers); ++x)
        if (hits - x <= decoys) terms.push_back(lc(triggers, x) + lc(decoys, hits - x) - lc(total, hits));
    if (terms.empty()) return -std::numeric_limits<double>::infinity();
    const double peak = *std::max_element(terms.begin(), terms.end());
    double sum = 0.0;
    for (double t : terms) sum += std::exp(t - peak);
    return std::min(0.0, peak + std::log(sum));
}

// ---------------------------------------------------------------------------------------
// The null a verification tests against (watermark/key.hpp: null_hypothesis_of).
struct null_hypothesis {
    double rate = 0.0;         // mu: a bound on the match probability of a model without the watermark
    double correlation = 0.0;  // rho: a bound on how far one model's answers to the key move together
    std::string source;        // "random-labels" | "calibrated" | "assumed"
};

inline constexpr const char* null_sources[] = {"random-labels", "calibrated", "assumed"};

// Natural log of the p-value of k matches in n queries under `null`: the binomial tail
// at correlation 0, else the largest beta-binomial tail over correlations
// 0, rho/16, ..., rho (see fit_overdispersed_null).
inline double log_null_tail(index_t n, index_t k, const null_hypothesis& null) {
    detail::check_count("null tail (matches of queries)", n, k);
    detail::check_probability("null tail (null rate)", null.rate);
    detail::check_correlation("null tail", null.correlation);
    if (std::find(std::begin(null_sources), std::end(null_sources), null.source) == std::end(null_sources))
        throw argument_error("null tail: null source \"" + null.source +
                             "\" is none of \"random-labels\", \"calibrated\", \"assumed\"");
    double log_p = log_binomial_tail(n, k, null.rate);
    if (null.correlation > 0.0)
        for (int step = 1; step <= correlation_grid_steps; ++step)
            log_p = std::max(log_p, log_beta_binomial_tail(n, k, null.rate, null.correlation * step / correlation_grid_steps));
    return log_p;
}

}  // namespace nnmark
