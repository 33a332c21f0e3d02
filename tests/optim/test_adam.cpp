// Tests of adam<T>: steps against the textbook formulas, weight decay only on decayed
// parameters, frozen layers, and resuming from saved state bit-identically.
#include "nnmark/optim/adam.hpp"

#include "nnmark/layers/dense.hpp"

#include "../support/optimizer_steps.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace nnmark;
using testing::dense_model;
using testing::step_grads;
using testing::take_step;

namespace {

// Adam for one element as Kingma & Ba write it, with PyTorch's L2 weight decay.
struct reference_adam {
    double lr, beta1, beta2, eps, weight_decay;
    double w, m = 0.0, v = 0.0;
    int t = 0;

    void step(double grad, bool decays) {
        const double g = decays ? grad + weight_decay * w : grad;
        ++t;
        m = beta1 * m + (1 - beta1) * g;
        v = beta2 * v + (1 - beta2) * g * g;
        const double m_hat = m / (1 - std::pow(beta1, t));
        const double v_hat = v / (1 - std::pow(beta2, t));
        w -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
};

// Adam with betas (0.9, 0.999) and eps 1e-8, as the reference for one element.
auto adam_reference(double lr, double weight_decay) {
    return [=](double w) { return reference_adam{lr, 0.9, 0.999, 1e-8, weight_decay, w}; };
}

void check_adam_three_steps(double lr, double weight_decay) {
    adam<double> opt(lr, 0.9, 0.999, 1e-8, weight_decay);
    testing::check_three_steps(opt, adam_reference(lr, weight_decay), 1e-13);
    CHECK(opt.step_count() == 3);
}

template <class T>
void check_adam_long_tensors(double lr, double weight_decay, double tolerance) {
    adam<T> opt(lr, 0.9, 0.999, 1e-8, weight_decay);
    testing::check_long_tensors(opt, adam_reference(lr, weight_decay), tolerance);
}

}  // namespace

TEST_CASE("adam: steps match the formulas of torch.optim.Adam") {
    // Element 0 by hand, lr 0.1, gradient 0.5 then 0.25:
    //   t=1: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25,
    //        w = 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.900000002
    //   t=2: m = 0.045 + 0.025 = 0.07, v = 0.00024975 + 0.0000625 = 0.00031225,
    //        mhat = 0.07 / 0.19 = 0.3684211, vhat = 0.00031225 / 0.001999 = 0.1562031,
    //        w = 0.900000002 - 0.1 * 0.3684211 / 0.3952253 = 0.8067820
    adam<double> opt(0.1);
    auto model = dense_model();
    take_step(opt, model, step_grads[0]);
    CHECK(model.parameters()[0] == doctest::Approx(0.900000002).epsilon(1e-14));
    CHECK(model.parameters()[3] == 3.0);  // zero gradient, zero moments: no move
    take_step(opt, model, step_grads[1]);
    CHECK(model.parameters()[0] == doctest::Approx(0.8067820).epsilon(1e-7));
    const auto state = opt.state();
    REQUIRE(state.size() == 2);
    CHECK(state[0].first == "adam.m");
    CHECK(state[1].first == "adam.v");
    CHECK(state[0].second[0] == doctest::Approx(0.07).epsilon(1e-14));
    CHECK(state[1].second[0] == doctest::Approx(0.00031225).epsilon(1e-14));

    check_adam_three_steps(0.1, 0.0);
    check_adam_three_steps(1e-3, 0.0);
}

TEST_CASE("adam: weight decay is added to the gradient of decayed parameters only") {
    // Element 4 is a bias: with or without weight decay it takes the same steps.
    adam<double> plain(0.1), decaying(0.1, 0.9, 0.999, 1e-8, 0.5);
    auto a = dense_model(), b = dense_model();
    for (const auto& grads : step_grads) {
        take_step(plain, a, grads);
        take_step(decaying, b, grads);
    }
    CHECK(a.parameters()[4] == b.parameters()[4]);
    CHECK(a.parameters()[5] == b.parameters()[5]);
    CHECK(a.parameters()[0] != b.parameters()[0]);
    // Element 3 (w = 3, gradient 0 first) by hand, first step with decay 0.5: g = 1.5,
    // mhat = 1.5, vhat = 2.25, so w = 3 - 0.1 * 1.5 / 1.5 = 2.9 (up to eps).
    adam<double> once(0.1, 0.9, 0.999, 1e-8, 0.5);
    auto c = dense_model();
    take_step(once, c, step_grads[0]);
    CHECK(c.parameters()[3] == doctest::Approx(2.9).epsilon(1e-8));

    check_adam_three_steps(0.1, 0.5);
    check_adam_three_steps(0.01, 1e-2);
}

TEST_CASE("adam: long tensors (SIMD body and scalar tail) follow the reference in double and float") {
    check_adam_long_tensors<double>(0.01, 0.0, 1e-13);
    check_adam_long_tensors<double>(0.01, 0.1, 1e-13);
    check_adam_long_tensors<float>(0.01, 0.1, 1e-5);
}

TEST_CASE("adam: frozen layers do not move") {
    sequential<double> model(shape{2});
    model.emplace<dense>(index_t{2});
    model.emplace<dense>(index_t{2});
    model.initialize(3);
    std::fill(model.gradients().begin(), model.gradients().end(), 1.0);
    model.set_frozen(0, true);
    const std::vector<double> before(model.parameters().begin(), model.parameters().end());
    adam<double> opt(0.1);
    opt.step(model);
    for (std::size_t i = 0; i < 6; ++i) CHECK(model.parameters()[i] == before[i]);
    // Layer 1 moved by lr on every element: the first Adam step is lr * sign(g).
    for (std::size_t i = 6; i < 12; ++i) CHECK(model.parameters()[i] == doctest::Approx(before[i] - 0.1).epsilon(1e-7));
}

namespace {

// One step with a first optimizer, then its state loaded into a fresh one (with the
// step count or without) that takes the remaining two steps.
std::vector<double> resume_after_first_step(bool restore_step_count) {
    adam<double> first(0.05, 0.8, 0.99, 1e-6, 0.01);
    auto model = dense_model();
    take_step(first, model, step_grads[0]);
    adam<double> resumed(0.05, 0.8, 0.99, 1e-6, 0.01);
    resumed.allocate_state(model.parameters().size());
    const auto saved = first.state();
    const auto loaded = resumed.state();
    REQUIRE(loaded.size() == saved.size());
    for (std::size_t b = 0; b < saved.size(); ++b) {
        REQUIRE(loaded[b].first == saved[b].first);
        std::copy(saved[b].second.begin(), saved[b].second.end(), loaded[b].second.begin());
    }
    if (restore_step_count) resumed.set_step_count(first.step_count());
    take_step(resumed, model, step_grads[1]);
    take_step(resumed, model, step_grads[2]);
    return {model.parameters().begin(), model.parameters().end()};
}

}  // namespace

TEST_CASE("adam: training resumes bit-identically from the saved state and step count") {
    adam<double> straight(0.05, 0.8, 0.99, 1e-6, 0.01);
    auto reference = dense_model();
    for (const auto& grads : step_grads) take_step(straight, reference, grads);
    const std::vector<double> expected(reference.parameters().begin(), reference.parameters().end());
    CHECK(resume_after_first_step(true) == expected);
    // Without the step count the bias correction differs, and so do the weights.
    CHECK(resume_after_first_step(false) != expected);
}

TEST_CASE("adam: rejects bad hyper-parameters") {
    CHECK_THROWS_AS(adam<double>(-1e-3), argument_error);
    CHECK_THROWS_AS(adam<double>(1e-3, 1.0), argument_error);
    CHECK_THROWS_AS(adam<double>(1e-3, 0.9, -0.1), argument_error);
    CHECK_THROWS_AS(adam<double>(1e-3, 0.9, 0.999, -1e-8), argument_error);
    CHECK_THROWS_AS(adam<double>(1e-3, 0.9, 0.999, 1e-8, -0.1), argument_error);
    adam<float> opt;
    CHECK(opt.name() == "adam");
    CHECK(opt.learning_rate() == 1e-3);
    CHECK_THROWS_AS(opt.set_step_count(-1), argument_error);
}
