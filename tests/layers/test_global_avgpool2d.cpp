#include "nnmark/layers/global_avgpool2d.hpp"

#include "../support/gradient_check.hpp"
#include "../support/tensors.hpp"
#include "../support/threads.hpp"

#include <doctest/doctest.h>

using namespace nnmark;

TEST_CASE_TEMPLATE("global_avgpool2d: each output is its plane's mean, backward spreads dy over the plane", T, float,
                   double) {
    global_avgpool2d<T> pool;
    CHECK(pool.configure(shape{3, 2, 5}) == shape{3});
    const tensor<T> x = testing::random_tensor<T>(shape{2, 3, 2, 5}, 4);
    tensor<T> y;
    workspace<T> ws;
    pool.infer(x, y, ws);
    REQUIRE(y.shape() == shape{2, 3});
    for (index_t n = 0; n < 2; ++n)
        for (index_t c = 0; c < 3; ++c) {
            double sum = 0;
            for (index_t i = 0; i < 2; ++i)
                for (index_t j = 0; j < 5; ++j) sum += static_cast<double>(x.at(n, c, i, j));
            CHECK(static_cast<double>(y[n * 3 + c]) == doctest::Approx(sum / 10));
        }

    const tensor<T> dy = testing::random_tensor<T>(y.shape(), 5);
    tensor<T> dx, cache;
    backward_context<T> ctx{ws};
    pool.backward(x, y, dy, dx, cache, ctx);
    REQUIRE(dx.shape() == x.shape());
    for (index_t n = 0; n < 2; ++n)
        for (index_t c = 0; c < 3; ++c)
            for (index_t i = 0; i < 2; ++i)
                for (index_t j = 0; j < 5; ++j)
                    CHECK(static_cast<double>(dx.at(n, c, i, j)) == doctest::Approx(static_cast<double>(dy[n * 3 + c]) / 10));
}

TEST_CASE("global_avgpool2d: numerical gradient") {
    testing::check_layer_gradients([] { return std::make_unique<global_avgpool2d<double>>(); }, shape{4, 3, 5});
}

TEST_CASE("global_avgpool2d: two threads give the one-thread results bit for bit") {
    testing::thread_count_guard guard;
    const shape item{16, 32, 32};  // 8 x 16 x 1024 values: enough for two threads
    const tensor<float> x = testing::random_tensor<float>(item.prepend(8), 6);
    const tensor<float> dy = testing::random_tensor<float>(shape{8, 16}, 7);
    auto run = [&](int threads) {
        set_threads(threads);
        global_avgpool2d<float> pool;
        pool.configure(item);
        workspace<float> ws;
        tensor<float> y, dx, cache;
        pool.infer(x, y, ws);
        backward_context<float> ctx{ws};
        pool.backward(x, y, dy, dx, cache, ctx);
        return std::pair{std::vector<float>(y.span().begin(), y.span().end()),
                         std::vector<float>(dx.span().begin(), dx.span().end())};
    };
    CHECK(run(1) == run(2));
}

TEST_CASE("global_avgpool2d: kind, config and inputs it cannot take") {
    global_avgpool2d<float> pool;
    CHECK(pool.kind() == "global_avgpool2d");
    CHECK(pool.config().empty());
    CHECK(pool.param_specs().empty());
    CHECK_THROWS_AS(pool.configure(shape{10}), shape_error);
    CHECK_THROWS_AS(pool.configure(shape{0, 3, 3}), shape_error);
    pool.configure(shape{2, 3, 3});
    tensor<float> y;
    workspace<float> ws;
    CHECK_THROWS_AS(pool.infer(tensor<float>(shape{1, 2, 3, 4}), y, ws), shape_error);
}
