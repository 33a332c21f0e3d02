// The fixture the optimizer tests share, and the checks of an optimizer against a
// reference: the update rule of one element written in double the way torch.optim's
// documentation states it. A reference has a `w` (the element's value) and
// step(gradient, decays), and is made from the element's initial value.
#pragma once

#include "nnmark/layers/dense.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/optim/optimizer.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

namespace nnmark::testing {

// A dense(2) layer on 2 inputs: parameters weight [2, 2], then bias [2], and three steps
// of their gradients. Element 3 has a zero gradient first, where Adam's update is
// 0 / (0 + eps) = 0.
inline constexpr std::array<std::array<double, 6>, 3> step_grads{{
    {0.5, -1.0, 2.0, 0.0, 1.0, -0.5},
    {0.25, 0.5, -1.0, 1.0, 0.0, 0.5},
    {-0.5, 0.0, 1.0, -2.0, 0.5, 1.0},
}};
inline constexpr std::array<double, 6> initial_params{1.0, -2.0, 0.5, 3.0, 0.25, -1.0};
inline constexpr std::array<bool, 6> decayed_params{true, true, true, true, false, false};  // weight yes, bias no

inline sequential<double> dense_model() {
    sequential<double> model(shape{2});
    model.emplace<dense>(index_t{2});
    std::copy(initial_params.begin(), initial_params.end(), model.parameters().begin());
    return model;
}

// Sets the model's gradients to `grads`, then lets `opt` take one step.
inline void take_step(optimizer<double>& opt, sequential<double>& model, const std::array<double, 6>& grads) {
    std::copy(grads.begin(), grads.end(), model.gradients().begin());
    opt.step(model);
}

// The three steps of `opt` on dense_model(), element by element against the reference
// that make_reference(initial value) returns.
template <class MakeReference>
void check_three_steps(optimizer<double>& opt, MakeReference make_reference, double epsilon) {
    auto model = dense_model();
    std::vector<decltype(make_reference(0.0))> expected;
    for (double w : initial_params) expected.push_back(make_reference(w));
    for (const auto& grads : step_grads) {
        take_step(opt, model, grads);
        for (std::size_t i = 0; i < expected.size(); ++i) {
            expected[i].step(grads[i], decayed_params[i]);
            CAPTURE(i);
            CHECK(model.parameters()[i] == doctest::Approx(expected[i].w).epsilon(epsilon));
        }
    }
}

// Three steps of `opt` on dense(3) over 11 inputs, 33 weights and 3 biases: whole SIMD
// batches and a scalar tail, in float or double, against the double-precision reference.
template <class T, class MakeReference>
void check_long_tensors(optimizer<T>& opt, MakeReference make_reference, double tolerance) {
    sequential<T> model(shape{11});
    model.template emplace<dense>(index_t{3});
    const std::size_t n = model.parameters().size(), weights = 33;
    std::vector<decltype(make_reference(0.0))> expected;
    for (std::size_t i = 0; i < n; ++i) {
        model.parameters()[i] = static_cast<T>(std::sin(1.0 + static_cast<double>(i)));
        expected.push_back(make_reference(static_cast<double>(model.parameters()[i])));
    }
    for (int step = 0; step < 3; ++step) {
        for (std::size_t i = 0; i < n; ++i) {
            model.gradients()[i] = static_cast<T>(std::cos(0.7 * static_cast<double>(i) + step));
            expected[i].step(static_cast<double>(model.gradients()[i]), i < weights);
        }
        opt.step(model);
        for (std::size_t i = 0; i < n; ++i) {
            CAPTURE(i);
            CHECK(static_cast<double>(model.parameters()[i]) == doctest::Approx(expected[i].w).epsilon(tolerance));
        }
    }
}

}  // namespace nnmark::testing
