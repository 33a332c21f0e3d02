#include "nnmark/layers/softmax_cross_entropy.hpp"

#include "nnmark/core/rng.hpp"

#include "../support/tensors.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>
#include <vector>

using namespace nnmark;

namespace {

// Logits of n samples over k classes, spread wide enough that the softmax is far from uniform.
template <class T>
tensor<T> random_logits(index_t n, index_t k, rng& random) {
    return testing::random_tensor<T>(shape{n, k}, random, 0, 2);
}

// Random distributions, one per row.
tensor<double> random_targets(index_t n, index_t k, rng& random) {
    tensor<double> p(shape{n, k});
    for (index_t i = 0; i < n; ++i) {
        double sum = 0;
        for (index_t j = 0; j < k; ++j) sum += p[i * k + j] = random.uniform(0.01, 1);
        for (index_t j = 0; j < k; ++j) p[i * k + j] /= sum;
    }
    return p;
}

// The definition, in the naive form: softmax by exp / sum(exp), then -log, averaged.
double reference_loss(const tensor<double>& logits, const tensor<double>& targets, const std::vector<double>& weights) {
    const index_t n = logits.shape()[0], k = logits.shape()[1];
    double total = 0;
    for (index_t i = 0; i < n; ++i) {
        double denominator = 0;
        for (index_t j = 0; j < k; ++j) denominator += std::exp(logits[i * k + j]);
        for (index_t j = 0; j < k; ++j)
            total -= weights[static_cast<std::size_t>(i)] * targets[i * k + j] *
                     std::log(std::exp(logits[i * k + j]) / denominator);
    }
    return total / static_cast<double>(n);
}

tensor<double> one_hot(const std::vector<int>& labels, index_t k) {
    tensor<double> t(shape{static_cast<index_t>(labels.size()), k}, 0.0);
    for (std::size_t i = 0; i < labels.size(); ++i) t[static_cast<index_t>(i) * k + labels[i]] = 1.0;
    return t;
}

// Central differences of `loss` with respect to every logit, against `analytic`.
void check_gradient(tensor<double> logits, const std::function<double(const tensor<double>&)>& loss,
                    const tensor<double>& analytic) {
    REQUIRE(analytic.shape() == logits.shape());
    const double step = 1e-6;
    for (index_t i = 0; i < logits.size(); ++i) {
        const double saved = logits[i];
        logits[i] = saved + step;
        const double up = loss(logits);
        logits[i] = saved - step;
        const double down = loss(logits);
        logits[i] = saved;
        const double numeric = (up - down) / (2 * step);
        CHECK_MESSAGE(std::abs(numeric - analytic[i]) <= 1e-8 + 1e-5 * std::abs(numeric),
                      "logit " << i << ": analytic " << analytic[i] << " numeric " << numeric);
    }
}

}  // namespace

TEST_CASE("softmax_cross_entropy: uniform logits give log K and gradient (1/K - onehot) / N") {
    for (index_t k : {1, 2, 10, 37}) {
        const index_t n = 3;
        const tensor<double> logits(shape{n, k}, 0.7);
        std::vector<int> labels;
        for (index_t i = 0; i < n; ++i) labels.push_back(static_cast<int>((i * 5) % k));
        tensor<double> grad(shape{n, k}, std::numeric_limits<double>::quiet_NaN());  // written, not added
        CHECK(softmax_cross_entropy(logits, labels, &grad) == doctest::Approx(std::log(static_cast<double>(k))));
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < k; ++j) {
                const double expected = (1.0 / static_cast<double>(k) - (j == labels[static_cast<std::size_t>(i)])) / 3;
                CHECK(grad[i * k + j] == doctest::Approx(expected));
            }
    }
}

TEST_CASE("softmax_cross_entropy: known value") {
    // softmax(0, log 3) = (1/4, 3/4).
    tensor<float> logits(shape{1, 2});
    logits[0] = 0.f;
    logits[1] = std::log(3.f);
    const std::vector<int> first{0}, second{1};
    CHECK(softmax_cross_entropy(logits, first, nullptr) == doctest::Approx(std::log(4.0)));
    CHECK(softmax_cross_entropy(logits, second, nullptr) == doctest::Approx(-std::log(0.75)));
}

TEST_CASE_TEMPLATE("softmax_cross_entropy: hard labels match the naive definition", T, float, double) {
    rng random(8);
    for (index_t n : {1, 3, 7})
        for (index_t k : {1, 3, 10}) {
            const tensor<T> logits = random_logits<T>(n, k, random);
            std::vector<int> labels;
            for (index_t i = 0; i < n; ++i) labels.push_back(static_cast<int>(random.below(static_cast<std::uint64_t>(k))));
            tensor<double> logits_d(logits.shape());
            for (index_t i = 0; i < logits.size(); ++i) logits_d[i] = static_cast<double>(logits[i]);
            const double expected = reference_loss(logits_d, one_hot(labels, k), std::vector<double>(static_cast<std::size_t>(n), 1.0));
            const double eps = std::is_same_v<T, float> ? 1e-5 : 1e-12;
            CHECK(static_cast<double>(softmax_cross_entropy(logits, labels, nullptr)) ==
                  doctest::Approx(expected).epsilon(eps).scale(1));
        }
}

TEST_CASE("softmax_cross_entropy: numerical gradient, hard labels") {
    rng random(9);
    const tensor<double> logits = random_logits<double>(4, 6, random);
    const std::vector<int> labels{0, 5, 2, 2};
    tensor<double> grad;
    softmax_cross_entropy(logits, labels, &grad);
    check_gradient(logits, [&](const tensor<double>& z) { return softmax_cross_entropy(z, labels, nullptr); }, grad);
}

TEST_CASE("softmax_cross_entropy: soft targets (distillation)") {
    rng random(10);
    const tensor<double> logits = random_logits<double>(5, 7, random);
    const tensor<double> targets = random_targets(5, 7, random);
    tensor<double> grad;
    const double loss = softmax_cross_entropy(logits, targets, &grad);
    CHECK(loss == doctest::Approx(reference_loss(logits, targets, std::vector<double>(5, 1.0))).epsilon(1e-12));
    check_gradient(logits, [&](const tensor<double>& z) { return softmax_cross_entropy(z, targets, nullptr); }, grad);

    // (softmax - p) / N for distributions.
    tensor<double> probabilities;
    softmax(logits, probabilities);
    for (index_t i = 0; i < grad.size(); ++i)
        CHECK(grad[i] == doctest::Approx((probabilities[i] - targets[i]) / 5).epsilon(1e-12));

    // A one-hot target row is the same as the hard label.
    const std::vector<int> labels{1, 0, 6, 3, 3};
    tensor<double> grad_hard, grad_soft;
    const double hard = softmax_cross_entropy(logits, labels, &grad_hard);
    const double soft = softmax_cross_entropy(logits, one_hot(labels, 7), &grad_soft);
    CHECK(hard == doctest::Approx(soft).epsilon(1e-15));
    for (index_t i = 0; i < grad.size(); ++i) CHECK(grad_hard[i] == doctest::Approx(grad_soft[i]).epsilon(1e-15));
}

TEST_CASE("softmax_cross_entropy: sample weights") {
    rng random(12);
    const tensor<double> logits = random_logits<double>(4, 5, random);
    const std::vector<int> labels{4, 1, 1, 0};
    const std::vector<double> weights{1.0, 0.0, 2.5, 0.5};
    const std::vector<double> ones(4, 1.0);

    tensor<double> grad;
    const double loss = softmax_cross_entropy(logits, labels, &grad, weights);
    CHECK(loss == doctest::Approx(reference_loss(logits, one_hot(labels, 5), weights)).epsilon(1e-12));
    check_gradient(logits, [&](const tensor<double>& z) { return softmax_cross_entropy(z, labels, nullptr, weights); },
                   grad);
    // A weight of 0 removes the sample's gradient.
    for (index_t j = 0; j < 5; ++j) CHECK(grad[5 + j] == 0.0);

    // Unit weights are the unweighted loss.
    tensor<double> grad_unit, grad_plain;
    CHECK(softmax_cross_entropy(logits, labels, &grad_unit, ones) == softmax_cross_entropy(logits, labels, &grad_plain));
    for (index_t i = 0; i < grad.size(); ++i) CHECK(grad_unit[i] == grad_plain[i]);

    // Soft targets with weights.
    const tensor<double> targets = random_targets(4, 5, random);
    const double soft = softmax_cross_entropy(logits, targets, &grad, weights);
    CHECK(soft == doctest::Approx(reference_loss(logits, targets, weights)).epsilon(1e-12));
    check_gradient(logits, [&](const tensor<double>& z) { return softmax_cross_entropy(z, targets, nullptr, weights); },
                   grad);
}

TEST_CASE("softmax_cross_entropy: no overflow with logits of 1e4 and -1e4 in float") {
    tensor<float> logits(shape{2, 3});
    const float values[] = {1e4f, -1e4f, 0.f, -1e4f, -1e4f, 1e4f};
    for (index_t i = 0; i < 6; ++i) logits[i] = values[i];
    tensor<float> grad;
    CHECK(softmax_cross_entropy(logits, std::vector<int>{0, 2}, &grad) == 0.f);
    CHECK(softmax_cross_entropy(logits, std::vector<int>{1, 2}, &grad) == doctest::Approx(1e4));  // (2e4 + 0) / 2
    for (index_t i = 0; i < 6; ++i) CHECK(std::isfinite(grad[i]));
    CHECK(grad[1] == doctest::Approx(-0.5));
    CHECK(grad[0] == doctest::Approx(0.5));

    tensor<float> probabilities;
    softmax(logits, probabilities);
    CHECK(probabilities[0] == 1.f);
    CHECK(probabilities[1] == 0.f);
    CHECK(probabilities[5] == 1.f);
}

TEST_CASE_TEMPLATE("softmax: rows sum to one and match exp / sum(exp)", T, float, double) {
    rng random(13);
    const tensor<T> logits = random_logits<T>(3, 9, random);
    tensor<T> probabilities;
    softmax(logits, probabilities);
    REQUIRE(probabilities.shape() == logits.shape());
    for (index_t i = 0; i < 3; ++i) {
        double sum = 0, denominator = 0;
        for (index_t j = 0; j < 9; ++j) denominator += std::exp(static_cast<double>(logits[i * 9 + j]));
        for (index_t j = 0; j < 9; ++j) {
            sum += static_cast<double>(probabilities[i * 9 + j]);
            CHECK(static_cast<double>(probabilities[i * 9 + j]) ==
                  doctest::Approx(std::exp(static_cast<double>(logits[i * 9 + j])) / denominator).epsilon(1e-5));
        }
        CHECK(sum == doctest::Approx(1.0).epsilon(1e-6));
    }
}

TEST_CASE("argmax_rows: the first maximum of each row") {
    tensor<float> logits(shape{3, 4});
    const float values[] = {0, 3, 3, 1, -5, -6, -7, -5, 2, 2, 2, 9};
    for (index_t i = 0; i < 12; ++i) logits[i] = values[i];
    CHECK(argmax_rows(logits) == std::vector<int>{1, 0, 3});
}

TEST_CASE("softmax_cross_entropy: bad labels, targets and weights are rejected") {
    const tensor<float> logits(shape{3, 4}, 0.f);
    tensor<float> grad;
    CHECK_THROWS_AS(softmax_cross_entropy(logits, std::vector<int>{0, 4, 1}, &grad), argument_error);
    CHECK_THROWS_AS(softmax_cross_entropy(logits, std::vector<int>{0, 1, -1}, &grad), argument_error);
    CHECK_THROWS_WITH(softmax_cross_entropy(logits, std::vector<int>{0, 1, 7}, &grad),
                      "softmax_cross_entropy: label 7 at index 2 is outside [0, 4)");
    CHECK_THROWS_AS(softmax_cross_entropy(logits, std::vector<int>{0, 1}, &grad), shape_error);
    CHECK_THROWS_AS(softmax_cross_entropy(logits, tensor<float>(shape{3, 5}), &grad), shape_error);
    CHECK_THROWS_AS(softmax_cross_entropy(logits, std::vector<int>{0, 1, 2}, &grad, std::vector<float>{1.f, 2.f}),
                    shape_error);
    CHECK_THROWS_AS(softmax_cross_entropy(tensor<float>(shape{12}), std::vector<int>{0}, &grad), shape_error);
    CHECK_THROWS_AS(softmax_cross_entropy(tensor<float>(shape{0, 4}), std::vector<int>{}, &grad), shape_error);
    tensor<float> probabilities;
    CHECK_THROWS_AS(softmax(tensor<float>(shape{2, 2, 2}), probabilities), shape_error);
    CHECK_THROWS_AS(argmax_rows(tensor<float>(shape{4})), shape_error);
}

TEST_CASE("softmax_cross_entropy: the gradient is exact for target rows that do not sum to 1") {
    rng random(14);
    const tensor<double> logits = random_logits<double>(3, 4, random);
    tensor<double> targets = random_targets(3, 4, random);
    for (index_t i = 0; i < targets.size(); ++i) targets[i] *= 1.0 + static_cast<double>(i % 3);
    tensor<double> grad;
    softmax_cross_entropy(logits, targets, &grad);
    check_gradient(logits, [&](const tensor<double>& z) { return softmax_cross_entropy(z, targets, nullptr); }, grad);
}

TEST_CASE("softmax_cross_entropy: a class with logit -inf and target 0 contributes nothing") {
    tensor<float> logits(shape{1, 3});
    logits[0] = 0.f;
    logits[1] = -std::numeric_limits<float>::infinity();
    logits[2] = std::log(3.f);
    tensor<float> grad;
    CHECK(softmax_cross_entropy(logits, std::vector<int>{2}, &grad) == doctest::Approx(-std::log(0.75)));
    CHECK(grad[0] == doctest::Approx(0.25));
    CHECK(grad[1] == 0.f);
    CHECK(grad[2] == doctest::Approx(-0.25));
}
