#include "nnmark/layers/dropout.hpp"
#include "nnmark/model/sequential.hpp"

#include "../support/gradient_check.hpp"
#include "../support/layers.hpp"
#include "../support/tensors.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

using namespace nnmark;
using testing::random_tensor;

namespace {

// The mask a training pass used: true where the element was kept.
template <class T>
std::vector<bool> kept(const tensor<T>& cache) {
    std::vector<bool> mask;
    for (index_t i = 0; i < cache.size(); ++i) mask.push_back(cache[i] != T(0));
    return mask;
}

}  // namespace

TEST_CASE_TEMPLATE("dropout: infer is the identity", T, float, double) {
    rng random(3);
    for (index_t batch : {1, 3})
        for (const shape& item : {shape{5}, shape{3, 7, 9}, shape{1, 1, 1}}) {
            dropout<T> d(0.5);
            d.configure(item);
            const tensor<T> x = random_tensor<T>(item.prepend(batch), random);
            tensor<T> y;
            workspace<T> ws;
            d.infer(x, y, ws);
            REQUIRE(y.shape() == x.shape());
            for (index_t i = 0; i < x.size(); ++i) CHECK(y[i] == x[i]);
        }
}

TEST_CASE_TEMPLATE("dropout: training keeps about 1 - rate of the elements, scaled exactly", T, float, double) {
    for (double rate : {0.1, 0.3, 0.5, 0.9}) {
        dropout<T> d(rate);
        d.configure(shape{10, 10, 10});
        rng data_random(5);
        const tensor<T> x = random_tensor<T>(shape{100, 10, 10, 10}, data_random);
        tensor<T> y, cache;
        workspace<T> ws;
        rng random(17);
        train_context<T> ctx{ws, random};
        d.forward_train(x, y, cache, ctx);

        const T scale = static_cast<T>(1.0 / (1.0 - rate));
        index_t kept_count = 0;
        for (index_t i = 0; i < x.size(); ++i) {
            if (cache[i] != T(0)) {
                ++kept_count;
                REQUIRE(y[i] == x[i] * scale);
            } else {
                REQUIRE(y[i] == T(0));
            }
        }
        // 1e5 draws: the standard deviation of the kept fraction is at most 0.0016.
        const double fraction = static_cast<double>(kept_count) / static_cast<double>(x.size());
        CHECK(std::abs(fraction - (1.0 - rate)) < 0.01);

        // Backward applies the same mask and scale to dL/dy.
        const tensor<T> dy = random_tensor<T>(x.shape(), data_random);
        tensor<T> dx;
        backward_context<T> bctx{ws};
        d.backward(x, y, dy, dx, cache, bctx);
        for (index_t i = 0; i < x.size(); ++i) REQUIRE(dx[i] == (cache[i] != T(0) ? dy[i] * scale : T(0)));
    }
}

TEST_CASE("dropout: rate 0 keeps everything in training") {
    dropout<float> d(0.0);
    d.configure(shape{7});
    rng random(1);
    const tensor<float> x = random_tensor<float>(shape{3, 7}, random);
    tensor<float> y, cache;
    workspace<float> ws;
    train_context<float> ctx{ws, random};
    d.forward_train(x, y, cache, ctx);
    for (index_t i = 0; i < x.size(); ++i) CHECK(y[i] == x[i]);
}

TEST_CASE("dropout: the same seed gives the same mask, the next step another") {
    auto make_model = [] {
        sequential<float> model(shape{64});
        model.emplace<dropout>(0.5);
        return model;
    };
    sequential<float> a = make_model();
    sequential<float> b = make_model();
    const tensor<float> x(shape{4, 64}, 1.f);
    training_trace<float> trace_a, trace_b;

    rng random_a(99), random_b(99);
    a.forward_train(x, trace_a, random_a);
    b.forward_train(x, trace_b, random_b);
    const std::vector<bool> first_step = kept(trace_a.caches[0]);
    CHECK(first_step == kept(trace_b.caches[0]));

    a.forward_train(x, trace_a, random_a);
    const std::vector<bool> second_step = kept(trace_a.caches[0]);
    CHECK(second_step != first_step);

    rng other_seed(100);
    b.forward_train(x, trace_b, other_seed);
    CHECK(kept(trace_b.caches[0]) != first_step);
}

TEST_CASE("dropout: an item's mask depends on its place in the batch, not on how the batch is split") {
    dropout<float> d(0.5);
    d.configure(shape{40});
    const tensor<float> x(shape{5, 40}, 1.f);
    workspace<float> ws;
    tensor<float> y, whole, part;
    rng random(8);
    train_context<float> all{ws, random};
    d.forward_train(x, y, whole, all);
    const std::vector<bool> whole_mask = kept(whole);
    // Items 2..4 on their own, told that they start at item 2.
    const tensor<float> tail(shape{3, 40}, 1.f);
    train_context<float> from_two{ws, random, 2};
    d.forward_train(tail, y, part, from_two);
    CHECK(kept(part) == std::vector<bool>(whole_mask.begin() + 80, whole_mask.end()));
    // Items get masks of their own.
    CHECK(std::vector<bool>(whole_mask.begin(), whole_mask.begin() + 40) !=
          std::vector<bool>(whole_mask.begin() + 40, whole_mask.begin() + 80));
}

TEST_CASE("dropout: numerical gradient (the reseeded rng gives the same mask every call)") {
    testing::check_layer_gradients([] { return std::make_unique<dropout<double>>(0.4); }, shape{3, 5, 5});
    testing::check_layer_gradients([] { return std::make_unique<dropout<double>>(0.2); }, shape{9});
}

TEST_CASE("dropout: kind, config and bad rates") {
    dropout<float> d(0.25);
    CHECK(d.kind() == "dropout");
    CHECK(d.config() == layer_config{{"rate", 0.25}});
    CHECK(d.param_specs().empty());

    CHECK_THROWS_AS(dropout<float>(1.0), argument_error);
    CHECK_THROWS_AS(dropout<float>(-0.1), argument_error);
    CHECK_THROWS_AS(dropout<float>(std::numeric_limits<double>::quiet_NaN()), argument_error);

    d.configure(shape{4});
    tensor<float> x(shape{2, 4}), y, dx, cache;
    workspace<float> ws;
    CHECK_THROWS_AS(d.infer(tensor<float>(shape{2, 5}), y, ws), shape_error);
    // Backward without the mask of a training pass is an error, not a silent zero.
    backward_context<float> bctx{ws};
    CHECK_THROWS_AS(d.backward(x, x, x, dx, cache, bctx), shape_error);
}
