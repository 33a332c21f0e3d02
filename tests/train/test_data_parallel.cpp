#include "nnmark/train/data_parallel.hpp"

#include "nnmark/layers/batchnorm.hpp"
#include "nnmark/layers/softmax_cross_entropy.hpp"
#include "nnmark/train/trainer.hpp"
#include "../support/tensors.hpp"
#include "../support/threads.hpp"
#include "../support/tiny_data.hpp"
#include "../support/user_layer.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

using namespace nnmark;

namespace data_parallel_tests {

// A residual conv net with a layer registered outside the library, which the replicas
// can only be made of through the registry: conv, relu, residual{conv, relu, dropout,
// conv}, the user's channel scale, global average, dense(classes).
template <class T>
sequential<T> make_user_net(const shape& input_item, int classes) {
    testing::register_test_layer<T>();
    sequential<T> net(input_item);
    net.template emplace<conv2d>(4, 3, 1, padding::same);
    net.template emplace<relu>();
    auto block = std::make_unique<residual<T>>();
    block->template emplace<conv2d>(4, 3, 1, padding::same);
    block->template emplace<relu>();
    block->template emplace<dropout>(0.25);
    block->template emplace<conv2d>(4, 3, 1, padding::same);
    net.add(std::move(block));
    net.add(std::make_unique<testing::channel_scale<T>>(0.75));
    net.template emplace<global_avgpool2d>();
    net.template emplace<dense>(classes);
    net.initialize(3);
    return net;
}

// A conv net with dropout, so that the shards must draw the whole batch's masks.
sequential<double> make_net() {
    sequential<double> net = testing::make_small_image_net<double>(shape{2, 9, 9}, 5, 0.5);
    net.initialize(3);
    return net;
}

struct step_result {
    std::vector<double> logits, gradients;
    std::uint64_t next_draw = 0;  // of the masks' rng after the forward pass
    int shards = 0;
};

// One forward and backward pass of `passes` on a batch of `batch` random images.
step_result run_step(sequential<double>& net, data_parallel<double>& passes, index_t batch) {
    const tensor<double> x = testing::random_tensor<double>(net.input_item().prepend(batch), 7);
    std::vector<int> labels;
    for (index_t i = 0; i < batch; ++i) labels.push_back(static_cast<int>(i % 5));
    rng masks(11);
    const tensor<double>& logits = passes.forward(x, masks);
    tensor<double> grad_logits;
    softmax_cross_entropy(logits, labels, &grad_logits);
    passes.backward(grad_logits);
    return {{logits.span().begin(), logits.span().end()},
            {net.gradients().begin(), net.gradients().end()},
            masks.next_u64(),
            passes.shards()};
}

// Equal up to the rounding of sums taken in another order.
void check_close(const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == doctest::Approx(b[i]).epsilon(1e-12).scale(1));
}

}  // namespace data_parallel_tests

using namespace data_parallel_tests;

TEST_CASE("data_parallel: any split of the batch gives the whole batch's logits, gradients and masks") {
    for (int shards : {2, 3}) {
        CAPTURE(shards);
        sequential<double> whole_net = make_net(), net = make_net();
        data_parallel<double> whole(whole_net, 1), split(net, shards);
        for (int step = 0; step < 2; ++step) {
            CAPTURE(step);
            const step_result expected = run_step(whole_net, whole, 53);
            const step_result got = run_step(net, split, 53);  // 53 = 26 + 27 = 17 + 18 + 18
            REQUIRE(expected.shards == 1);
            REQUIRE(got.shards == shards);
            check_close(got.logits, expected.logits);
            check_close(got.gradients, expected.gradients);
            CHECK(got.next_draw == expected.next_draw);
            // The next step sees the parameters moved (the replicas copy them) and its
            // gradients overwrite these rather than add to them.
            for (sequential<double>* m : {&whole_net, &net})
                for (std::size_t i = 0; i < m->parameters().size(); ++i) m->parameters()[i] -= 0.1 * m->gradients()[i];
        }
    }
}

TEST_CASE("data_parallel: the same split twice is bit-identical") {
    sequential<double> net = make_net();
    data_parallel<double> passes(net, 3);
    const step_result first = run_step(net, passes, 48);
    const step_result second = run_step(net, passes, 48);
    REQUIRE(first.shards == 3);
    CHECK(std::memcmp(first.gradients.data(), second.gradients.data(), first.gradients.size() * sizeof(double)) == 0);
    CHECK(std::memcmp(first.logits.data(), second.logits.data(), first.logits.size() * sizeof(double)) == 0);
}

TEST_CASE("data_parallel: frozen layers get no gradient from any shard") {
    sequential<double> net = make_net();
    net.set_frozen(0, true);  // the convolution
    data_parallel<double> passes(net, 3);
    REQUIRE(run_step(net, passes, 48).shards == 3);
    for (const auto& p : net.named_parameters()) {
        CAPTURE(p.name);
        const bool any_nonzero = std::ranges::any_of(p.grad, [](double g) { return g != 0; });
        CHECK(any_nonzero == (p.layer != 0));
    }
}

TEST_CASE("data_parallel: small batches and batch normalization run as one shard") {
    sequential<double> net = make_net();
    data_parallel<double> passes(net, 3);
    CHECK(run_step(net, passes, 2 * data_parallel<double>::min_items_per_shard - 1).shards == 1);
    CHECK(run_step(net, passes, 2 * data_parallel<double>::min_items_per_shard).shards == 2);

    sequential<double> normalized(shape{2, 9, 9});
    normalized.emplace<batchnorm>(0.1, 1e-5);
    normalized.emplace<flatten>();
    normalized.emplace<dense>(5);
    normalized.initialize(1);
    REQUIRE(normalized.couples_batch_items());
    data_parallel<double> one(normalized, 3);
    CHECK(run_step(normalized, one, 60).shards == 1);
}

TEST_CASE("data_parallel: bad input is an error before any thread starts") {
    sequential<double> net = make_net();
    data_parallel<double> passes(net, 2);
    CHECK_THROWS_AS(passes.backward(tensor<double>(shape{40, 5})), error);
    rng masks(1);
    CHECK_THROWS_AS(passes.forward(tensor<double>(shape{40, 1, 9, 9}), masks), shape_error);
    passes.forward(tensor<double>(shape{40, 2, 9, 9}), masks);
    CHECK_THROWS_AS(passes.backward(tensor<double>(shape{40, 4})), shape_error);
    CHECK_THROWS_AS(data_parallel<double>(net, -1), argument_error);
}

TEST_CASE("data_parallel: a residual net with a user's layer splits like any other") {
    sequential<double> whole_net = make_user_net<double>(shape{2, 9, 9}, 5), net = make_user_net<double>(shape{2, 9, 9}, 5);
    data_parallel<double> whole(whole_net, 1), split(net, 2);
    const step_result expected = run_step(whole_net, whole, 40);
    const step_result got = run_step(net, split, 40);
    REQUIRE(got.shards == 2);
    check_close(got.logits, expected.logits);
    check_close(got.gradients, expected.gradients);
}

TEST_CASE("data_parallel: training a user's layer on two threads twice gives bit-identical weights") {
    testing::thread_count_guard guard;
    set_threads(2);
    const dataset data = testing::make_quadrant_dataset(96, 4);
    auto train = [&] {
        sequential<float> net = make_user_net<float>(shape{1, 8, 8}, 4);
        training_recipe recipe;
        recipe.epochs = 2;
        recipe.batch = 32;  // two shards of 16
        trainer<float> t(net, recipe);
        progress_line quiet(stderr, 5.0, true);
        t.fit(data, nullptr, quiet);
        return std::vector<float>(net.parameters().begin(), net.parameters().end());
    };
    const std::vector<float> first = train(), second = train();
    const sequential<float> untrained = make_user_net<float>(shape{1, 8, 8}, 4);
    CHECK_FALSE(std::ranges::equal(first, untrained.parameters()));
    CHECK(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0);
}
