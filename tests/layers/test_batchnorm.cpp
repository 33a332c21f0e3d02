#include "nnmark/layers/batchnorm.hpp"
#include "nnmark/core/parallel.hpp"

#include "../support/gradient_check.hpp"
#include "../support/layers.hpp"
#include "../support/tensors.hpp"
#include "../support/threads.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

using namespace nnmark;
using testing::random_tensor;

namespace {

// A batchnorm layer with its own buffers (see layer_with_buffers), and its four
// parameter tensors by name.
template <class T>
struct bound_batchnorm : testing::layer_with_buffers<batchnorm, T> {
    index_t channels;

    explicit bound_batchnorm(const shape& item, double momentum = 0.1)
        : testing::layer_with_buffers<batchnorm, T>(item, 0, momentum), channels(item[0]) {}
    T& gamma(index_t c) { return this->params[static_cast<std::size_t>(c)]; }
    T& beta(index_t c) { return this->params[static_cast<std::size_t>(channels + c)]; }
    T& running_mean(index_t c) { return this->params[static_cast<std::size_t>(2 * channels + c)]; }
    T& running_var(index_t c) { return this->params[static_cast<std::size_t>(3 * channels + c)]; }
};

// The definition on [N, C, H, W] (a [N, F] batch is the same with H = W = 1), in double:
// batch mean and biased variance per channel, then the textbook backward.
struct reference_result {
    std::vector<double> y, dx, dgamma, dbeta;
};

template <class T>
reference_result reference_batchnorm(const tensor<T>& x4, const tensor<T>& dy4, const std::vector<double>& gamma,
                                     const std::vector<double>& beta, double eps) {
    const index_t n = x4.shape()[0], c = x4.shape()[1], h = x4.shape()[2], w = x4.shape()[3];
    const double m = static_cast<double>(n * h * w);
    reference_result r;
    r.y.assign(static_cast<std::size_t>(x4.size()), 0);
    r.dx = r.y;
    r.dgamma.assign(static_cast<std::size_t>(c), 0);
    r.dbeta = r.dgamma;
    for (index_t ch = 0; ch < c; ++ch) {
        double mean = 0, var = 0, sum_dy = 0, sum_dy_xhat = 0;
        for (index_t b = 0; b < n; ++b)
            for (index_t i = 0; i < h; ++i)
                for (index_t j = 0; j < w; ++j) mean += x4.at(b, ch, i, j);
        mean /= m;
        for (index_t b = 0; b < n; ++b)
            for (index_t i = 0; i < h; ++i)
                for (index_t j = 0; j < w; ++j) var += (x4.at(b, ch, i, j) - mean) * (x4.at(b, ch, i, j) - mean);
        var /= m;
        const double inv_std = 1 / std::sqrt(var + eps);
        const auto flat = [&](index_t b, index_t i, index_t j) { return static_cast<std::size_t>(((b * c + ch) * h + i) * w + j); };
        for (index_t b = 0; b < n; ++b)
            for (index_t i = 0; i < h; ++i)
                for (index_t j = 0; j < w; ++j) {
                    const double xhat = (x4.at(b, ch, i, j) - mean) * inv_std;
                    r.y[flat(b, i, j)] = gamma[static_cast<std::size_t>(ch)] * xhat + beta[static_cast<std::size_t>(ch)];
                    sum_dy += dy4.at(b, ch, i, j);
                    sum_dy_xhat += dy4.at(b, ch, i, j) * xhat;
                }
        r.dgamma[static_cast<std::size_t>(ch)] = sum_dy_xhat;
        r.dbeta[static_cast<std::size_t>(ch)] = sum_dy;
        for (index_t b = 0; b < n; ++b)
            for (index_t i = 0; i < h; ++i)
                for (index_t j = 0; j < w; ++j) {
                    const double xhat = (x4.at(b, ch, i, j) - mean) * inv_std;
                    r.dx[flat(b, i, j)] = gamma[static_cast<std::size_t>(ch)] * inv_std *
                                          (dy4.at(b, ch, i, j) - sum_dy / m - xhat * sum_dy_xhat / m);
                }
    }
    return r;
}

// x viewed as [N, C, H, W]: [N, F] becomes [N, F, 1, 1].
template <class T>
tensor<T> as_nchw(tensor<T> t) {
    if (t.shape().rank() == 2) t.reshape(shape{t.shape()[0], t.shape()[1], 1, 1});
    return t;
}

template <class T>
void check_against_reference(const shape& item, index_t batch, rng& random) {
    bound_batchnorm<T> bn(item);
    std::vector<double> gamma, beta;
    for (index_t c = 0; c < item[0]; ++c) {
        bn.gamma(c) = static_cast<T>(random.normal(1, 0.5));
        bn.beta(c) = static_cast<T>(random.normal());
        gamma.push_back(static_cast<double>(bn.gamma(c)));
        beta.push_back(static_cast<double>(bn.beta(c)));
    }
    // Far from zero, so that a cancelling formula would show in float.
    const tensor<T> x = random_tensor<T>(item.prepend(batch), random, 50, 2);
    const tensor<T> dy = random_tensor<T>(x.shape(), random);
    const reference_result ref = reference_batchnorm(as_nchw(x), as_nchw(dy), gamma, beta, 1e-5);

    workspace<T> ws;
    rng unused(1);
    train_context<T> tctx{ws, unused};
    tensor<T> y, dx, cache;
    bn.layer.forward_train(x, y, cache, tctx);
    backward_context<T> bctx{ws};
    bn.layer.backward(x, y, dy, dx, cache, bctx);

    const double tol = std::is_same_v<T, float> ? 2e-4 : 1e-10;
    REQUIRE(y.shape() == x.shape());
    REQUIRE(dx.shape() == x.shape());
    for (index_t i = 0; i < x.size(); ++i) {
        REQUIRE(static_cast<double>(y[i]) == doctest::Approx(ref.y[static_cast<std::size_t>(i)]).epsilon(tol).scale(1));
        REQUIRE(static_cast<double>(dx[i]) == doctest::Approx(ref.dx[static_cast<std::size_t>(i)]).epsilon(tol).scale(1));
    }
    for (index_t c = 0; c < item[0]; ++c) {
        const auto k = static_cast<std::size_t>(c);
        REQUIRE(static_cast<double>(bn.grads[k]) == doctest::Approx(ref.dgamma[k]).epsilon(tol).scale(1));
        REQUIRE(static_cast<double>(bn.grads[k + gamma.size()]) == doctest::Approx(ref.dbeta[k]).epsilon(tol).scale(1));
    }
}

}  // namespace

TEST_CASE_TEMPLATE("batchnorm: training forward and backward match the plain loops", T, float, double) {
    rng random(21);
    int configurations = 0;
    for (index_t batch : {1, 3})
        for (index_t channels : {1, 3, 5}) {
            if (batch > 1) {
                check_against_reference<T>(shape{channels}, batch, random);
                ++configurations;
            }
            for (index_t h : {1, 3, 7, 9})
                for (index_t w : {1, 3, 7, 9}) {
                    if (batch * h * w < 2) continue;
                    check_against_reference<T>(shape{channels, h, w}, batch, random);
                    ++configurations;
                }
        }
    CHECK(configurations == 3 + 3 * 15 + 3 * 16);
}

TEST_CASE("batchnorm: running statistics after two steps (1d), then eval uses them") {
    bound_batchnorm<double> bn(shape{2});
    workspace<double> ws;
    rng unused(0);
    train_context<double> ctx{ws, unused};
    tensor<double> x(shape{3, 2}), y, cache;

    // Channel 0: {1, 2, 3} -> mean 2, unbiased var 1. Channel 1: {-1, -1, 2} -> mean 0, var 3.
    const double step1[] = {1, -1, 2, -1, 3, 2};
    for (index_t i = 0; i < 6; ++i) x[i] = step1[i];
    bn.layer.forward_train(x, y, cache, ctx);
    CHECK(bn.running_mean(0) == doctest::Approx(0.2));
    CHECK(bn.running_var(0) == doctest::Approx(1.0));
    CHECK(bn.running_mean(1) == doctest::Approx(0.0));
    CHECK(bn.running_var(1) == doctest::Approx(1.2));

    // Channel 0: {0, 4, 8} -> mean 4, unbiased var 16. Channel 1: {5, 5, 5} -> mean 5, var 0.
    const double step2[] = {0, 5, 4, 5, 8, 5};
    for (index_t i = 0; i < 6; ++i) x[i] = step2[i];
    bn.layer.forward_train(x, y, cache, ctx);
    CHECK(bn.running_mean(0) == doctest::Approx(0.9 * 0.2 + 0.1 * 4));
    CHECK(bn.running_var(0) == doctest::Approx(0.9 * 1.0 + 0.1 * 16));
    CHECK(bn.running_mean(1) == doctest::Approx(0.5));
    CHECK(bn.running_var(1) == doctest::Approx(0.9 * 1.2));
    // A constant channel normalizes to beta in training (biased variance 0, eps keeps it finite).
    CHECK(y[1] == doctest::Approx(0.0));

    bn.gamma(0) = 2;
    bn.gamma(1) = -1;
    bn.beta(0) = 0.5;
    bn.beta(1) = 3;
    const double probe[] = {1, 2, -3, 0.25};
    tensor<double> z(shape{2, 2});
    for (index_t i = 0; i < 4; ++i) z[i] = probe[i];
    bn.layer.infer(z, y, ws);
    const double mean[] = {0.58, 0.5}, var[] = {2.5, 1.08}, g[] = {2, -1}, b[] = {0.5, 3};
    for (index_t i = 0; i < 4; ++i) {
        const auto c = static_cast<std::size_t>(i % 2);
        CHECK(y[i] == doctest::Approx(g[c] * (probe[i] - mean[c]) / std::sqrt(var[c] + 1e-5) + b[c]));
    }
}

TEST_CASE("batchnorm: running statistics after two steps (2d, momentum 0.5)") {
    bound_batchnorm<float> bn(shape{1, 1, 2}, 0.5);
    workspace<float> ws;
    rng unused(0);
    train_context<float> ctx{ws, unused};
    tensor<float> x(shape{2, 1, 1, 2}), y, cache;
    // {1, 3, 5, 7}: mean 4, unbiased var 20 / 3.
    for (index_t i = 0; i < 4; ++i) x[i] = static_cast<float>(2 * i + 1);
    bn.layer.forward_train(x, y, cache, ctx);
    CHECK(bn.running_mean(0) == doctest::Approx(2.0));
    CHECK(bn.running_var(0) == doctest::Approx(0.5 + 0.5 * 20.0 / 3));
    // Training output: normalized with the biased variance 5.
    CHECK(y[0] == doctest::Approx(-3 / std::sqrt(5 + 1e-5)));

    x.fill(2.f);
    bn.layer.forward_train(x, y, cache, ctx);
    CHECK(bn.running_mean(0) == doctest::Approx(2.0));
    CHECK(bn.running_var(0) == doctest::Approx(0.5 * (0.5 + 0.5 * 20.0 / 3)));

    // Eval mode: running statistics, not the batch's.
    bn.layer.infer(x, y, ws);
    for (index_t i = 0; i < 4; ++i) CHECK(y[i] == doctest::Approx(0.0));
    x[0] = 5.f;
    bn.layer.infer(x, y, ws);
    CHECK(y[0] == doctest::Approx(3 / std::sqrt(0.5 * (0.5 + 0.5 * 20.0 / 3) + 1e-5)));
    CHECK(y[1] == doctest::Approx(0.0));
}

TEST_CASE("batchnorm: numerical gradient through the batch statistics, 1d and 2d") {
    auto make = [] { return std::make_unique<batchnorm<double>>(); };
    testing::check_layer_gradients(make, shape{5});
    testing::check_layer_gradients(make, shape{3, 3, 3});
    testing::gradient_check_options options;
    options.batch = 1;
    testing::check_layer_gradients(make, shape{2, 3, 3}, options);
    options.batch = 4;
    testing::check_layer_gradients(make, shape{3, 1, 1}, options);
    options.batch = 2;
    testing::check_layer_gradients(make, shape{4}, options);
}

TEST_CASE("batchnorm: parameters, initial values and config") {
    bound_batchnorm<float> bn(shape{3, 4, 4});
    const auto specs = bn.layer.param_specs();
    REQUIRE(specs.size() == 4);
    const char* names[] = {"weight", "bias", "running_mean", "running_var"};
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(specs[i].name == names[i]);
        CHECK(specs[i].shape == shape{3});
        CHECK(specs[i].trainable == (i < 2));
        CHECK_FALSE(specs[i].decayed);
    }
    for (index_t c = 0; c < 3; ++c) {
        CHECK(bn.gamma(c) == 1.f);
        CHECK(bn.beta(c) == 0.f);
        CHECK(bn.running_mean(c) == 0.f);
        CHECK(bn.running_var(c) == 1.f);
    }
    CHECK(bn.layer.kind() == "batchnorm");
    CHECK(batchnorm<float>(0.2, 1e-3).config() == layer_config{{"momentum", 0.2}, {"eps", 1e-3}});
}

TEST_CASE("batchnorm: frozen layer adds no gradient, first layer writes no dx") {
    bound_batchnorm<double> bn(shape{2, 2, 2});
    rng random(4);
    const tensor<double> x = random_tensor<double>(shape{3, 2, 2, 2}, random);
    const tensor<double> dy = random_tensor<double>(x.shape(), random);
    const std::vector<double> grads = testing::check_backward_flags(bn, x, dy);
    CHECK(grads[0] != 0.0);  // dgamma
}

TEST_CASE("batchnorm: bad input ranks, batches and arguments") {
    CHECK_THROWS_AS(batchnorm<float>().configure(shape{3, 4}), shape_error);
    CHECK_THROWS_AS(batchnorm<float>().configure(shape{1, 3, 4, 4}), shape_error);
    CHECK_THROWS_AS(batchnorm<float>(1.5), argument_error);
    CHECK_THROWS_AS(batchnorm<float>(0.1, 0.0), argument_error);

    bound_batchnorm<float> bn(shape{4});
    workspace<float> ws;
    rng unused(0);
    train_context<float> ctx{ws, unused};
    tensor<float> y, cache;
    // One value per channel has no variance to learn from (PyTorch refuses it too).
    CHECK_THROWS_AS(bn.layer.forward_train(tensor<float>(shape{1, 4}), y, cache, ctx), shape_error);
    CHECK_THROWS_AS(bn.layer.infer(tensor<float>(shape{2, 5}), y, ws), shape_error);

    std::vector<float> too_small(8);
    CHECK_THROWS_AS(bn.layer.bind(too_small, too_small), shape_error);
}

TEST_CASE("batchnorm: the parallel path gives bit-identical results on 1 and 2 threads") {
    testing::thread_count_guard guard;
    rng random(6);
    // Large enough that threads_for() asks for more than one thread.
    const tensor<float> x = random_tensor<float>(shape{16, 8, 32, 32}, random);
    const tensor<float> dy = random_tensor<float>(x.shape(), random);
    auto run = [&](int threads, bound_batchnorm<float>& bn, tensor<float>& y, tensor<float>& dx, tensor<float>& z) {
        set_threads(threads);
        workspace<float> ws;
        rng unused(0);
        train_context<float> tctx{ws, unused};
        tensor<float> cache;
        bn.layer.forward_train(x, y, cache, tctx);
        backward_context<float> bctx{ws};
        bn.layer.backward(x, y, dy, dx, cache, bctx);
        bn.layer.infer(x, z, ws);
    };
    bound_batchnorm<float> one(shape{8, 32, 32}), two(shape{8, 32, 32});
    tensor<float> y1, dx1, z1, y2, dx2, z2;
    run(1, one, y1, dx1, z1);
    run(2, two, y2, dx2, z2);
    CHECK(one.params == two.params);
    CHECK(one.grads == two.grads);
    for (index_t i = 0; i < x.size(); ++i) {
        REQUIRE(y1[i] == y2[i]);
        REQUIRE(dx1[i] == dx2[i]);
        REQUIRE(z1[i] == z2[i]);
    }
}
