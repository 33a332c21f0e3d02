#include "nnmark/layers/relu.hpp"

#include "../support/gradient_check.hpp"
#include "../support/tensors.hpp"
#include "../support/threads.hpp"

#include <doctest/doctest.h>

using namespace nnmark;

TEST_CASE("relu: forward matches the definition, backward passes the gradient where x > 0") {
    relu<float> r;
    r.configure(shape{5});
    tensor<float> x(shape{1, 5});
    const float values[] = {-2.f, -0.f, 0.5f, 3.f, -1e-30f};
    for (int i = 0; i < 5; ++i) x[i] = values[i];
    workspace<float> ws;
    tensor<float> y;
    r.infer(x, y, ws);
    for (int i = 0; i < 5; ++i) CHECK(y[i] == (values[i] > 0 ? values[i] : 0.f));
    tensor<float> dy(shape{1, 5}, 2.f), dx, cache;
    backward_context<float> ctx{ws};
    r.backward(x, y, dy, dx, cache, ctx);
    for (int i = 0; i < 5; ++i) CHECK(dx[i] == (values[i] > 0 ? 2.f : 0.f));
}

TEST_CASE("relu: numerical gradient") {
    testing::check_layer_gradients([] { return std::make_unique<relu<double>>(); }, shape{2, 3, 4});
}

TEST_CASE("relu: rejects an input of the wrong shape") {
    relu<float> r;
    r.configure(shape{2, 3});
    tensor<float> x(shape{4, 3, 2}), y;
    workspace<float> ws;
    CHECK_THROWS_AS(r.infer(x, y, ws), shape_error);
}

TEST_CASE("relu: a tensor split over two threads gives the definition in every chunk") {
    testing::thread_count_guard guard;
    set_threads(2);
    relu<float> r;
    // Odd sizes, and 5 x 7 x 33 x 311 elements, enough for two threads: the chunk
    // border is not a multiple of the SIMD width.
    r.configure(shape{7, 33, 311});
    const tensor<float> x = testing::random_tensor<float>(shape{5, 7, 33, 311}, 3);
    const tensor<float> dy = testing::random_tensor<float>(x.shape(), 4);
    workspace<float> ws;
    tensor<float> y, dx, cache;
    r.infer(x, y, ws);
    backward_context<float> ctx{ws};
    r.backward(x, y, dy, dx, cache, ctx);
    for (index_t i = 0; i < x.size(); ++i) {
        REQUIRE(y[i] == (x[i] > 0.f ? x[i] : 0.f));
        REQUIRE(dx[i] == (x[i] > 0.f ? dy[i] : 0.f));
    }
}
