#include "nnmark/layers/conv2d.hpp"

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

// A conv2d configured for `input_item`, bound to its own buffers, initialized from
// `seed`, with biases moved off zero so that forward tests see them.
template <class T>
struct bound_conv {
    conv2d<T> layer;
    shape output_item;
    std::vector<T> params, grads;

    bound_conv(index_t out_channels, index_t kernel, index_t stride, padding pad, const shape& input_item,
               std::uint64_t seed)
        : layer(out_channels, kernel, stride, pad) {
        output_item = layer.configure(input_item);
        index_t total = 0;
        for (const auto& spec : layer.param_specs()) total += spec.shape.count();
        params.assign(static_cast<std::size_t>(total), T(0));
        grads.assign(static_cast<std::size_t>(total), T(0));
        layer.bind(params, grads);
        rng random(seed);
        layer.initialize(random);
        for (index_t o = 0; o < out_channels; ++o) params[params.size() - 1 - static_cast<std::size_t>(o)] += T(0.5);
    }
    bound_conv(const bound_conv&) = delete;
    bound_conv& operator=(const bound_conv&) = delete;
};

template <class T>
tensor<T> random_tensor(const shape& s, std::uint64_t seed) {
    rng random(seed);
    tensor<T> t(s);
    for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<T>(random.normal());
    return t;
}

// Padding before the first pixel, written out from the definitions in conv2d.hpp.
index_t expected_pad_before(index_t extent, index_t kernel, index_t stride, padding pad) {
    if (pad == padding::valid) return 0;
    const index_t out = (extent + stride - 1) / stride;
    const index_t total = std::max<index_t>((out - 1) * stride + kernel - extent, 0);
    return total / 2;
}

// The direct definition of the convolution, in double, and for every output the sum
// of the magnitudes of its terms (the scale of its rounding error).
struct direct_result {
    std::vector<double> value, magnitude;
};

template <class T>
direct_result direct_convolution(const tensor<T>& x, const std::vector<T>& params, index_t out_channels,
                                 index_t kernel, index_t stride, padding pad, const shape& out_item) {
    const index_t channels = x.shape()[1], height = x.shape()[2], width = x.shape()[3];
    const index_t out_h = out_item[1], out_w = out_item[2];
    const index_t top = expected_pad_before(height, kernel, stride, pad);
    const index_t left = expected_pad_before(width, kernel, stride, pad);
    auto weight = [&](index_t o, index_t c, index_t i, index_t j) {
        return static_cast<double>(params[static_cast<std::size_t>(((o * channels + c) * kernel + i) * kernel + j)]);
    };
    const std::size_t bias_offset = static_cast<std::size_t>(out_channels * channels * kernel * kernel);
    direct_result r;
    for (index_t n = 0; n < x.batch(); ++n)
        for (index_t o = 0; o < out_channels; ++o)
            for (index_t oh = 0; oh < out_h; ++oh)
                for (index_t ow = 0; ow < out_w; ++ow) {
                    double sum = static_cast<double>(params[bias_offset + static_cast<std::size_t>(o)]);
                    double magnitude = std::abs(sum);
                    for (index_t c = 0; c < channels; ++c)
                        for (index_t i = 0; i < kernel; ++i)
                            for (index_t j = 0; j < kernel; ++j) {
                                const index_t ih = oh * stride + i - top, iw = ow * stride + j - left;
                                if (ih < 0 || ih >= height || iw < 0 || iw >= width) continue;
                                const double term = weight(o, c, i, j) * static_cast<double>(x.at(n, c, ih, iw));
                                sum += term;
                                magnitude += std::abs(term);
                            }
                    r.value.push_back(sum);
                    r.magnitude.push_back(magnitude);
                }
    return r;
}

std::string thrown_message(const std::function<void()>& f) {
    try {
        f();
    } catch (const shape_error& e) {
        return e.what();
    }
    return "(nothing thrown)";
}

// Restores the thread count when a test that changes it ends, even by an exception.
struct thread_count_guard {
    int saved = thread_count();
    ~thread_count_guard() { set_threads(saved); }
};

}  // namespace

TEST_CASE_TEMPLATE("conv2d: forward equals the direct definition on odd sizes", T, float, double) {
    const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-13;
    const index_t spatial[] = {1, 3, 7, 9, 17};
    workspace<T> scratch;
    std::uint64_t seed = 100;
    int cases = 0;
    for (index_t channels : {1, 3, 5, 17})
        for (int s = 0; s < 5; ++s)
            for (index_t kernel : {1, 3, 5})
                for (index_t stride : {1, 2, 3})
                    for (padding pad : {padding::valid, padding::same})
                        for (index_t batch : {1, 3}) {
                            const index_t height = spatial[s], width = spatial[(s + 2) % 5];  // not square
                            if (pad == padding::valid && (height < kernel || width < kernel)) continue;
                            const index_t out_channels = ++seed % 2 ? 1 : 4;
                            const shape item{channels, height, width};
                            bound_conv<T> conv(out_channels, kernel, stride, pad, item, seed);
                            const auto x = random_tensor<T>(item.prepend(batch), seed + 1);
                            tensor<T> y;
                            conv.layer.infer(x, y, scratch);
                            REQUIRE(y.shape() == conv.output_item.prepend(batch));
                            const auto expected = direct_convolution(x, conv.params, out_channels, kernel, stride,
                                                                     pad, conv.output_item);
                            REQUIRE(static_cast<index_t>(expected.value.size()) == y.size());
                            bool all_close = true;
                            for (index_t i = 0; i < y.size(); ++i) {
                                const auto u = static_cast<std::size_t>(i);
                                const double error = std::abs(static_cast<double>(y[i]) - expected.value[u]);
                                all_close = all_close && error <= tolerance * (1 + expected.magnitude[u]);
                            }
                            CHECK_MESSAGE(all_close, "Cin " << channels << " Cout " << out_channels << " " << height
                                                            << "x" << width << " k" << kernel << " s" << stride << " "
                                                            << padding_name(pad) << " N" << batch);
                            ++cases;
                        }
    CHECK(cases > 400);
}

TEST_CASE("conv2d: output sizes and the placement of 'same' padding") {
    CHECK(conv2d<float>(2, 3, 1, padding::same).configure(shape{1, 7, 9}) == shape{2, 7, 9});
    CHECK(conv2d<float>(2, 5, 1, padding::same).configure(shape{1, 1, 3}) == shape{2, 1, 3});
    CHECK(conv2d<float>(2, 3, 2, padding::same).configure(shape{1, 7, 8}) == shape{2, 4, 4});
    CHECK(conv2d<float>(2, 3, 1, padding::valid).configure(shape{1, 7, 9}) == shape{2, 5, 7});
    CHECK(conv2d<float>(2, 3, 3, padding::valid).configure(shape{1, 7, 9}) == shape{2, 2, 3});

    // TensorFlow SAME, stride 2, kernel 2 on 5x5: one padding row/column in total, on
    // the bottom/right. All-ones kernel over the image 1..25: output (i, j) sums the
    // 2x2 block at (2i, 2j), and the last row/column of blocks is half padding.
    bound_conv<double> conv(1, 2, 2, padding::same, shape{1, 5, 5}, 1);
    std::fill(conv.params.begin(), conv.params.end(), 1.0);
    conv.params.back() = 0.0;  // bias
    tensor<double> x(shape{1, 1, 5, 5});
    for (index_t i = 0; i < 25; ++i) x[i] = static_cast<double>(i + 1);
    tensor<double> y;
    workspace<double> scratch;
    conv.layer.infer(x, y, scratch);
    REQUIRE(y.shape() == shape{1, 1, 3, 3});
    CHECK(y.at(0, 0, 0, 0) == 1 + 2 + 6 + 7);
    CHECK(y.at(0, 0, 0, 2) == 5 + 10);
    CHECK(y.at(0, 0, 2, 0) == 21 + 22);
    CHECK(y.at(0, 0, 2, 2) == 25);
}

TEST_CASE("conv2d: kind, config and parameter specs") {
    conv2d<float> conv(8, 5, 2, padding::same);
    conv.configure(shape{3, 9, 9});
    CHECK(conv.kind() == "conv2d");
    const layer_config config = conv.config();
    REQUIRE(config.size() == 4);
    CHECK(config[0].first == "out_channels");
    CHECK(std::get<std::int64_t>(config[0].second) == 8);
    CHECK(config[1].first == "kernel");
    CHECK(std::get<std::int64_t>(config[1].second) == 5);
    CHECK(config[2].first == "stride");
    CHECK(std::get<std::int64_t>(config[2].second) == 2);
    CHECK(config[3].first == "padding");
    CHECK(std::get<std::string>(config[3].second) == "same");
    CHECK(std::get<std::string>(conv2d<float>(1, 1).config()[3].second) == "valid");

    const auto specs = conv.param_specs();
    REQUIRE(specs.size() == 2);
    CHECK(specs[0].name == "weight");
    CHECK(specs[0].shape == shape{8, 3, 5, 5});
    CHECK(specs[0].decayed);
    CHECK(specs[1].name == "bias");
    CHECK(specs[1].shape == shape{8});
    CHECK_FALSE(specs[1].decayed);

    CHECK(parse_padding("same") == padding::same);
    CHECK(parse_padding("valid") == padding::valid);
    CHECK_THROWS_AS(parse_padding("full"), argument_error);
}

TEST_CASE("conv2d: numerical gradient") {
    struct config {
        index_t out_channels, kernel, stride;
        padding pad;
        shape item;
    };
    const config configs[] = {
        {4, 3, 1, padding::valid, shape{3, 7, 6}},
        {2, 3, 1, padding::same, shape{2, 5, 5}},
        {3, 3, 2, padding::same, shape{2, 7, 8}},   // TensorFlow SAME, padding on the bottom/right only
        {2, 2, 1, padding::same, shape{1, 4, 5}},   // even kernel: asymmetric padding
        {3, 3, 2, padding::valid, shape{2, 9, 7}},
        {2, 5, 3, padding::same, shape{3, 4, 4}},   // kernel wider than the padded image steps
        {5, 1, 1, padding::valid, shape{4, 3, 3}},  // 1x1 convolution
    };
    for (const config& c : configs) {
        CAPTURE(c.item.str());
        CAPTURE(c.kernel);
        CAPTURE(c.stride);
        const auto report = testing::check_layer_gradients(
            [&] { return std::make_unique<conv2d<double>>(c.out_channels, c.kernel, c.stride, c.pad); }, c.item);
        CHECK(report.checked >= 70);
        CHECK(report.skipped_kinks == 0);  // a convolution is linear: no kinks anywhere
    }
}

TEST_CASE("conv2d: backward honours input_grad and param_grads") {
    bound_conv<double> conv(3, 3, 1, padding::same, shape{2, 5, 5}, 3);
    const auto x = random_tensor<double>(shape{2, 2, 5, 5}, 4);
    workspace<double> scratch;
    tensor<double> y;
    conv.layer.infer(x, y, scratch);
    const auto dy = random_tensor<double>(y.shape(), 5);

    tensor<double> dx(shape{1}, 42.0), cache;
    backward_context<double> params_only{scratch, false, true};
    conv.layer.backward(x, y, dy, dx, cache, params_only);
    CHECK(dx.shape() == shape{1});  // not touched
    CHECK(dx[0] == 42.0);
    const auto grads_after_one = conv.grads;
    CHECK(std::any_of(grads_after_one.begin(), grads_after_one.end(), [](double g) { return g != 0.0; }));

    backward_context<double> input_only{scratch, true, false};
    conv.layer.backward(x, y, dy, dx, cache, input_only);
    CHECK(dx.shape() == x.shape());
    CHECK(conv.grads == grads_after_one);  // not added to
}

TEST_CASE("conv2d: shape errors name the layer and the shapes") {
    CHECK(thrown_message([] { conv2d<float>(4, 3).configure(shape{28, 28}); }).find("conv2d: expected") !=
          std::string::npos);
    CHECK(thrown_message([] { conv2d<float>(4, 3).configure(shape{28, 28}); }).find("[28, 28]") !=
          std::string::npos);
    const std::string too_big = thrown_message([] { conv2d<float>(4, 5).configure(shape{3, 4, 9}); });
    CHECK(too_big.find("conv2d") != std::string::npos);
    CHECK(too_big.find("kernel 5") != std::string::npos);
    CHECK(too_big.find("[3, 4, 9]") != std::string::npos);
    CHECK(too_big.find("height 4") != std::string::npos);
    CHECK_NOTHROW(conv2d<float>(4, 5, 1, padding::same).configure(shape{3, 4, 9}));

    bound_conv<float> conv(2, 3, 1, padding::valid, shape{3, 5, 5}, 1);
    workspace<float> scratch;
    tensor<float> y;
    const std::string wrong_input =
        thrown_message([&] { conv.layer.infer(tensor<float>(shape{2, 1, 5, 5}), y, scratch); });
    CHECK(wrong_input.find("conv2d") != std::string::npos);
    CHECK(wrong_input.find("[3, 5, 5]") != std::string::npos);
    CHECK(wrong_input.find("[2, 1, 5, 5]") != std::string::npos);

    tensor<float> x(shape{2, 3, 5, 5}), dx, cache;
    conv.layer.infer(x, y, scratch);
    backward_context<float> ctx{scratch};
    CHECK_THROWS_AS(conv.layer.backward(x, y, tensor<float>(shape{2, 2, 4, 4}), dx, cache, ctx), shape_error);

    std::vector<float> too_few(5);
    CHECK_THROWS_AS(conv.layer.bind(too_few, too_few), shape_error);

    CHECK_THROWS_AS(conv2d<float>(0, 3), argument_error);
    CHECK_THROWS_AS(conv2d<float>(4, 0), argument_error);
    CHECK_THROWS_AS(conv2d<float>(4, 3, 0), argument_error);
}

TEST_CASE("conv2d: with 2 threads, two runs give bit-identical outputs and gradients") {
    thread_count_guard guard;
    const shape item{8, 16, 15};
    const auto x = random_tensor<float>(item.prepend(5), 21);  // 5 images: unequal blocks
    struct run_result {
        tensor<float> y, dx;
        std::vector<float> grads;
    };
    auto run = [&](int threads) {
        set_threads(threads);
        bound_conv<float> conv(16, 3, 1, padding::same, item, 22);
        workspace<float> scratch;
        run_result r;
        conv.layer.infer(x, r.y, scratch);
        const auto dy = random_tensor<float>(r.y.shape(), 23);
        tensor<float> cache;
        backward_context<float> ctx{scratch};
        conv.layer.backward(x, r.y, dy, r.dx, cache, ctx);
        conv.layer.backward(x, r.y, dy, r.dx, cache, ctx);  // accumulate twice
        r.grads = conv.grads;
        return r;
    };
    const run_result first = run(2), second = run(2), serial = run(1);
    CHECK(std::equal(first.y.span().begin(), first.y.span().end(), second.y.span().begin()));
    CHECK(std::equal(first.dx.span().begin(), first.dx.span().end(), second.dx.span().begin()));
    CHECK(first.grads == second.grads);
    // One thread sums the images in another grouping: equal up to rounding.
    for (std::size_t i = 0; i < first.grads.size(); ++i)
        CHECK_MESSAGE(first.grads[i] == doctest::Approx(serial.grads[i]).epsilon(1e-4).scale(10), "grad " << i);
}

TEST_CASE("conv2d: initialize draws He-normal weights from the seed and zeroes biases") {
    auto initial = [](std::uint64_t seed) {
        conv2d<double> conv(32, 3);
        conv.configure(shape{16, 5, 5});
        std::vector<double> params(32 * 16 * 9 + 32, 7.0), grads(params.size());
        conv.bind(params, grads);
        rng random(seed);
        conv.initialize(random);
        return params;
    };
    const auto a = initial(5), b = initial(5), c = initial(6);
    CHECK(a == b);
    CHECK(a != c);
    const std::size_t weights = 32 * 16 * 9;
    for (std::size_t i = weights; i < a.size(); ++i) CHECK(a[i] == 0.0);
    double sum = 0, sum_sq = 0;
    for (std::size_t i = 0; i < weights; ++i) {
        sum += a[i];
        sum_sq += a[i] * a[i];
    }
    const double n = static_cast<double>(weights);
    const double expected_std = std::sqrt(2.0 / (16 * 9));
    CHECK(std::abs(sum / n) < 0.1 * expected_std);
    CHECK(std::sqrt(sum_sq / n) == doctest::Approx(expected_std).epsilon(0.05));
}
