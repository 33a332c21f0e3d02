#include "nnmark/layers/maxpool2d.hpp"

#include "../support/gradient_check.hpp"
#include "../support/layers.hpp"
#include "../support/tensors.hpp"
#include "../support/threads.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>

using namespace nnmark;
using testing::random_tensor;

namespace {

struct pool_geometry {
    index_t size, stride;
};

// The definition: for each window, the first maximum in row-major order, and backward
// adding dy at that position.
template <class T>
void reference_pool(const tensor<T>& x, index_t size, index_t stride, const tensor<T>& dy, tensor<T>& y,
                    tensor<T>& dx) {
    const index_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
    const index_t oh = (h - size) / stride + 1, ow = (w - size) / stride + 1;
    y = tensor<T>(shape{n, c, oh, ow});
    dx = tensor<T>(x.shape(), T(0));
    for (index_t b = 0; b < n; ++b)
        for (index_t ch = 0; ch < c; ++ch)
            for (index_t i = 0; i < oh; ++i)
                for (index_t j = 0; j < ow; ++j) {
                    index_t bi = i * stride, bj = j * stride;
                    for (index_t di = 0; di < size; ++di)
                        for (index_t dj = 0; dj < size; ++dj)
                            if (x.at(b, ch, i * stride + di, j * stride + dj) > x.at(b, ch, bi, bj)) {
                                bi = i * stride + di;
                                bj = j * stride + dj;
                            }
                    y.at(b, ch, i, j) = x.at(b, ch, bi, bj);
                    dx.at(b, ch, bi, bj) += dy.at(b, ch, i, j);
                }
}

}  // namespace

TEST_CASE_TEMPLATE("maxpool2d: forward and backward match the plain loops on odd sizes", T, float, double) {
    rng random(11);
    workspace<T> ws;
    const pool_geometry geometries[] = {{1, 1}, {2, 2}, {2, 1}, {3, 2}, {3, 3}, {2, 3}};
    int configurations = 0;
    for (index_t batch : {1, 3})
        for (index_t channels : {1, 3, 5})
            for (index_t h : {1, 3, 7, 9})
                for (index_t w : {1, 3, 7, 9})
                    for (const auto& g : geometries) {
                        if (g.size > h || g.size > w) continue;
                        maxpool2d<T> pool(g.size, g.stride);
                        const shape out_item = pool.configure(shape{channels, h, w});
                        const tensor<T> x = random_tensor<T>(shape{batch, channels, h, w}, random);
                        const tensor<T> dy = random_tensor<T>(out_item.prepend(batch), random);
                        tensor<T> y_ref, dx_ref, y, dx, cache;
                        reference_pool(x, g.size, g.stride, dy, y_ref, dx_ref);

                        pool.infer(x, y, ws);
                        REQUIRE(y.shape() == y_ref.shape());
                        for (index_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == y_ref[i]);

                        backward_context<T> ctx{ws};
                        pool.backward(x, y, dy, dx, cache, ctx);
                        REQUIRE(dx.shape() == x.shape());
                        // Same additions in the same order (row-major windows), so exact.
                        for (index_t i = 0; i < dx.size(); ++i) REQUIRE(dx[i] == dx_ref[i]);
                        ++configurations;
                    }
    CHECK(configurations > 200);
}

TEST_CASE("maxpool2d: output size rounds down like PyTorch") {
    CHECK(maxpool2d<float>(2).configure(shape{3, 7, 9}) == shape{3, 3, 4});
    CHECK(maxpool2d<float>(3, 2).configure(shape{1, 8, 8}) == shape{1, 3, 3});
    CHECK(maxpool2d<float>(2, 1).configure(shape{2, 2, 5}) == shape{2, 1, 4});
}

TEST_CASE("maxpool2d: ties go to the first maximum, overlapping windows add") {
    workspace<double> ws;
    backward_context<double> ctx{ws};
    tensor<double> y, dx, cache;

    SUBCASE("constant input, 2x2 windows with stride 1") {
        maxpool2d<double> pool(2, 1);
        pool.configure(shape{1, 3, 3});
        const tensor<double> x(shape{1, 1, 3, 3}, 4.0);
        pool.infer(x, y, ws);
        for (index_t i = 0; i < y.size(); ++i) CHECK(y[i] == 4.0);
        const tensor<double> dy(shape{1, 1, 2, 2}, 1.0);
        pool.backward(x, y, dy, dx, cache, ctx);
        // Each window's top-left corner is its first maximum.
        const double expected[] = {1, 1, 0, 1, 1, 0, 0, 0, 0};
        for (index_t i = 0; i < 9; ++i) CHECK(dx[i] == expected[i]);
    }
    SUBCASE("a tie inside one window picks the row-major first") {
        maxpool2d<double> pool(2);
        pool.configure(shape{1, 2, 2});
        tensor<double> x(shape{1, 1, 2, 2});
        const double values[] = {1, 5, 5, 5};
        for (index_t i = 0; i < 4; ++i) x[i] = values[i];
        pool.infer(x, y, ws);
        CHECK(y[0] == 5.0);
        const tensor<double> dy(shape{1, 1, 1, 1}, 3.0);
        pool.backward(x, y, dy, dx, cache, ctx);
        CHECK(dx[0] == 0.0);
        CHECK(dx[1] == 3.0);
        CHECK(dx[2] == 0.0);
        CHECK(dx[3] == 0.0);
    }
    SUBCASE("one maximum shared by four overlapping windows gets their sum") {
        maxpool2d<double> pool(2, 1);
        pool.configure(shape{1, 3, 3});
        tensor<double> x(shape{1, 1, 3, 3}, 0.0);
        x[4] = 9.0;  // the centre is in every window
        pool.infer(x, y, ws);
        for (index_t i = 0; i < 4; ++i) CHECK(y[i] == 9.0);
        tensor<double> dy(shape{1, 1, 2, 2});
        for (index_t i = 0; i < 4; ++i) dy[i] = static_cast<double>(i + 1);
        pool.backward(x, y, dy, dx, cache, ctx);
        for (index_t i = 0; i < 9; ++i) CHECK(dx[i] == (i == 4 ? 10.0 : 0.0));
    }
}

TEST_CASE("maxpool2d: a NaN in a window propagates, as in PyTorch") {
    maxpool2d<float> pool(2);
    pool.configure(shape{1, 2, 2});
    tensor<float> x(shape{1, 1, 2, 2}, 1.f), y;
    x[2] = std::numeric_limits<float>::quiet_NaN();
    workspace<float> ws;
    pool.infer(x, y, ws);
    CHECK(std::isnan(y[0]));
}

TEST_CASE("maxpool2d: numerical gradient") {
    testing::check_layer_gradients([] { return std::make_unique<maxpool2d<double>>(2); }, shape{3, 5, 6});
    testing::check_layer_gradients([] { return std::make_unique<maxpool2d<double>>(3, 2); }, shape{2, 7, 7});
}

TEST_CASE("maxpool2d: kind, config and bad arguments") {
    maxpool2d<float> pool(3);
    CHECK(pool.kind() == "maxpool2d");
    CHECK(pool.config() == layer_config{{"size", std::int64_t{3}}, {"stride", std::int64_t{3}}});
    CHECK(pool.param_specs().empty());

    CHECK_THROWS_AS(maxpool2d<float>(0), argument_error);
    CHECK_THROWS_AS(maxpool2d<float>(2, -1), argument_error);
    CHECK_THROWS_AS(pool.configure(shape{4, 4}), shape_error);
    CHECK_THROWS_AS(pool.configure(shape{1, 2, 9}), shape_error);

    pool.configure(shape{2, 6, 6});
    tensor<float> wrong(shape{1, 3, 6, 6}), y;
    workspace<float> ws;
    CHECK_THROWS_AS(pool.infer(wrong, y, ws), shape_error);
}

TEST_CASE("maxpool2d: the parallel path gives the same result on 1 and 2 threads") {
    testing::thread_count_guard guard;
    maxpool2d<float> pool(3, 2);
    pool.configure(shape{8, 33, 33});
    rng random(5);
    // Large enough that threads_for() asks for more than one thread.
    const tensor<float> x = random_tensor<float>(shape{16, 8, 33, 33}, random);
    const tensor<float> dy = random_tensor<float>(shape{16, 8, 16, 16}, random);
    workspace<float> ws;
    backward_context<float> ctx{ws};
    tensor<float> y1, dx1, y2, dx2, cache;
    set_threads(1);
    pool.infer(x, y1, ws);
    pool.backward(x, y1, dy, dx1, cache, ctx);
    set_threads(2);
    pool.infer(x, y2, ws);
    pool.backward(x, y2, dy, dx2, cache, ctx);
    for (index_t i = 0; i < y1.size(); ++i) REQUIRE(y1[i] == y2[i]);
    for (index_t i = 0; i < dx1.size(); ++i) REQUIRE(dx1[i] == dx2[i]);
}
