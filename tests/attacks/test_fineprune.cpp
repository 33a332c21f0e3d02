// Fine-pruning (Liu et al., RAID 2018): the channels of the last conv layer that clean
// data leaves dormant are found, zeroed, and stay zero through the fine-tuning.
#include "nnmark/attacks/fineprune.hpp"
#include "nnmark/attacks/finetune.hpp"

#include "../support/errors.hpp"
#include "../support/parameters.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace nnmark;

namespace fineprune_test {

// The tiny net (conv 4 channels at layer 0, ReLU at 1) with biases that make channels 1
// and 3 dormant (a bias of -100 keeps them below zero for any input in [0, 1]) and
// channels 0 and 2 active (+1 and +5).
sequential<float> net_with_dormant_channels() {
    auto net = testing::make_tiny_net<float>();
    net.initialize(4);
    for (const auto& p : net.named_parameters())
        if (p.name == "0.bias") std::ranges::copy(std::vector<float>{1.0f, -100.0f, 5.0f, -100.0f}, p.value.begin());
    return net;
}

// Filter (9 weights) and bias of channel c of the conv layer.
std::pair<std::vector<float>, float> channel(const sequential<float>& net, int c) {
    const auto w = testing::parameter_values(net, "0.weight");
    return {{w.begin() + 9 * c, w.begin() + 9 * (c + 1)}, testing::parameter_values(net, "0.bias")[static_cast<std::size_t>(c)]};
}

}  // namespace fineprune_test

TEST_CASE("fine-pruning: mean activations rank the dormant channels first") {
    using namespace fineprune_test;
    const auto net = net_with_dormant_channels();
    REQUIRE(last_conv_layer(net) == 0);
    REQUIRE(activation_of(net, 0) == 1);
    const auto mean = mean_channel_activation(net, 1, testing::make_quadrant_dataset(40, 2));
    REQUIRE(mean.size() == 4);
    CHECK(mean[1] == 0.0);
    CHECK(mean[3] == 0.0);
    CHECK(mean[0] > 0.0);
    CHECK(mean[2] > mean[0]);  // bias 5 against bias 1: far more than a filter's response
    CHECK(most_dormant(mean, 0.5) == std::vector<int>{1, 3});  // tie: lower index first
    CHECK(most_dormant(mean, 0.75) == std::vector<int>{1, 3, 0});
    CHECK(most_dormant(mean, 0.0).empty());
    CHECK_THROWS_AS(most_dormant(mean, 1.5), argument_error);
}

TEST_CASE("fine-pruning: the chosen channels are zero after fine-tuning, the others were trained") {
    using namespace fineprune_test;
    const auto original = net_with_dormant_channels();
    auto net = net_with_dormant_channels();
    training_recipe recipe = finetune_recipe();
    recipe.epochs = 2;
    recipe.batch = 16;
    recipe.learning_rate = 0.05;
    progress_line quiet(stderr, 5.0, true);
    const fineprune_result r = fine_prune(net, testing::make_quadrant_dataset(96, 6), 0.5, recipe, quiet);
    CHECK(r.layer == 0);
    CHECK(r.channels == std::vector<int>{1, 3});
    CHECK(r.epochs.size() == 2);
    for (int c : {1, 3}) {
        CAPTURE(c);
        const auto [filter, bias] = channel(net, c);
        CHECK(std::ranges::all_of(filter, [](float w) { return w == 0.0f; }));
        CHECK(bias == 0.0f);
    }
    for (int c : {0, 2}) {
        CAPTURE(c);
        CHECK_FALSE(testing::bit_identical(channel(net, c).first, channel(original, c).first));
    }
    for (int layer : {4, 7}) CHECK_FALSE(testing::bit_identical(testing::layer_values(net, layer), testing::layer_values(original, layer)));
}

TEST_CASE("fine-pruning: a model without a conv layer is refused") {
    sequential<float> mlp(shape{1, 8, 8});
    mlp.emplace<flatten>();
    mlp.emplace<dense>(4);
    CHECK(testing::contains(testing::error_message<argument_error>([&] { last_conv_layer(mlp); }), "no conv2d layer"));
}
