#include "nnmark/layers/residual.hpp"

#include "nnmark/layers/batchnorm.hpp"
#include "nnmark/layers/conv2d.hpp"
#include "nnmark/layers/dense.hpp"
#include "nnmark/layers/dropout.hpp"
#include "nnmark/layers/relu.hpp"

#include "../support/errors.hpp"
#include "../support/gradient_check.hpp"
#include "../support/layers.hpp"
#include "../support/tensors.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <vector>

using namespace nnmark;
using testing::error_message;

namespace residual_tests {

// conv(same) -> [batchnorm] -> relu -> conv(same) -> [batchnorm], the basic block of a ResNet.
template <class T>
std::vector<std::unique_ptr<layer<T>>> basic_block_layers(index_t channels, bool batch_norm) {
    std::vector<std::unique_ptr<layer<T>>> inner;
    inner.push_back(std::make_unique<conv2d<T>>(channels, 3, 1, padding::same));
    if (batch_norm) inner.push_back(std::make_unique<batchnorm<T>>());
    inner.push_back(std::make_unique<relu<T>>());
    inner.push_back(std::make_unique<conv2d<T>>(channels, 3, 1, padding::same));
    if (batch_norm) inner.push_back(std::make_unique<batchnorm<T>>());
    return inner;
}

template <class T>
std::unique_ptr<residual<T>> basic_block(index_t channels, bool batch_norm) {
    return std::make_unique<residual<T>>(basic_block_layers<T>(channels, batch_norm));
}

// A block holding one layer.
std::vector<std::unique_ptr<layer<double>>> only(std::unique_ptr<layer<double>> l) {
    std::vector<std::unique_ptr<layer<double>>> inner;
    inner.push_back(std::move(l));
    return inner;
}

std::vector<std::unique_ptr<layer<double>>> dense_relu_dense(index_t features) {
    std::vector<std::unique_ptr<layer<double>>> inner;
    inner.push_back(std::make_unique<dense<double>>(features + 2));
    inner.push_back(std::make_unique<relu<double>>());
    inner.push_back(std::make_unique<dense<double>>(features));
    return inner;
}

}  // namespace residual_tests

using namespace residual_tests;

TEST_CASE("residual: y = x + the inner layers applied in order, in inference and in training") {
    const shape item{3, 5, 6};
    testing::layer_with_buffers<residual, double> bound(item, 2, basic_block_layers<double>(3, false));
    CHECK(bound.output_item == item);
    const residual<double>& block = bound.layer;
    const tensor<double> x = testing::random_tensor<double>(item.prepend(2), 3);
    // The definition: run the inner layers one after the other by hand, then add x.
    workspace<double> ws;
    tensor<double> a, b;
    block.at(0).infer(x, a, ws);
    block.at(1).infer(a, b, ws);
    block.at(2).infer(b, a, ws);
    tensor<double> y, y_train, cache;
    block.infer(x, y, ws);
    rng unused(0);
    train_context<double> ctx{ws, unused};
    bound.layer.forward_train(x, y_train, cache, ctx);
    REQUIRE(y.shape() == x.shape());
    REQUIRE(y_train.shape() == x.shape());
    for (index_t i = 0; i < x.size(); ++i) {
        REQUIRE(y[i] == x[i] + a[i]);
        REQUIRE(y_train[i] == y[i]);
    }
}

TEST_CASE("residual: numerical gradient of ResNet blocks, with and without batch norm in training") {
    for (bool batch_norm : {false, true}) {
        CAPTURE(batch_norm);
        testing::check_layer_gradients([&] { return basic_block<double>(2, batch_norm); }, shape{2, 4, 5});
    }
}

TEST_CASE("residual: numerical gradient of a dense block and of a block inside a block") {
    testing::check_layer_gradients([] { return std::make_unique<residual<double>>(dense_relu_dense(5)); }, shape{5});
    testing::check_layer_gradients(
        [] {
            auto outer = std::make_unique<residual<double>>();
            outer->add(std::make_unique<residual<double>>(dense_relu_dense(4)));
            outer->emplace<dense>(4);
            return outer;
        },
        shape{4});
}

TEST_CASE("residual: a block inside a block infers on its own nested workspace, as in training") {
    auto outer = std::make_unique<residual<double>>();
    outer->add(basic_block<double>(2, false));
    outer->emplace<relu>();
    outer->add(basic_block<double>(2, false));
    testing::layer_with_buffers<residual, double> bound(shape{2, 6, 6}, 4, only(std::move(outer)));
    const tensor<double> x = testing::random_tensor<double>(shape{3, 2, 6, 6}, 8);
    workspace<double> ws;
    tensor<double> y, y_train, cache;
    bound.layer.infer(x, y, ws);
    bound.layer.infer(x, y, ws);  // again, on the buffers the first call left
    rng unused(0);
    train_context<double> ctx{ws, unused};
    bound.layer.forward_train(x, y_train, cache, ctx);
    REQUIRE(y.shape() == x.shape());
    for (index_t i = 0; i < x.size(); ++i) REQUIRE(y[i] == y_train[i]);
}

TEST_CASE("residual: parameters are the inner layers', named by inner index, initialized from derived streams") {
    auto block = basic_block<float>(4, true);
    block->configure(shape{4, 3, 3});
    std::vector<std::string> names;
    for (const auto& spec : block->param_specs()) names.push_back(spec.name);
    CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                            "1.running_var", "3.weight", "3.bias", "4.weight", "4.bias",
                                            "4.running_mean", "4.running_var"});
    CHECK(block->param_specs()[0].shape == shape{4, 4, 3, 3});
    CHECK_FALSE(block->param_specs()[4].trainable);
    CHECK(block->couples_batch_items());
    CHECK_FALSE(basic_block<float>(4, false)->couples_batch_items());

    // The two convolutions have the same shape but draw from different streams.
    testing::layer_with_buffers<residual, double> bound(shape{2, 3, 3}, 5, [] {
        std::vector<std::unique_ptr<layer<double>>> inner;
        inner.push_back(std::make_unique<conv2d<double>>(2, 3, 1, padding::same));
        inner.push_back(std::make_unique<conv2d<double>>(2, 3, 1, padding::same));
        return inner;
    }());
    const std::size_t per_conv = 2 * 2 * 9 + 2;
    REQUIRE(bound.params.size() == 2 * per_conv);
    CHECK(bound.params[0] != bound.params[per_conv]);
    CHECK(bound.params[0] != 7.0);  // initialize() reached the first layer's slice
}

TEST_CASE("residual: backward honours input_grad and param_grads") {
    testing::layer_with_buffers<residual, double> bound(shape{5}, 6, dense_relu_dense(5));
    const tensor<double> x = testing::random_tensor<double>(shape{4, 5}, 9);
    const tensor<double> dy = testing::random_tensor<double>(shape{4, 5}, 10);
    testing::check_backward_flags(bound, x, dy);
}

TEST_CASE("residual: dropout inside draws the same masks however the batch is split") {
    testing::layer_with_buffers<residual, double> bound(shape{6}, 1, only(std::make_unique<dropout<double>>(0.5)));
    const tensor<double> x = testing::random_tensor<double>(shape{4, 6}, 11);
    workspace<double> ws;
    tensor<double> whole, half, cache;
    rng r1(3), r2(3);
    train_context<double> all{ws, r1, 0};
    bound.layer.forward_train(x, whole, cache, all);
    tensor<double> second(shape{2, 6});
    std::copy(x.data() + 12, x.data() + 24, second.data());
    train_context<double> shard{ws, r2, 2};
    bound.layer.forward_train(second, half, cache, shard);
    for (index_t i = 0; i < 12; ++i) CHECK(half[i] == whole[12 + i]);
}

TEST_CASE("residual: clear errors for a shape the block does not keep, an empty block and misuse") {
    auto widening = std::make_unique<residual<float>>();
    widening->emplace<conv2d>(8, 3, 1, padding::same);
    CHECK(error_message<shape_error>([&] { widening->configure(shape{4, 6, 6}); }) ==
          "residual: the inner layers turn items [4, 6, 6] into [8, 6, 6]; the skip connection adds the input, so "
          "they must keep its shape");
    auto shrinking = std::make_unique<residual<float>>();
    shrinking->emplace<conv2d>(4, 3);
    shrinking->emplace<conv2d>(4, 5);
    CHECK(testing::contains(error_message<shape_error>([&] { shrinking->configure(shape{4, 4, 4}); }),
                            "residual: inner layer 1 (conv2d): "));
    CHECK(error_message<argument_error>([] { residual<float>().configure(shape{3}); }) ==
          "residual: expected at least one inner layer, got none");

    auto block = basic_block<float>(2, false);
    block->configure(shape{2, 4, 4});
    CHECK_THROWS_AS(block->emplace<relu>(), argument_error);

    testing::layer_with_buffers<residual, double> bound(shape{5}, 6, dense_relu_dense(5));
    const tensor<double> x = testing::random_tensor<double>(shape{4, 5}, 9), other = x;
    workspace<double> ws;
    tensor<double> y, dx, cache;
    rng unused(0);
    train_context<double> ctx{ws, unused};
    backward_context<double> bctx{ws};
    CHECK_THROWS_AS(bound.layer.backward(x, y, x, dx, cache, bctx), error);  // no forward_train yet
    bound.layer.forward_train(x, y, cache, ctx);
    CHECK_THROWS_AS(bound.layer.backward(other, y, x, dx, cache, bctx), error);  // not that pass's input
    CHECK_THROWS_AS(bound.layer.infer(tensor<double>(shape{4, 6}), y, ws), shape_error);
}
