// The one numerical gradient test every layer must pass (dlib's idea).
//
// For a layer f, a random input x and a fixed random weighting r of its output, the
// scalar L = sum(f(x) * r) has dL/dy = r. Backward's dL/dx and dL/dparams are compared
// with central differences (L(v + h) - L(v - h)) / 2h in double precision, with an
// absolute plus relative tolerance. A point whose two one-sided differences disagree
// sits on a kink (ReLU at 0, a max tie) and is skipped. The test also checks that
// backward ADDS to the parameter gradients (two backward calls give twice one) and
// WRITES dx (a NaN-filled dx ends as an empty one does).
#pragma once

#include "nnmark/core/rng.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/layers/layer.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace nnmark::testing {

struct gradient_check_options {
    index_t batch = 3;
    std::uint64_t seed = 7;
    double step = 1e-6;
    double abs_tolerance = 1e-7;
    double rel_tolerance = 1e-5;
    index_t max_points = 150;  // checked coordinates per tensor, picked at random
};

struct gradient_check_report {
    index_t checked = 0;
    index_t skipped_kinks = 0;
};

namespace detail {

// The layer under test with its own parameter and gradient buffers.
struct bound_layer {
    std::unique_ptr<layer<double>> l;
    shape output_item;
    std::vector<double> params, grads;
    std::vector<param_spec> specs;
};

inline bound_layer bind_layer(std::unique_ptr<layer<double>> l, const shape& input_item, rng& random) {
    bound_layer b;
    b.output_item = l->configure(input_item);
    b.specs = l->param_specs();
    index_t total = 0;
    for (const auto& s : b.specs) total += s.shape.count();
    b.params.assign(static_cast<std::size_t>(total), 0.0);
    b.grads.assign(static_cast<std::size_t>(total), 0.0);
    l->bind(b.params, b.grads);
    l->initialize(random);
    // Move every parameter off its initial value (zero biases, unit scales) so that
    // the test does not pass only at a special point.
    for (auto& p : b.params) p += 0.1 * random.normal();
    b.l = std::move(l);
    return b;
}

}  // namespace detail

// `make` builds a fresh layer; `input_item` is the shape of one input item.
inline gradient_check_report check_layer_gradients(const std::function<std::unique_ptr<layer<double>>()>& make,
                                                   const shape& input_item, gradient_check_options opt = {}) {
    rng random(opt.seed);
    auto b = detail::bind_layer(make(), input_item, random);
    const std::string name = b.l->kind();

    tensor<double> x(input_item.prepend(opt.batch));
    for (index_t i = 0; i < x.size(); ++i) x[i] = random.normal();
    tensor<double> weighting(b.output_item.prepend(opt.batch));
    for (index_t i = 0; i < weighting.size(); ++i) weighting[i] = random.normal();

    workspace<double> scratch;
    tensor<double> y, cache;
    // The loss at the current x and parameters, with the same randomness each time
    // (a dropout layer draws the same mask on every call).
    auto loss = [&]() {
        rng pass_random(opt.seed + 1);
        train_context<double> ctx{scratch, pass_random};
        b.l->forward_train(x, y, cache, ctx);
        REQUIRE_MESSAGE(y.shape() == weighting.shape(), name << ": output shape " << y.shape().str());
        double sum = 0;
        for (index_t i = 0; i < y.size(); ++i) sum += y[i] * weighting[i];
        return sum;
    };

    loss();
    tensor<double> dx;
    backward_context<double> bctx{scratch, true, true};
    b.l->backward(x, y, weighting, dx, cache, bctx);
    REQUIRE_MESSAGE(dx.shape() == x.shape(), name << ": dx shape " << dx.shape().str() << " vs x " << x.shape().str());
    const std::vector<double> analytic_params = b.grads;

    // Backward must add into the parameter gradients, not overwrite them, and must WRITE
    // dx (layer.hpp): a dx buffer that already holds garbage (NaN) of the right shape ends
    // equal to the one backward filled from empty, so no element is added to or skipped.
    loss();
    tensor<double> dx_again(x.shape(), std::numeric_limits<double>::quiet_NaN());
    b.l->backward(x, y, weighting, dx_again, cache, bctx);
    REQUIRE(dx_again.shape() == dx.shape());
    for (std::size_t i = 0; i < b.grads.size(); ++i)
        CHECK_MESSAGE(std::abs(b.grads[i] - 2 * analytic_params[i]) <= 1e-9 * (1 + std::abs(analytic_params[i])),
                      name << ": backward does not accumulate parameter gradient " << i);
    for (index_t i = 0; i < dx.size(); ++i)
        CHECK_MESSAGE(dx_again[i] == doctest::Approx(dx[i]).epsilon(1e-12),
                      name << ": backward into a NaN-filled dx gives " << dx_again[i] << " at " << i << ", into an empty one "
                           << dx[i] << " (backward must write dx, not add to it)");

    gradient_check_report report;
    auto compare = [&](double& value, double analytic, const std::string& what) {
        const double saved = value;
        value = saved + opt.step;
        const double up = loss();
        value = saved - opt.step;
        const double down = loss();
        value = saved;
        const double center = loss();
        const double forward_diff = (up - center) / opt.step;
        const double backward_diff = (center - down) / opt.step;
        const double numeric = (up - down) / (2 * opt.step);
        const double scale = std::max({1.0, std::abs(forward_diff), std::abs(backward_diff)});
        if (std::abs(forward_diff - backward_diff) > 1e-3 * scale) {
            ++report.skipped_kinks;
            return;
        }
        ++report.checked;
        const double tol = opt.abs_tolerance + opt.rel_tolerance * std::max(std::abs(numeric), std::abs(analytic));
        CHECK_MESSAGE(std::abs(numeric - analytic) <= tol,
                      name << ": d/d " << what << " analytic " << analytic << " numeric " << numeric);
    };

    auto pick = [&](index_t count) {
        std::vector<index_t> idx;
        if (count <= opt.max_points) {
            for (index_t i = 0; i < count; ++i) idx.push_back(i);
        } else {
            rng pick_random(opt.seed + 2);
            for (index_t k = 0; k < opt.max_points; ++k) idx.push_back(static_cast<index_t>(pick_random.below(static_cast<std::uint64_t>(count))));
        }
        return idx;
    };

    for (index_t i : pick(x.size())) compare(x[i], dx[i], "x[" + std::to_string(i) + "]");

    std::size_t offset = 0;
    for (const auto& spec : b.specs) {
        const auto n = static_cast<std::size_t>(spec.shape.count());
        if (spec.trainable)
            for (index_t i : pick(static_cast<index_t>(n)))
                compare(b.params[offset + static_cast<std::size_t>(i)], analytic_params[offset + static_cast<std::size_t>(i)],
                        spec.name + "[" + std::to_string(i) + "]");
        offset += n;
    }
    CHECK_MESSAGE(report.checked > report.skipped_kinks, name << ": most points were skipped as kinks");
    return report;
}

}  // namespace nnmark::testing
