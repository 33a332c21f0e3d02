// at_precision: the bf16 and int8 forms of a float model answer as the float model
// does, up to their rounding.
#include "nnmark/model/low_precision.hpp"

#include "nnmark/layers/conv2d.hpp"
#include "nnmark/layers/dense.hpp"
#include "nnmark/layers/flatten.hpp"
#include "nnmark/layers/maxpool2d.hpp"
#include "nnmark/layers/relu.hpp"
#include "nnmark/layers/softmax_cross_entropy.hpp"

#include "../support/threads.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace nnmark;

namespace {

// Odd sizes everywhere: a one-channel first convolution (a window of 9 values: it stays
// float), a stride of 2 (the gathered windows) on 9 channels (padded to the dot group),
// "same" padding at stride 1 (windows read in place from the bordered image), channels
// that cut the 8-row tile, a maxpool and a flatten between, dense layers with and
// without a ReLU; He weights and nonzero biases.
sequential<float> small_network() {
    sequential<float> net(shape{1, 15, 13});
    net.emplace<conv2d>(9, 3, 1, padding::same);
    net.emplace<relu>();
    net.emplace<conv2d>(13, 3, 2);
    net.emplace<relu>();
    net.emplace<conv2d>(6, 3, 1, padding::same);
    net.emplace<relu>();
    net.emplace<maxpool2d>(2);
    net.emplace<flatten>();
    net.emplace<dense>(37);
    net.emplace<relu>();
    net.emplace<dense>(10);
    net.initialize(7);
    rng random(8);
    for (auto& p : net.named_parameters())
        if (p.spec.name == "bias")
            for (float& b : p.value) b = static_cast<float>(0.1 * random.normal());
    return net;
}

// Pixels in [0, 1], as the models of nnmark take them.
tensor<float> images(index_t count, std::uint64_t seed) {
    rng random(seed);
    tensor<float> x(shape{count, 1, 15, 13});
    for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(random.uniform());
    return x;
}

// The largest logit difference relative to the largest float logit, and the share of
// images whose top class agrees.
struct agreement {
    double relative_error = 0, top1 = 0;
};

agreement compare(const tensor<float>& reference, const tensor<float>& low) {
    REQUIRE(reference.shape() == low.shape());
    double largest = 0, error = 0;
    for (index_t i = 0; i < reference.size(); ++i) {
        largest = std::max(largest, std::abs(static_cast<double>(reference[i])));
        error = std::max(error, std::abs(static_cast<double>(reference[i]) - low[i]));
    }
    const std::vector<int> a = argmax_rows(reference), b = argmax_rows(low);
    double same = 0;
    for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
    return {error / largest, same / static_cast<double>(a.size())};
}

}  // namespace

TEST_CASE("bf16 and int8 models answer as the float model, up to their rounding") {
    const sequential<float> net = small_network();
    const tensor<float> calibration = images(300, 1), test = images(400, 2);
    const tensor<float> reference = net.predict(test);
    SUBCASE("bf16: 8 significant bits per value, sums in float") {
        const agreement a = compare(reference, at_precision(net, precision::bf16, {}).predict(test));
        CHECK(a.relative_error < 0.02);
        CHECK(a.top1 >= 0.97);
    }
    SUBCASE("int8: calibrated input codes, per-channel weights") {
        const agreement a = compare(reference, at_precision(net, precision::int8, calibration).predict(test));
        CHECK(a.relative_error < 0.06);
        CHECK(a.top1 >= 0.95);
    }
    SUBCASE("fp32: a copy, bit for bit") {
        const tensor<float> copy = at_precision(net, precision::fp32, {}).predict(test);
        CHECK(std::equal(copy.data(), copy.data() + copy.size(), reference.data()));
    }
}

TEST_CASE("a lower-precision model gives each image the same logits alone, in a batch, on any thread count") {
    testing::thread_count_guard guard;
    const sequential<float> net = small_network();
    const tensor<float> test = images(64, 3);
    for (precision p : {precision::bf16, precision::int8}) {
        CAPTURE(precision_name(p));
        const sequential<float> low = at_precision(net, p, images(100, 4));
        set_threads(1);
        const tensor<float> one = low.predict(test);
        set_threads(2);
        const tensor<float> two = low.predict(test);
        CHECK(std::equal(one.data(), one.data() + one.size(), two.data()));
        tensor<float> alone(shape{1, 1, 15, 13});
        std::copy_n(test.item(5).data(), alone.size(), alone.data());
        const tensor<float> single = low.predict(alone);
        CHECK(std::equal(single.data(), single.data() + single.size(), one.item(5).data()));
    }
}

TEST_CASE("a lower-precision model refuses training, and int8 refuses to run uncalibrated") {
    const sequential<float> net = small_network();
    CHECK_THROWS_AS((void)at_precision(net, precision::int8, {}), argument_error);
    sequential<float> low = at_precision(net, precision::bf16, {});
    CHECK(low.at(0).kind() == "conv2d");  // a window of 9 values: float
    CHECK(low.at(1).kind() == "relu");
    CHECK(low.at(2).kind() == "conv2d_bf16");
    CHECK(low.at(4).kind() == "conv2d_bf16");
    CHECK(low.at(8).kind() == "dense_bf16");
    training_trace<float> trace;
    rng random(1);
    const tensor<float>& logits = low.forward_train(images(2, 5), trace, random);
    CHECK_THROWS_AS(low.backward(trace, logits), error);
}

TEST_CASE("post-training calibration observes every layer's input range") {
    const sequential<float> net = small_network();
    const tensor<float> x = images(50, 6);
    const std::vector<value_range> ranges = observe_input_ranges(net, x, 16);
    REQUIRE(ranges.size() == static_cast<std::size_t>(net.size()));
    CHECK(ranges[0].lo == *std::min_element(x.data(), x.data() + x.size()));
    CHECK(ranges[0].hi == *std::max_element(x.data(), x.data() + x.size()));
    CHECK(ranges[2].lo == 0.0f);  // after a ReLU
    CHECK(ranges[2].hi > 0.0f);
}
