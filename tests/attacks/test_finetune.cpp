// Fine-tuning attacks (Adi et al., USENIX Security 2018): FTLL moves only the last
// layer and leaves the others bit-identical, FTAL moves all, RT* start the last layer
// again from the seed.
#include "nnmark/attacks/finetune.hpp"

#include "../support/errors.hpp"
#include "../support/parameters.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace nnmark;

namespace finetune_test {

constexpr int last = 7;                  // the tiny net's output dense layer
constexpr int parametric[] = {0, 4, 7};  // its layers with parameters

training_recipe short_recipe(double lr = 0.01) {
    training_recipe r = finetune_recipe();
    r.epochs = 1;
    r.batch = 16;
    r.learning_rate = lr;
    r.seed = 21;
    return r;
}

sequential<float> trained_net() {
    auto net = testing::make_tiny_net<float>();
    net.initialize(5);
    return net;
}

// The net after fine-tuning in `mode` on 64 tiny images with `recipe`.
sequential<float> attacked(finetune_mode mode, const training_recipe& recipe) {
    auto net = trained_net();
    progress_line quiet(stderr, 5.0, true);
    finetune(net, testing::make_quadrant_dataset(64, 9), mode, recipe, quiet);
    for (int i = 0; i < net.size(); ++i) CHECK_FALSE(net.is_frozen(i));  // unfrozen on return
    return net;
}

bool layer_unchanged(const sequential<float>& a, const sequential<float>& b, int layer) {
    return testing::bit_identical(testing::layer_values(a, layer), testing::layer_values(b, layer));
}

}  // namespace finetune_test

TEST_CASE("finetune: FTLL moves the last layer only; the frozen layers stay bit-identical") {
    using namespace finetune_test;
    const auto original = trained_net();
    const auto net = attacked(finetune_mode::ftll, short_recipe());
    CHECK(layer_unchanged(net, original, 0));
    CHECK(layer_unchanged(net, original, 4));
    CHECK_FALSE(layer_unchanged(net, original, last));
}

TEST_CASE("finetune: FTAL moves every layer with parameters") {
    using namespace finetune_test;
    const auto original = trained_net();
    const auto net = attacked(finetune_mode::ftal, short_recipe());
    for (int layer : parametric) {
        CAPTURE(layer);
        CHECK_FALSE(layer_unchanged(net, original, layer));
    }
}

TEST_CASE("finetune: RTLL and RTAL re-initialise the last layer from the seed") {
    using namespace finetune_test;
    // A learning rate of 1e-9 leaves training no room to move the weights: what remains
    // is the re-initialisation, which must be the documented fresh draw from the recipe's
    // seed: He normal weights, N(0, 2 / fan_in) in element order from rng(seed) (the last
    // layer is dense 16 -> 4: fan_in 16, weights [4 x 16]), then zero biases.
    const training_recipe still = short_recipe(1e-9);
    constexpr int outputs = 4, fan_in = 16;
    rng draws(still.seed);
    std::vector<float> reference;
    for (int i = 0; i < outputs * fan_in; ++i)
        reference.push_back(static_cast<float>(draws.normal(0.0, std::sqrt(2.0 / fan_in))));
    reference.resize(reference.size() + outputs, 0.0f);
    REQUIRE(testing::layer_values(trained_net(), last).size() == reference.size());
    REQUIRE_FALSE(testing::bit_identical(testing::layer_values(trained_net(), last), reference));
    for (finetune_mode mode : {finetune_mode::rtll, finetune_mode::rtal}) {
        CAPTURE(to_string(mode));
        const auto net = attacked(mode, still);
        const auto values = testing::layer_values(net, last);
        REQUIRE(values.size() == reference.size());
        // Four steps (64 images, batch 16) at 1e-9 move a weight by far less than 1e-6.
        for (std::size_t i = 0; i < values.size(); ++i) CHECK(values[i] == doctest::Approx(reference[i]).epsilon(1e-6));
    }
    // RTLL trains the new layer alone; RTAL trains the rest too.
    const auto original = trained_net();
    CHECK(layer_unchanged(attacked(finetune_mode::rtll, short_recipe()), original, 4));
    CHECK_FALSE(layer_unchanged(attacked(finetune_mode::rtal, short_recipe()), original, 4));
}

TEST_CASE("finetune: mode names, and a model without parameters") {
    for (const char* name : {"ftll", "ftal", "rtll", "rtal"}) CHECK(to_string(parse_finetune_mode(name)) == name);
    CHECK(testing::contains(testing::error_message<argument_error>([] { parse_finetune_mode("ft"); }), "ftll, ftal"));
    sequential<float> empty(shape{1, 8, 8});
    empty.emplace<relu>();
    CHECK_THROWS_AS(last_parametric_layer(empty), argument_error);
}
