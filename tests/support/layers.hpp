// Helpers for the tests of one layer: the layer with parameter buffers of its own (a
// one-layer model), the checks every parametrized layer's backward and initialize()
// must pass, and a readable layer_config in doctest's failure messages.
#pragma once

#include "nnmark/core/rng.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/core/workspace.hpp"
#include "nnmark/layers/layer.hpp"

#include "statistics.hpp"
#include "tensors.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace nnmark::testing {

// A Kind<T> layer built from `layer_args`, configured for `input_item`, bound to its
// own parameter and gradient buffers and initialized from `seed`. The parameters start
// at 7 so that one initialize() leaves unwritten shows; the gradients start at 0.
template <template <class> class Kind, class T>
struct layer_with_buffers {
    Kind<T> layer;
    shape output_item;
    std::vector<T> params, grads;

    template <class... Args>
    layer_with_buffers(const shape& input_item, std::uint64_t seed, Args&&... layer_args)
        : layer(std::forward<Args>(layer_args)...), output_item(layer.configure(input_item)) {
        index_t total = 0;
        for (const auto& spec : layer.param_specs()) total += spec.shape.count();
        params.assign(static_cast<std::size_t>(total), T(7));
        grads.assign(params.size(), T(0));
        layer.bind(params, grads);
        rng random(seed);
        layer.initialize(random);
    }
    layer_with_buffers(const layer_with_buffers&) = delete;
    layer_with_buffers& operator=(const layer_with_buffers&) = delete;
};

// After a training forward pass, backward with input_grad off (the first layer) leaves
// dx alone and adds parameter gradients; with param_grads off (a frozen layer) it
// writes dx and adds nothing. Returns the gradients of the first call.
template <template <class> class Kind>
std::vector<double> check_backward_flags(layer_with_buffers<Kind, double>& bound, const tensor<double>& x,
                                         const tensor<double>& dy) {
    workspace<double> scratch;
    rng random(0);
    train_context<double> train{scratch, random};
    tensor<double> y, cache;
    bound.layer.forward_train(x, y, cache, train);
    REQUIRE(dy.shape() == y.shape());

    tensor<double> dx(shape{1}, 42.0);
    backward_context<double> params_only{scratch, false, true};
    bound.layer.backward(x, y, dy, dx, cache, params_only);
    CHECK(dx.shape() == shape{1});  // not touched
    CHECK(dx[0] == 42.0);
    const std::vector<double> grads_after_one = bound.grads;
    CHECK(std::any_of(grads_after_one.begin(), grads_after_one.end(), [](double g) { return g != 0.0; }));

    backward_context<double> input_only{scratch, true, false};
    bound.layer.backward(x, y, dy, dx, cache, input_only);
    CHECK(dx.shape() == x.shape());
    CHECK(bound.grads == grads_after_one);  // not added to
    return grads_after_one;
}

// What one forward pass and two backward passes (the second adding its parameter
// gradients to the first's) leave, with dL/dy drawn from `dy_seed`.
template <class T>
struct forward_backward_result {
    tensor<T> y, dx;
    std::vector<T> grads;
};

template <template <class> class Kind, class T>
forward_backward_result<T> forward_backward_twice(layer_with_buffers<Kind, T>& bound, const tensor<T>& x,
                                                  std::uint64_t dy_seed) {
    workspace<T> scratch;
    forward_backward_result<T> r;
    bound.layer.infer(x, r.y, scratch);
    const tensor<T> dy = random_tensor<T>(r.y.shape(), dy_seed);
    tensor<T> cache;
    backward_context<T> ctx{scratch};
    bound.layer.backward(x, r.y, dy, r.dx, cache, ctx);
    bound.layer.backward(x, r.y, dy, r.dx, cache, ctx);
    r.grads = bound.grads;
    return r;
}

// Parameters fresh from initialize(): the first `weights` look He-normal for `fan_in`
// (mean near 0, standard deviation sqrt(2 / fan_in) within 5%), the rest (biases) are 0.
inline void check_he_normal_weights_zero_biases(const std::vector<double>& params, std::size_t weights, double fan_in) {
    REQUIRE(weights <= params.size());
    CHECK(std::all_of(params.begin() + static_cast<std::ptrdiff_t>(weights), params.end(),
                      [](double v) { return v == 0.0; }));
    const double expected_std = std::sqrt(2.0 / fan_in);
    const moments m = sample_moments(std::span<const double>(params).first(weights));
    CHECK(std::abs(m.mean) < 0.1 * expected_std);
    CHECK(m.stddev == doctest::Approx(expected_std).epsilon(0.05));
}

}  // namespace nnmark::testing

// Prints {name: value, ...} (a list of layers as [kind {...}, ...]), so that a failed
// CHECK(layer.config() == ...) shows both sides.
template <>
struct doctest::StringMaker<nnmark::layer_config> {
    static void write(std::ostream& text, const nnmark::layer_config& config) {
        text << '{';
        for (std::size_t i = 0; i < config.size(); ++i) {
            text << (i ? ", " : "") << config[i].first << ": ";
            if (const auto* list = std::get_if<std::vector<nnmark::layer_description>>(&config[i].second)) {
                text << '[';
                for (std::size_t j = 0; j < list->size(); ++j) {
                    text << (j ? ", " : "") << (*list)[j].kind << ' ';
                    write(text, (*list)[j].config);
                }
                text << ']';
            } else {
                std::visit([&](const auto& value) {
                    if constexpr (requires { text << value; }) text << value;
                }, config[i].second);
            }
        }
        text << '}';
    }
    static doctest::String convert(const nnmark::layer_config& config) {
        std::ostringstream text;
        write(text, config);
        return text.str().c_str();
    }
};
