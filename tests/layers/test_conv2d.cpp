#include "nnmark/layers/conv2d.hpp"

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
#include <variant>
#include <vector>

using namespace nnmark;
using testing::contains;
using testing::error_message;
using testing::random_tensor;

namespace {

// A conv2d with its own buffers (see layer_with_buffers), with biases moved off zero so
// that forward tests see them.
template <class T>
struct bound_conv : testing::layer_with_buffers<conv2d, T> {
    bound_conv(index_t out_channels, index_t kernel, index_t stride, padding pad, const shape& input_item,
               std::uint64_t seed)
        : testing::layer_with_buffers<conv2d, T>(input_item, seed, out_channels, kernel, stride, pad) {
        for (index_t o = 0; o < out_channels; ++o)
            this->params[this->params.size() - 1 - static_cast<std::size_t>(o)] += T(0.5);
    }
};

// Padding before the first pixel, written out from the definitions in conv2d.hpp.
index_t expected_pad_before(index_t extent, index_t kernel, index_t stride, padding pad) {
    if (pad == padding::valid) return 0;
    const index_t out = (extent + stride - 1) / stride;
    const index_t total = std::max<index_t>((out - 1) * stride + kernel - extent, 0);
    return total / 2;
}

// The direct definition of the convolution, in double, output by output.
template <class T>
std::vector<testing::reference_sum> direct_convolution(const tensor<T>& x, const std::vector<T>& params,
                                                       index_t out_channels, index_t kernel, index_t stride,
                                                       padding pad, const shape& out_item) {
    const index_t channels = x.shape()[1], height = x.shape()[2], width = x.shape()[3];
    const index_t out_h = out_item[1], out_w = out_item[2];
    const index_t top = expected_pad_before(height, kernel, stride, pad);
    const index_t left = expected_pad_before(width, kernel, stride, pad);
    auto weight = [&](index_t o, index_t c, index_t i, index_t j) {
        return static_cast<double>(params[static_cast<std::size_t>(((o * channels + c) * kernel + i) * kernel + j)]);
    };
    const std::size_t bias_offset = static_cast<std::size_t>(out_channels * channels * kernel * kernel);
    std::vector<testing::reference_sum> r;
    for (index_t n = 0; n < x.batch(); ++n)
        for (index_t o = 0; o < out_channels; ++o)
            for (index_t oh = 0; oh < out_h; ++oh)
                for (index_t ow = 0; ow < out_w; ++ow) {
                    testing::reference_sum sum;
                    sum.add(static_cast<double>(params[bias_offset + static_cast<std::size_t>(o)]));
                    for (index_t c = 0; c < channels; ++c)
                        for (index_t i = 0; i < kernel; ++i)
                            for (index_t j = 0; j < kernel; ++j) {
                                const index_t ih = oh * stride + i - top, iw = ow * stride + j - left;
                                if (ih < 0 || ih >= height || iw < 0 || iw >= width) continue;
                                sum.add(weight(o, c, i, j) * static_cast<double>(x.at(n, c, ih, iw)));
                            }
                    r.push_back(sum);
                }
    return r;
}

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
                            CHECK_MESSAGE(testing::close_to_reference(y, expected, tolerance),
                                          "Cin " << channels << " Cout " << out_channels << " " << height << "x"
                                                 << width << " k" << kernel << " s" << stride << " "
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
    CHECK(conv.config() == layer_config{{"out_channels", std::int64_t{8}},
                                        {"kernel", std::int64_t{5}},
                                        {"stride", std::int64_t{2}},
                                        {"padding", std::string("same")}});
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
        // Windows of 32 values or more at stride 1: the channel-last lowering; 3x3 ones
        // by Winograd's small tile (under 12 outputs a side) and large tile.
        {3, 3, 1, padding::valid, shape{5, 6, 5}},
        {2, 3, 1, padding::same, shape{4, 5, 4}},
        {2, 3, 1, padding::same, shape{4, 13, 12}},
        {2, 2, 1, padding::same, shape{9, 4, 3}},  // even kernel, asymmetric padding
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
    testing::check_backward_flags(conv, random_tensor<double>(shape{2, 2, 5, 5}, 4),
                                  random_tensor<double>(shape{2, 3, 5, 5}, 5));
}

TEST_CASE("conv2d: shape errors name the layer and the shapes") {
    const std::string not_an_image = error_message<shape_error>([] { conv2d<float>(4, 3).configure(shape{28, 28}); });
    CHECK(contains(not_an_image, "conv2d: expected"));
    CHECK(contains(not_an_image, "[28, 28]"));
    const std::string too_big = error_message<shape_error>([] { conv2d<float>(4, 5).configure(shape{3, 4, 9}); });
    CHECK(contains(too_big, "conv2d"));
    CHECK(contains(too_big, "kernel 5"));
    CHECK(contains(too_big, "[3, 4, 9]"));
    CHECK(contains(too_big, "height 4"));
    CHECK_NOTHROW(conv2d<float>(4, 5, 1, padding::same).configure(shape{3, 4, 9}));

    bound_conv<float> conv(2, 3, 1, padding::valid, shape{3, 5, 5}, 1);
    workspace<float> scratch;
    tensor<float> y;
    const std::string wrong_input =
        error_message<shape_error>([&] { conv.layer.infer(tensor<float>(shape{2, 1, 5, 5}), y, scratch); });
    CHECK(contains(wrong_input, "conv2d"));
    CHECK(contains(wrong_input, "[3, 5, 5]"));
    CHECK(contains(wrong_input, "[2, 1, 5, 5]"));

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
    testing::thread_count_guard guard;
    const shape item{8, 16, 15};
    const auto x = random_tensor<float>(item.prepend(5), 21);  // 5 images: unequal blocks
    auto run = [&](int threads) {
        set_threads(threads);
        bound_conv<float> conv(16, 3, 1, padding::same, item, 22);
        return testing::forward_backward_twice(conv, x, 23);
    };
    const auto first = run(2), second = run(2), serial = run(1);
    CHECK(std::equal(first.y.span().begin(), first.y.span().end(), second.y.span().begin()));
    CHECK(std::equal(first.dx.span().begin(), first.dx.span().end(), second.dx.span().begin()));
    CHECK(first.grads == second.grads);
    // One thread sums the images in another grouping: equal up to rounding.
    for (std::size_t i = 0; i < first.grads.size(); ++i)
        CHECK_MESSAGE(first.grads[i] == doctest::Approx(serial.grads[i]).epsilon(1e-4).scale(10), "grad " << i);
}

TEST_CASE("conv2d: initialize draws He-normal weights from the seed and zeroes biases") {
    auto initial = [](std::uint64_t seed) {
        return testing::layer_with_buffers<conv2d, double>(shape{16, 5, 5}, seed, 32, 3).params;
    };
    const auto a = initial(5), b = initial(5), c = initial(6);
    CHECK(a == b);
    CHECK(a != c);
    testing::check_he_normal_weights_zero_biases(a, 32 * 16 * 9, 16 * 9);
}
