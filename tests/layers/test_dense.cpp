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

TEST_CASE("dense: with 2 threads, two runs give bit-identical outputs and gradients") {
    testing::thread_count_guard guard;
    set_threads(2);
    const auto x = random_tensor<float>(shape{37, 300}, 6);
    auto run = [&] {
        bound_dense<float> d(300, 70, 7);
        return testing::forward_backward_twice(d, x, 8);
    };
    const auto first = run(), second = run();
    CHECK(std::equal(first.y.span().begin(), first.y.span().end(), second.y.span().begin(), second.y.span().end()));
    CHECK(std::equal(first.dx.span().begin(), first.dx.span().end(), second.dx.span().begin(), second.dx.span().end()));
    CHECK(first.grads == second.grads);
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
