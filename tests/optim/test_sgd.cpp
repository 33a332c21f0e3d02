// Tests of sgd<T> and, through it, of the parameter walk every optimizer shares
// (trainable, decayed and frozen rules; state allocated once; a changed model rejected).
#include "nnmark/optim/sgd.hpp"

#include "nnmark/layers/dense.hpp"

#include "../support/optimizer_steps.hpp"
#include "../support/threads.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

using namespace nnmark;
using testing::dense_model;
using testing::step_grads;
using testing::take_step;

namespace {

// torch.optim.SGD for one element, written the way its documentation states it,
// including its first-step rule buf = g (the engine instead starts the buffer at 0).
struct reference_sgd {
    double lr, momentum, weight_decay;
    bool nesterov;
    double w, buf = 0.0;
    bool first = true;

    void step(double grad, bool decays) {
        double g = decays ? grad + weight_decay * w : grad;
        if (momentum != 0.0) {
            buf = first ? g : momentum * buf + g;
            first = false;
            g = nesterov ? g + momentum * buf : buf;
        }
        w = w - lr * g;
    }
};

auto sgd_reference(double lr, double momentum, bool nesterov, double weight_decay) {
    return [=](double w) { return reference_sgd{lr, momentum, weight_decay, nesterov, w}; };
}

void check_sgd_three_steps(double lr, double momentum, bool nesterov, double weight_decay) {
    sgd<double> opt(lr, momentum, nesterov, weight_decay);
    testing::check_three_steps(opt, sgd_reference(lr, momentum, nesterov, weight_decay), 1e-14);
}

template <class T>
void check_sgd_long_tensors(double lr, double momentum, bool nesterov, double weight_decay, double tolerance) {
    sgd<T> opt(lr, momentum, nesterov, weight_decay);
    testing::check_long_tensors(opt, sgd_reference(lr, momentum, nesterov, weight_decay), tolerance);
}

// A test-only layer with one parameter of each kind: "w" trainable and decayed,
// "b" trainable and not decayed, "stat" not trainable. The identity otherwise.
template <class T>
class probe final : public layer<T> {
public:
    std::string kind() const override { return "probe"; }
    layer_config config() const override { return {}; }
    shape configure(const shape& input_item) override { return input_item; }
    std::vector<param_spec> param_specs() const override {
        return {{"w", shape{2}, true, true}, {"b", shape{2}, true, false}, {"stat", shape{2}, false, false}};
    }
    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>&) const override { y = x; }
    void backward(const tensor<T>&, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>&,
                  backward_context<T>&) override {
        dx = dy;
    }
};

// Two probe layers, the second frozen; every parameter 1, every gradient 2.
sequential<double> probe_model() {
    sequential<double> model(shape{2});
    model.emplace<probe>();
    model.emplace<probe>();
    model.set_frozen(1, true);
    std::fill(model.parameters().begin(), model.parameters().end(), 1.0);
    std::fill(model.gradients().begin(), model.gradients().end(), 2.0);
    return model;
}

}  // namespace

TEST_CASE("sgd: plain steps match torch.optim.SGD") {
    // Element 0 by hand, lr 0.1, gradients 0.5, 0.25, -0.5: 1 - 0.05 - 0.025 + 0.05 = 0.975.
    sgd<double> opt(0.1);
    auto model = dense_model();
    for (const auto& grads : step_grads) take_step(opt, model, grads);
    CHECK(model.parameters()[0] == doctest::Approx(0.975).epsilon(1e-14));
    CHECK(opt.state().empty());  // no momentum, no state
    check_sgd_three_steps(0.1, 0.0, false, 0.0);
}

TEST_CASE("sgd: momentum steps match torch.optim.SGD") {
    // Element 0 by hand, lr 0.1, momentum 0.9, gradients 0.5, 0.25, -0.5:
    //   v = 0.5            w = 1 - 0.05     = 0.95
    //   v = 0.45 + 0.25    w = 0.95 - 0.07  = 0.88
    //   v = 0.63 - 0.5     w = 0.88 - 0.013 = 0.867
    sgd<double> opt(0.1, 0.9);
    auto model = dense_model();
    for (const auto& grads : step_grads) take_step(opt, model, grads);
    CHECK(model.parameters()[0] == doctest::Approx(0.867).epsilon(1e-14));
    REQUIRE(opt.state().size() == 1);
    CHECK(opt.state()[0].first == "momentum");
    CHECK(opt.state()[0].second[0] == doctest::Approx(0.13).epsilon(1e-14));
    check_sgd_three_steps(0.1, 0.9, false, 0.0);
}

TEST_CASE("sgd: Nesterov steps match torch.optim.SGD") {
    // Element 0 by hand, lr 0.1, momentum 0.9:
    //   v = 0.5   g = 0.5 + 0.45   = 0.95    w = 1 - 0.095      = 0.905
    //   v = 0.7   g = 0.25 + 0.63  = 0.88    w = 0.905 - 0.088  = 0.817
    //   v = 0.13  g = -0.5 + 0.117 = -0.383  w = 0.817 + 0.0383 = 0.8553
    sgd<double> opt(0.1, 0.9, true);
    auto model = dense_model();
    for (const auto& grads : step_grads) take_step(opt, model, grads);
    CHECK(model.parameters()[0] == doctest::Approx(0.8553).epsilon(1e-14));
    check_sgd_three_steps(0.1, 0.9, true, 0.0);
}

TEST_CASE("sgd: weight decay applies to decayed parameters only") {
    // Element 0 (a weight) by hand, lr 0.1, weight decay 0.01:
    //   g = 0.5 + 0.01          w = 1 - 0.051              = 0.949
    //   g = 0.25 + 0.00949      w = 0.949 - 0.025949       = 0.923051
    //   g = -0.5 + 0.00923051   w = 0.923051 + 0.049076949 = 0.972127949
    // Element 4 (a bias, not decayed): 0.25 - 0.1 * (1 + 0 + 0.5) = 0.1.
    sgd<double> opt(0.1, 0.0, false, 0.01);
    auto model = dense_model();
    for (const auto& grads : step_grads) take_step(opt, model, grads);
    CHECK(model.parameters()[0] == doctest::Approx(0.972127949).epsilon(1e-14));
    CHECK(model.parameters()[4] == doctest::Approx(0.1).epsilon(1e-14));
    check_sgd_three_steps(0.1, 0.0, false, 0.01);
    check_sgd_three_steps(0.05, 0.8, true, 0.1);
}

TEST_CASE("sgd: long tensors (SIMD body and scalar tail) follow the reference in double and float") {
    for (bool nesterov : {false, true}) {
        check_sgd_long_tensors<double>(0.1, 0.9, nesterov, 0.05, 1e-14);
        check_sgd_long_tensors<float>(0.1, 0.9, nesterov, 0.05, 1e-5);
    }
    check_sgd_long_tensors<double>(0.1, 0.0, false, 0.0, 1e-14);
    check_sgd_long_tensors<float>(0.1, 0.0, false, 0.05, 1e-5);
}

TEST_CASE("optimizer: only trainable parameters of unfrozen layers move; decay only where decayed") {
    auto model = probe_model();
    sgd<double> opt(0.5, 0.0, false, 0.1);
    opt.step(model);
    const auto params = model.parameters();
    // Layer 0: "w" = 1 - 0.5 * (2 + 0.1 * 1) = -0.05; "b" = 1 - 0.5 * 2 = 0; "stat" untouched.
    CHECK(params[0] == doctest::Approx(-0.05).epsilon(1e-14));
    CHECK(params[1] == doctest::Approx(-0.05).epsilon(1e-14));
    CHECK(params[2] == 0.0);
    CHECK(params[3] == 0.0);
    CHECK(params[4] == 1.0);
    CHECK(params[5] == 1.0);
    // Layer 1 is frozen: nothing of it moves, even with a gradient present.
    for (std::size_t i = 6; i < params.size(); ++i) CHECK(params[i] == 1.0);
}

TEST_CASE("optimizer: state is laid out like the parameters and allocated once") {
    auto model = probe_model();
    sgd<double> opt(0.1, 0.9);
    CHECK(opt.state().empty());
    opt.step(model);
    auto state = opt.state();
    REQUIRE(state.size() == 1);
    REQUIRE(state[0].second.size() == model.parameters().size());
    const double* first = state[0].second.data();
    // The first step leaves v = g in the trainable slots of layer 0 and 0 elsewhere.
    const std::array<double, 12> expected{2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0};
    for (std::size_t i = 0; i < expected.size(); ++i) CHECK(state[0].second[i] == expected[i]);
    opt.step(model);
    CHECK(opt.state()[0].second.data() == first);
    CHECK(opt.step_count() == 2);
    CHECK(opt.state()[0].second[0] == doctest::Approx(0.9 * 2 + 2).epsilon(1e-14));
}

TEST_CASE("optimizer: a model whose parameter count changed is rejected") {
    auto model = probe_model();
    sgd<double> opt(0.1, 0.9);
    opt.step(model);
    model.emplace<probe>();
    CHECK_THROWS_AS(opt.step(model), shape_error);
    CHECK_THROWS_AS(opt.allocate_state(18), shape_error);
    CHECK_NOTHROW(opt.allocate_state(12));  // the count it was made for: nothing to do
}

TEST_CASE("sgd: large tensors give the same result on one thread and on two") {
    // 2 x 70000 weights: enough for the update loop to go parallel when allowed.
    auto run = [](int threads) {
        set_threads(threads);
        sequential<double> model(shape{70000});
        model.emplace<dense>(index_t{2});
        for (std::size_t i = 0; i < model.parameters().size(); ++i) {
            model.parameters()[i] = std::sin(0.001 * static_cast<double>(i));
            model.gradients()[i] = std::cos(0.003 * static_cast<double>(i));
        }
        sgd<double> opt(0.1, 0.9, true, 0.01);
        opt.step(model);
        opt.step(model);
        return std::vector<double>(model.parameters().begin(), model.parameters().end());
    };
    testing::thread_count_guard guard;
    const auto one = run(1);
    const auto two = run(2);
    CHECK(one == two);
    // Element 1000, a weight, from the formulas: two steps with the same gradient g.
    const double w0 = std::sin(1.0), g = std::cos(3.0);
    const double g1 = g + 0.01 * w0, v1 = g1, w1 = w0 - 0.1 * (g1 + 0.9 * v1);
    const double g2 = g + 0.01 * w1, v2 = 0.9 * v1 + g2, w2 = w1 - 0.1 * (g2 + 0.9 * v2);
    CHECK(one[1000] == doctest::Approx(w2).epsilon(1e-14));
}

TEST_CASE("sgd: float parameters follow the same rule") {
    sequential<float> model(shape{2});
    model.emplace<dense>(index_t{2});
    std::fill(model.parameters().begin(), model.parameters().end(), 1.0f);
    std::fill(model.gradients().begin(), model.gradients().end(), 0.5f);
    sgd<float> opt(0.1, 0.9);
    opt.step(model);
    opt.step(model);
    // v = 0.5, then 0.95; w = 1 - 0.05 - 0.095 = 0.855.
    for (float w : model.parameters()) CHECK(w == doctest::Approx(0.855f).epsilon(1e-6));
}

TEST_CASE("sgd: rejects bad hyper-parameters") {
    CHECK_THROWS_AS(sgd<double>(-0.1), argument_error);
    CHECK_THROWS_AS(sgd<double>(std::nan("")), argument_error);
    CHECK_THROWS_AS(sgd<double>(0.1, -0.5), argument_error);
    CHECK_THROWS_AS(sgd<double>(0.1, 0.0, true), argument_error);  // Nesterov without momentum
    CHECK_THROWS_AS(sgd<double>(0.1, 0.9, false, -1e-4), argument_error);
    sgd<double> opt(0.1, 0.9, true, 5e-4);
    CHECK(opt.name() == "sgd");
    opt.set_learning_rate(0.01);
    CHECK(opt.learning_rate() == 0.01);
    CHECK_THROWS_AS(opt.set_learning_rate(-1.0), argument_error);
    CHECK(opt.learning_rate() == 0.01);
}
