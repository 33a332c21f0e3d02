#include "nnmark/layers/dense.hpp"

#include "../support/errors.hpp"
#include "../support/gradient_check.hpp"
#include "../support/layers.hpp"
#include "../support/tensors.hpp"
#include "../support/threads.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

using namespace nnmark;
using testing::contains;
using testing::error_message;
using testing::random_tensor;

namespace {

// A dense layer with its own buffers (see layer_with_buffers), with biases moved off
// zero so that forward tests see them.
template <class T>
struct bound_dense : testing::layer_with_buffers<dense, T> {
    bound_dense(index_t in, index_t out, std::uint64_t seed)
        : testing::layer_with_buffers<dense, T>(shape{in}, seed, out) {
        for (index_t o = 0; o < out; ++o) this->params[static_cast<std::size_t>(out * in + o)] = T(0.25) * T(o + 1);
    }
};

// The definition y = x W^T + b, in double, output by output.
template <class T>
std::vector<testing::reference_sum> direct_dense(const tensor<T>& x, const std::vector<T>& params, index_t in,
                                                 index_t out) {
    std::vector<testing::reference_sum> r;
    for (index_t n = 0; n < x.batch(); ++n)
        for (index_t o = 0; o < out; ++o) {
            testing::reference_sum sum;
            sum.add(static_cast<double>(params[static_cast<std::size_t>(out * in + o)]));
            for (index_t i = 0; i < in; ++i)
                sum.add(static_cast<double>(params[static_cast<std::size_t>(o * in + i)]) *
                        static_cast<double>(x[n * in + i]));
            r.push_back(sum);
        }
    return r;
}

}  // namespace

TEST_CASE_TEMPLATE("dense: forward equals y = x W^T + b", T, float, double) {
    const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-13;
    workspace<T> scratch;
    std::uint64_t seed = 1;
    for (index_t in : {1, 3, 17, 65})
        for (index_t out : {1, 5, 10})
            for (index_t batch : {1, 3, 7}) {
                bound_dense<T> d(in, out, ++seed);
                const auto x = random_tensor<T>(shape{batch, in}, seed + 100);
                tensor<T> y;
                d.layer.infer(x, y, scratch);
                REQUIRE(y.shape() == shape{batch, out});
                CHECK_MESSAGE(testing::close_to_reference(y, direct_dense(x, d.params, in, out), tolerance),
                              "in " << in << " out " << out << " batch " << batch);
            }
}

TEST_CASE("dense: one sample alone gives bit-for-bit its row of a batch") {
    // A single sample takes the y^T = W x^T path; sizes past gemm's K block and not a
    // multiple of its tiles.
    workspace<float> scratch;
    for (index_t in : {1, 33, 1000})
        for (index_t out : {1, 17, 37}) {
            bound_dense<float> d(in, out, 9);
            const auto batch = random_tensor<float>(shape{3, in}, 10);
            tensor<float> all, one;
            d.layer.infer(batch, all, scratch);
            for (index_t n = 0; n < 3; ++n) {
                tensor<float> x(shape{1, in});
                std::copy(batch.item(n).begin(), batch.item(n).end(), x.data());
                d.layer.infer(x, one, scratch);
                for (index_t o = 0; o < out; ++o) REQUIRE(one[o] == all.item(n)[static_cast<std::size_t>(o)]);
            }
        }
}

TEST_CASE("dense: 1 and 3 samples on 2 threads, split by output units, equal 1 thread bit for bit") {
    testing::thread_count_guard guard;
    // Enough work for two threads at one sample (see dot_gemm's fmas_per_thread), and
    // output units that are not a multiple of its tiles.
    const index_t in = 1000, out = 203;
    REQUIRE(in * out >= 2 * detail::dot_products::fmas_per_thread);
    const bound_dense<float> d(in, out, 11);
    for (index_t batch : {1, 3}) {
        CAPTURE(batch);
        const auto x = random_tensor<float>(shape{batch, in}, 12);
        auto run = [&](int threads) {
            set_threads(threads);
            workspace<float> scratch;
            tensor<float> y;
            d.layer.infer(x, y, scratch);
            return y;
        };
        const auto one = run(1), two = run(2);
        CHECK(std::equal(two.span().begin(), two.span().end(), one.span().begin(), one.span().end()));
        CHECK(testing::close_to_reference(two, direct_dense(x, d.params, in, out), 1e-5));
    }
}

TEST_CASE("dense: kind, config and parameter specs") {
    dense<float> d(10);
    CHECK(d.configure(shape{84}) == shape{10});
    CHECK(d.kind() == "dense");
    CHECK(d.config() == layer_config{{"out_features", std::int64_t{10}}});
    const auto specs = d.param_specs();
    REQUIRE(specs.size() == 2);
    CHECK(specs[0].name == "weight");
    CHECK(specs[0].shape == shape{10, 84});
    CHECK(specs[0].decayed);
    CHECK(specs[1].name == "bias");
    CHECK(specs[1].shape == shape{10});
    CHECK_FALSE(specs[1].decayed);
}

TEST_CASE("dense: numerical gradient") {
    for (index_t in : {1, 7, 20})
        for (index_t out : {1, 6}) {
            CAPTURE(in);
            CAPTURE(out);
            const auto report =
                testing::check_layer_gradients([&] { return std::make_unique<dense<double>>(out); }, shape{in});
            CHECK(report.checked >= 3 * in);
            CHECK(report.skipped_kinks == 0);  // linear: no kinks
        }
}

TEST_CASE("dense: backward honours input_grad and param_grads") {
    bound_dense<double> d(6, 4, 3);
    const auto dy = random_tensor<double>(shape{3, 4}, 5);
    const std::vector<double> grads = testing::check_backward_flags(d, random_tensor<double>(shape{3, 6}, 4), dy);
    // db = column sums of dy.
    for (index_t o = 0; o < 4; ++o)
        CHECK(grads[static_cast<std::size_t>(24 + o)] == doctest::Approx(dy[o] + dy[4 + o] + dy[8 + o]).epsilon(1e-12));
}

TEST_CASE("dense: shape errors name the layer and the shapes") {
    const std::string image_input = error_message<shape_error>([] { dense<float>(10).configure(shape{3, 4, 4}); });
    CHECK(contains(image_input, "dense"));
    CHECK(contains(image_input, "[3, 4, 4]"));
    CHECK(contains(image_input, "flatten"));
    CHECK_THROWS_AS(dense<float>(10).configure(shape{}), shape_error);
    CHECK_THROWS_AS(dense<float>(10).configure(shape{0}), shape_error);

    bound_dense<float> d(5, 2, 1);
    workspace<float> scratch;
    tensor<float> y;
    const std::string wrong_input =
        error_message<shape_error>([&] { d.layer.infer(tensor<float>(shape{3, 4}), y, scratch); });
    CHECK(contains(wrong_input, "dense"));
    CHECK(contains(wrong_input, "[5]"));
    CHECK(contains(wrong_input, "[3, 4]"));

    tensor<float> x(shape{3, 5}), dx, cache;
    d.layer.infer(x, y, scratch);
    backward_context<float> ctx{scratch};
    CHECK_THROWS_AS(d.layer.backward(x, y, tensor<float>(shape{3, 3}), dx, cache, ctx), shape_error);

    std::vector<float> too_few(3);
    CHECK_THROWS_AS(d.layer.bind(too_few, too_few), shape_error);
    CHECK_THROWS_AS(dense<float>(0), argument_error);
}

// Sizes whose backward splits over two parts (see dense::parallel_grain).
constexpr index_t threaded_batch = 37, threaded_in = 300, threaded_out = 200;
static_assert(static_cast<long long>(threaded_batch) * threaded_in * threaded_out >= 2 * dense<float>::parallel_grain);

TEST_CASE("dense: the two-part backward equals its definition in double, and one thread bit for bit") {
    testing::thread_count_guard guard;
    const auto x = random_tensor<float>(shape{threaded_batch, threaded_in}, 6);
    auto run = [&](int threads) {
        set_threads(threads);
        bound_dense<float> d(threaded_in, threaded_out, 7);
        return testing::forward_backward_twice(d, x, 8);
    };
    const auto two = run(2), one = run(1);
    CHECK(std::equal(two.dx.span().begin(), two.dx.span().end(), one.dx.span().begin(), one.dx.span().end()));
    CHECK(two.grads == one.grads);

    // The definitions, in double: dX = G W, dW = 2 G^T X, db = 2 column sums of G (two
    // backward calls add twice). A float sum of K terms may be off by ~K * 2^-24 * sum|terms|.
    bound_dense<float> d(threaded_in, threaded_out, 7);
    const auto g = random_tensor<float>(shape{threaded_batch, threaded_out}, 8);
    const auto at = [](const auto& v, index_t i) { return static_cast<double>(v[static_cast<std::size_t>(i)]); };
    std::vector<testing::reference_sum> dx, weight_grad, bias_grad;
    for (index_t n = 0; n < threaded_batch; ++n)
        for (index_t i = 0; i < threaded_in; ++i) {
            testing::reference_sum s;
            for (index_t o = 0; o < threaded_out; ++o) s.add(g[n * threaded_out + o] * at(d.params, o * threaded_in + i));
            dx.push_back(s);
        }
    for (index_t o = 0; o < threaded_out; ++o)
        for (index_t i = 0; i < threaded_in; ++i) {
            testing::reference_sum s;
            for (index_t n = 0; n < threaded_batch; ++n) s.add(2.0 * g[n * threaded_out + o] * x[n * threaded_in + i]);
            weight_grad.push_back(s);
        }
    for (index_t o = 0; o < threaded_out; ++o) {
        testing::reference_sum s;
        for (index_t n = 0; n < threaded_batch; ++n) s.add(2.0 * g[n * threaded_out + o]);
        bias_grad.push_back(s);
    }
    const double float_bound = 2.0 * (threaded_out + 2) * 0x1p-24;
    CHECK(testing::close_to_reference(two.dx, dx, float_bound));
    const auto weights = static_cast<std::size_t>(threaded_out * threaded_in);
    tensor<float> grads_w(shape{threaded_out, threaded_in}), grads_b(shape{threaded_out});
    std::copy(two.grads.begin(), two.grads.begin() + static_cast<std::ptrdiff_t>(weights), grads_w.data());
    std::copy(two.grads.begin() + static_cast<std::ptrdiff_t>(weights), two.grads.end(), grads_b.data());
    CHECK(testing::close_to_reference(grads_w, weight_grad, float_bound));
    CHECK(testing::close_to_reference(grads_b, bias_grad, float_bound));
}

TEST_CASE("dense: numerical gradient of the two-part backward") {
    testing::thread_count_guard guard;
    set_threads(2);
    testing::gradient_check_options options;
    options.batch = threaded_batch;
    options.max_points = 60;
    const auto report = testing::check_layer_gradients([] { return std::make_unique<dense<double>>(threaded_out); },
                                                       shape{threaded_in}, options);
    CHECK(report.checked >= 3 * options.max_points);
    CHECK(report.skipped_kinks == 0);
}

TEST_CASE("dense: initialize draws He-normal weights from the seed and zeroes biases") {
    auto initial = [](std::uint64_t seed) {
        return testing::layer_with_buffers<dense, double>(shape{200}, seed, 40).params;
    };
    const auto a = initial(9), b = initial(9), c = initial(10);
    CHECK(a == b);
    CHECK(a != c);
    testing::check_he_normal_weights_zero_biases(a, 40 * 200, 200);
}
