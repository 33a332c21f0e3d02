// Magnitude pruning (Zhang et al., Tables 3-4): the right number of weights become
// zero, they are the smallest ones, biases stay, and ties go by buffer position.
#include "nnmark/attacks/prune.hpp"

#include "../support/errors.hpp"
#include "../support/parameters.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

using namespace nnmark;

namespace prune_test {

// The tiny net with random weights and small non-zero biases: a pruner that looked at
// biases would take them first.
sequential<float> net_with_biases() {
    auto net = testing::make_tiny_net<float>();
    net.initialize(3);
    for (const auto& p : net.named_parameters())
        if (p.spec.name == "bias") std::ranges::fill(p.value, 1e-6f);
    return net;
}

index_t zeros(std::span<const float> values) { return std::ranges::count(values, 0.0f); }

// Largest |w| among weights that were pruned and smallest among those kept, over the
// weight tensors of `before` / `after`.
std::pair<float, float> pruned_and_kept_bounds(const sequential<float>& before, const sequential<float>& after,
                                               const std::string& only = "") {
    float largest_pruned = 0, smallest_kept = INFINITY;
    const auto a = after.named_parameters();
    for (const auto& p : before.named_parameters()) {
        if (p.spec.name != "weight" || (!only.empty() && p.name != only)) continue;
        const auto& q = *std::ranges::find(a, p.name, &named_parameter<const float>::name);
        for (std::size_t i = 0; i < p.value.size(); ++i) {
            if (q.value[i] == 0.0f) largest_pruned = std::max(largest_pruned, std::abs(p.value[i]));
            else smallest_kept = std::min(smallest_kept, std::abs(p.value[i]));
        }
    }
    return {largest_pruned, smallest_kept};
}

}  // namespace prune_test

TEST_CASE("prune: layer scope zeroes the smallest half of every weight tensor and no bias") {
    using namespace prune_test;
    const auto original = net_with_biases();
    auto net = net_with_biases();
    const prune_result r = prune_by_magnitude(net, 0.5, prune_scope::layer);
    index_t weights = 0;
    for (const auto& p : net.named_parameters()) {
        CAPTURE(p.name);
        if (p.spec.name == "weight") {
            CHECK(zeros(p.value) == std::llround(0.5 * static_cast<double>(p.value.size())));
            weights += static_cast<index_t>(p.value.size());
            const auto [pruned, kept] = pruned_and_kept_bounds(original, net, p.name);
            CHECK(pruned <= kept);
        } else {
            CHECK(testing::bit_identical(testing::parameter_values(net, p.name), testing::parameter_values(original, p.name)));
        }
    }
    CHECK(r.weights == weights);
    CHECK(r.pruned == 36 / 2 + 576 / 2 + 64 / 2);  // conv 4x1x3x3, dense 16x36, dense 4x16
}

TEST_CASE("prune: global scope zeroes the smallest weights over all layers at the rate") {
    using namespace prune_test;
    const auto original = net_with_biases();
    for (double rate : {0.3, 0.8}) {
        CAPTURE(rate);
        auto net = net_with_biases();
        const prune_result r = prune_by_magnitude(net, rate, prune_scope::global);
        index_t zeroed = 0;
        for (const auto& p : net.named_parameters())
            if (p.spec.name == "weight") zeroed += zeros(p.value);
            else CHECK(zeros(p.value) == 0);
        CHECK(zeroed == std::llround(rate * static_cast<double>(r.weights)));
        CHECK(r.pruned == zeroed);
        const auto [pruned, kept] = pruned_and_kept_bounds(original, net);
        CHECK(pruned <= kept);
    }
}

TEST_CASE("prune: ties go to the weight earlier in the buffer, so the result is deterministic") {
    auto net = testing::make_tiny_net<float>();
    for (const auto& p : net.named_parameters()) std::ranges::fill(p.value, 0.5f);
    prune_by_magnitude(net, 0.25, prune_scope::layer);
    for (const auto& p : net.named_parameters()) {
        if (p.spec.name != "weight") continue;
        const auto cut = static_cast<std::size_t>(std::llround(0.25 * static_cast<double>(p.value.size())));
        CAPTURE(p.name);
        CHECK(std::all_of(p.value.begin(), p.value.begin() + static_cast<std::ptrdiff_t>(cut), [](float w) { return w == 0; }));
        CHECK(std::all_of(p.value.begin() + static_cast<std::ptrdiff_t>(cut), p.value.end(), [](float w) { return w == 0.5f; }));
    }
    // Global: the first quarter of the 676 weights in buffer order, i.e. the conv kernel
    // (36) and the first 169 - 36 of the first dense kernel.
    auto global = testing::make_tiny_net<float>();
    for (const auto& p : global.named_parameters()) std::ranges::fill(p.value, 0.5f);
    const prune_result r = prune_by_magnitude(global, 0.25, prune_scope::global);
    const auto conv = testing::parameter_values(global, "0.weight");
    const auto dense = testing::parameter_values(global, "4.weight");
    CHECK(prune_test::zeros(conv) == 36);
    CHECK(prune_test::zeros(dense) == r.pruned - 36);
    CHECK(std::all_of(dense.begin(), dense.begin() + (r.pruned - 36), [](float w) { return w == 0; }));
    CHECK(prune_test::zeros(testing::parameter_values(global, "7.weight")) == 0);
}

TEST_CASE("prune: rate 0 changes nothing, rate 1 zeroes every weight, other rates are refused") {
    using namespace prune_test;
    const auto original = net_with_biases();
    auto net = net_with_biases();
    CHECK(prune_by_magnitude(net, 0.0, prune_scope::global).pruned == 0);
    CHECK(testing::bit_identical(testing::snapshot(net), testing::snapshot(original)));
    const prune_result all = prune_by_magnitude(net, 1.0, prune_scope::layer);
    CHECK(all.pruned == all.weights);
    for (double bad : {-0.1, 1.5, double(NAN)}) {
        CAPTURE(bad);
        CHECK(testing::contains(testing::error_message<argument_error>([&] { prune_by_magnitude(net, bad, prune_scope::layer); }),
                                "rate must be in [0, 1]"));
    }
    CHECK(parse_prune_scope("global") == prune_scope::global);
    CHECK_THROWS_AS(parse_prune_scope("row"), argument_error);
}
