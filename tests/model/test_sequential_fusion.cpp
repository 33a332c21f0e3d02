// A layer followed by a ReLU may apply the ReLU itself (layer::infer_then_relu), and a
// layer after a ReLU may run the ReLU's backward itself (layer::backward_through_relu):
// the model's results must be those of the layers run one by one, bit for bit.
#include "nnmark/layers/conv2d.hpp"
#include "nnmark/layers/dense.hpp"
#include "nnmark/layers/flatten.hpp"
#include "nnmark/layers/maxpool2d.hpp"
#include "nnmark/layers/relu.hpp"
#include "nnmark/model/sequential.hpp"

#include "../support/tensors.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

using namespace nnmark;
using testing::random_tensor;

namespace {

// Every parameter, biases too, drawn from normal(0, 0.3) so that the ReLUs cut sums that
// include the biases.
sequential<float> with_random_parameters(sequential<float> net, std::uint64_t seed) {
    rng random(seed);
    for (float& p : net.parameters()) p = static_cast<float>(0.3 * random.normal());
    return net;
}

// Both convolution lowerings followed by ReLUs (a window of 18 values unrolls, one of 45
// goes channel-last, with 33 channels: a tile cut by the last channel), a dense layer
// followed by a ReLU (which it does not apply itself), and a convolution + ReLU that ends
// a model (the fused output is the model's output).
sequential<float> mixed_network() {
    sequential<float> net(shape{2, 11, 10});
    net.emplace<conv2d>(5, 3);
    net.emplace<relu>();
    net.emplace<conv2d>(33, 3, 1, padding::same);
    net.emplace<relu>();
    net.emplace<maxpool2d>(2);
    net.emplace<flatten>();
    net.emplace<dense>(7);
    net.emplace<relu>();
    net.emplace<dense>(4);
    return with_random_parameters(std::move(net), 3);
}

// The other backward paths through a ReLU: a strided convolution (unrolled) and a
// pooling with overlapping 3x3 windows (the general path, not the 2x2 one).
sequential<float> strided_network() {
    sequential<float> net(shape{3, 13, 12});
    net.emplace<conv2d>(6, 3);
    net.emplace<relu>();
    net.emplace<conv2d>(5, 3, 2);
    net.emplace<relu>();
    net.emplace<maxpool2d>(3, 1);
    net.emplace<flatten>();
    net.emplace<dense>(3);
    return with_random_parameters(std::move(net), 5);
}

sequential<float> ending_in_relu() {
    sequential<float> net(shape{4, 6, 6});
    net.emplace<conv2d>(40, 3);
    net.emplace<relu>();
    return with_random_parameters(std::move(net), 4);
}

// The activations of every layer, each run by itself.
std::vector<tensor<float>> layer_by_layer(const sequential<float>& net, const tensor<float>& x) {
    std::vector<tensor<float>> activations{x};
    workspace<float> scratch;
    for (int i = 0; i < net.size(); ++i) {
        tensor<float> y;
        net.at(i).infer(activations.back(), y, scratch);
        activations.push_back(std::move(y));
    }
    return activations;
}

bool same(const tensor<float>& a, const tensor<float>& b) {
    return a.shape() == b.shape() && std::equal(a.span().begin(), a.span().end(), b.span().begin());
}

}  // namespace

TEST_CASE("sequential: a layer applying the following ReLU itself gives the layers' own results, bit for bit") {
    for (auto* build : {&mixed_network, &ending_in_relu}) {
        sequential<float> net = build();
        const auto x = random_tensor<float>(net.input_item().prepend(3), 5);
        const auto expected = layer_by_layer(net, x);
        // The ReLUs cut: some outputs of each convolution are negative.
        const auto& first_conv = expected[1];
        CHECK(std::any_of(first_conv.span().begin(), first_conv.span().end(), [](float v) { return v < 0; }));

        inference_buffers<float> buffers;
        tensor<float> out;
        net.infer(x, out, buffers);
        CHECK(same(out, expected.back()));
        net.infer(x, out, buffers);  // again, with the buffers' sizes left by the first call
        CHECK(same(out, expected.back()));

        training_trace<float> trace;
        rng masks(1);
        CHECK(same(net.forward_train(x, trace, masks), expected.back()));
    }
}

TEST_CASE("sequential: gradients with fused ReLUs equal those of the layers run one by one") {
    for (auto* build : {&mixed_network, &strided_network}) {
        sequential<float> net = build();
        const auto x = random_tensor<float>(net.input_item().prepend(3), 6);
        const auto grad_logits = random_tensor<float>(net.output_item().prepend(3), 7);

        training_trace<float> trace;
        rng masks(1);
        net.forward_train(x, trace, masks);
        net.zero_gradients();
        net.backward(trace, grad_logits);
        const std::vector<float> fused(net.gradients().begin(), net.gradients().end());

        // By hand: every activation stored, every layer's own backward.
        const auto activations = layer_by_layer(net, x);
        net.zero_gradients();
        tensor<float> grad = grad_logits, grad_in, cache;
        workspace<float> scratch;
        for (int i = net.size() - 1; i >= 0; --i) {
            backward_context<float> ctx{scratch, i > 0, true};
            const auto at = static_cast<std::size_t>(i);
            net.at(i).backward(activations[at], activations[at + 1], grad, grad_in, cache, ctx);
            std::swap(grad, grad_in);
        }
        const std::vector<float> by_hand(net.gradients().begin(), net.gradients().end());
        CHECK(fused == by_hand);
    }
}
