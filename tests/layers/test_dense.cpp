// Tests of dense.hpp and of the initializers it uses (initializers.hpp).
#include "nnmark/layers/dense.hpp"

#include "nnmark/core/parallel.hpp"
#include "nnmark/layers/initializers.hpp"

#include "../support/gradient_check.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

using namespace nnmark;

namespace {

// A dense layer configured for `in` features, bound to its own buffers, initialized
// from `seed`, with biases moved off zero so that forward tests see them.
template <class T>
struct bound_dense {
    dense<T> layer;
    std::vector<T> params, grads;

    bound_dense(index_t in, index_t out, std::uint64_t seed) : layer(out) {
        layer.configure(shape{in});
        params.assign(static_cast<std::size_t>(out * in + out), T(0));
        grads.assign(params.size(), T(0));
        layer.bind(params, grads);
        rng random(seed);
        layer.initialize(random);
        for (index_t o = 0; o < out; ++o) params[static_cast<std::size_t>(out * in + o)] = T(0.25) * T(o + 1);
    }
    bound_dense(const bound_dense&) = delete;
    bound_dense& operator=(const bound_dense&) = delete;
};

template <class T>
tensor<T> random_tensor(const shape& s, std::uint64_t seed) {
    rng random(seed);
    tensor<T> t(s);
    for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<T>(random.normal());
    return t;
}

std::string thrown_message(const std::function<void()>& f) {
    try {
        f();
    } catch (const shape_error& e) {
        return e.what();
    }
    return "(nothing thrown)";
}

struct thread_count_guard {
    int saved = thread_count();
    ~thread_count_guard() { set_threads(saved); }
};

struct moments {
    double mean, stddev;
};

moments sample_moments(const std::vector<double>& v) {
    double sum = 0, sum_sq = 0;
    for (double x : v) {
        sum += x;
        sum_sq += x * x;
    }
    const double n = static_cast<double>(v.size());
    const double mean = sum / n;
    return {mean, std::sqrt(sum_sq / n - mean * mean)};
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
                bool all_close = true;
                for (index_t n = 0; n < batch; ++n)
                    for (index_t o = 0; o < out; ++o) {
                        double sum = static_cast<double>(d.params[static_cast<std::size_t>(out * in + o)]);
                        double magnitude = std::abs(sum);
                        for (index_t i = 0; i < in; ++i) {
                            const double term = static_cast<double>(d.params[static_cast<std::size_t>(o * in + i)]) *
                                                static_cast<double>(x[n * in + i]);
                            sum += term;
                            magnitude += std::abs(term);
                        }
                        const double error = std::abs(static_cast<double>(y[n * out + o]) - sum);
                        all_close = all_close && error <= tolerance * (1 + magnitude);
                    }
                CHECK_MESSAGE(all_close, "in " << in << " out " << out << " batch " << batch);
            }
}

TEST_CASE("dense: kind, config and parameter specs") {
    dense<float> d(10);
    CHECK(d.configure(shape{84}) == shape{10});
    CHECK(d.kind() == "dense");
    const layer_config config = d.config();
    REQUIRE(config.size() == 1);
    CHECK(config[0].first == "out_features");
    CHECK(std::get<std::int64_t>(config[0].second) == 10);
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
    const auto x = random_tensor<double>(shape{3, 6}, 4);
    workspace<double> scratch;
    tensor<double> y;
    d.layer.infer(x, y, scratch);
    const auto dy = random_tensor<double>(y.shape(), 5);

    tensor<double> dx(shape{1}, 42.0), cache;
    backward_context<double> params_only{scratch, false, true};
    d.layer.backward(x, y, dy, dx, cache, params_only);
    CHECK(dx.shape() == shape{1});
    CHECK(dx[0] == 42.0);
    const auto grads_after_one = d.grads;
    // db = column sums of dy.
    for (index_t o = 0; o < 4; ++o)
        CHECK(grads_after_one[static_cast<std::size_t>(24 + o)] ==
              doctest::Approx(dy[o] + dy[4 + o] + dy[8 + o]).epsilon(1e-12));

    backward_context<double> input_only{scratch, true, false};
    d.layer.backward(x, y, dy, dx, cache, input_only);
    CHECK(dx.shape() == x.shape());
    CHECK(d.grads == grads_after_one);
}

TEST_CASE("dense: shape errors name the layer and the shapes") {
    const std::string image_input = thrown_message([] { dense<float>(10).configure(shape{3, 4, 4}); });
    CHECK(image_input.find("dense") != std::string::npos);
    CHECK(image_input.find("[3, 4, 4]") != std::string::npos);
    CHECK(image_input.find("flatten") != std::string::npos);
    CHECK_THROWS_AS(dense<float>(10).configure(shape{}), shape_error);
    CHECK_THROWS_AS(dense<float>(10).configure(shape{0}), shape_error);

    bound_dense<float> d(5, 2, 1);
    workspace<float> scratch;
    tensor<float> y;
    const std::string wrong_input = thrown_message([&] { d.layer.infer(tensor<float>(shape{3, 4}), y, scratch); });
    CHECK(wrong_input.find("dense") != std::string::npos);
    CHECK(wrong_input.find("[5]") != std::string::npos);
    CHECK(wrong_input.find("[3, 4]") != std::string::npos);

    tensor<float> x(shape{3, 5}), dx, cache;
    d.layer.infer(x, y, scratch);
    backward_context<float> ctx{scratch};
    CHECK_THROWS_AS(d.layer.backward(x, y, tensor<float>(shape{3, 3}), dx, cache, ctx), shape_error);

    std::vector<float> too_few(3);
    CHECK_THROWS_AS(d.layer.bind(too_few, too_few), shape_error);
    CHECK_THROWS_AS(dense<float>(0), argument_error);
}

TEST_CASE("dense: with 2 threads, two runs give bit-identical outputs and gradients") {
    thread_count_guard guard;
    set_threads(2);
    const auto x = random_tensor<float>(shape{37, 300}, 6);
    auto run = [&] {
        bound_dense<float> d(300, 70, 7);
        workspace<float> scratch;
        tensor<float> y, dx, cache;
        d.layer.infer(x, y, scratch);
        const auto dy = random_tensor<float>(y.shape(), 8);
        backward_context<float> ctx{scratch};
        d.layer.backward(x, y, dy, dx, cache, ctx);
        d.layer.backward(x, y, dy, dx, cache, ctx);
        std::vector<float> all(y.span().begin(), y.span().end());
        all.insert(all.end(), dx.span().begin(), dx.span().end());
        all.insert(all.end(), d.grads.begin(), d.grads.end());
        return all;
    };
    CHECK(run() == run());
}

TEST_CASE("dense: initialize draws He-normal weights from the seed and zeroes biases") {
    auto initial = [](std::uint64_t seed) {
        dense<double> d(40);
        d.configure(shape{200});
        std::vector<double> params(40 * 200 + 40, 7.0), grads(params.size());
        d.bind(params, grads);
        rng random(seed);
        d.initialize(random);
        return params;
    };
    const auto a = initial(9), b = initial(9), c = initial(10);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(std::all_of(a.begin() + 8000, a.end(), [](double v) { return v == 0.0; }));
    const moments m = sample_moments(std::vector<double>(a.begin(), a.begin() + 8000));
    CHECK(std::abs(m.mean) < 0.1 * std::sqrt(2.0 / 200));
    CHECK(m.stddev == doctest::Approx(std::sqrt(2.0 / 200)).epsilon(0.05));
}

TEST_CASE("initializers: he_normal has standard deviation sqrt(2 / fan_in) and follows the seed") {
    std::vector<double> w(20000), again(20000);
    rng random(1), same(1);
    he_normal(std::span<double>(w), 50, random);
    he_normal(std::span<double>(again), 50, same);
    CHECK(w == again);
    const moments m = sample_moments(w);
    CHECK(std::abs(m.mean) < 0.05 * 0.2);
    CHECK(m.stddev == doctest::Approx(0.2).epsilon(0.05));

    std::vector<float> f(8);
    rng from_seed(1);
    he_normal(std::span<float>(f), 50, from_seed);
    for (std::size_t i = 0; i < f.size(); ++i) CHECK(f[i] == static_cast<float>(w[i]));  // same draws, rounded
    CHECK_THROWS_AS(he_normal(std::span<float>(f), 0, from_seed), argument_error);
}

TEST_CASE("initializers: glorot_uniform stays within sqrt(6 / (fan_in + fan_out)) with the matching spread") {
    const double limit = std::sqrt(6.0 / (30 + 70));
    std::vector<double> w(20000), again(20000);
    rng random(2), same(2);
    glorot_uniform(std::span<double>(w), 30, 70, random);
    glorot_uniform(std::span<double>(again), 30, 70, same);
    CHECK(w == again);
    CHECK(std::all_of(w.begin(), w.end(), [&](double v) { return -limit <= v && v <= limit; }));
    const moments m = sample_moments(w);
    CHECK(std::abs(m.mean) < 0.05 * limit);
    CHECK(m.stddev == doctest::Approx(limit / std::sqrt(3.0)).epsilon(0.05));
    CHECK(*std::max_element(w.begin(), w.end()) > 0.99 * limit);  // the whole range is used
    CHECK_THROWS_AS(glorot_uniform(std::span<double>(w), 30, 0, random), argument_error);
}
