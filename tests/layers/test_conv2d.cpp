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

// Calls tap(n, o, oh, ow, c, i, j, ih, iw) for every product of the convolution's
// definition (conv2d.hpp): output (n, o, oh, ow) meets weight (o, c, i, j) at input pixel
// (ih, iw), taps that fall on the zero padding left out.
template <class Tap>
void for_each_tap(const shape& input, index_t out_channels, index_t kernel, index_t stride, padding pad,
                  const shape& out_item, Tap&& tap) {
    const index_t channels = input[1], height = input[2], width = input[3];
    const index_t top = expected_pad_before(height, kernel, stride, pad);
    const index_t left = expected_pad_before(width, kernel, stride, pad);
    for (index_t n = 0; n < input[0]; ++n)
        for (index_t o = 0; o < out_channels; ++o)
            for (index_t oh = 0; oh < out_item[1]; ++oh)
                for (index_t ow = 0; ow < out_item[2]; ++ow)
                    for (index_t c = 0; c < channels; ++c)
                        for (index_t i = 0; i < kernel; ++i)
                            for (index_t j = 0; j < kernel; ++j) {
                                const index_t ih = oh * stride + i - top, iw = ow * stride + j - left;
                                if (ih < 0 || ih >= height || iw < 0 || iw >= width) continue;
                                tap(n, o, oh, ow, c, i, j, ih, iw);
                            }
}

// Index of (a, b, c, d) in a row-major [*, B, C, D] array.
index_t flat(const shape& s, index_t a, index_t b, index_t c, index_t d) {
    return ((a * s[1] + b) * s[2] + c) * s[3] + d;
}

template <class T>
double as_double(const std::vector<T>& values, index_t i) {
    return static_cast<double>(values[static_cast<std::size_t>(i)]);
}

// The direct definition of the convolution, in double, output by output.
template <class T>
std::vector<testing::reference_sum> direct_convolution(const tensor<T>& x, const std::vector<T>& params,
                                                       index_t out_channels, index_t kernel, index_t stride,
                                                       padding pad, const shape& out_item) {
    const shape weight{out_channels, x.shape()[1], kernel, kernel}, y = out_item.prepend(x.batch());
    const index_t pixels = out_item[1] * out_item[2];
    std::vector<testing::reference_sum> r(static_cast<std::size_t>(y.count()));
    for (index_t i = 0; i < y.count(); ++i)
        r[static_cast<std::size_t>(i)].add(as_double(params, weight.count() + i / pixels % out_channels));  // bias
    for_each_tap(x.shape(), out_channels, kernel, stride, pad, out_item,
                 [&](index_t n, index_t o, index_t oh, index_t ow, index_t c, index_t i, index_t j, index_t ih,
                     index_t iw) {
                     r[static_cast<std::size_t>(flat(y, n, o, oh, ow))].add(
                         as_double(params, flat(weight, o, c, i, j)) * static_cast<double>(x.at(n, c, ih, iw)));
                 });
    return r;
}

// dL/dx, dL/dweight and dL/dbias of L = sum(y * g), by their definitions in double: dx
// sums g * weight, dweight g * x over the taps that meet there, dbias sums g. Parameter
// gradients are counted `passes` times, as that many backward calls add them up.
struct gradient_definition {
    std::vector<testing::reference_sum> dx, weight, bias;
};

template <class T>
gradient_definition conv_gradients(const tensor<T>& x, const tensor<T>& g, const std::vector<T>& params,
                                   index_t out_channels, index_t kernel, index_t stride, padding pad, double passes) {
    const shape weight{out_channels, x.shape()[1], kernel, kernel};
    gradient_definition d{std::vector<testing::reference_sum>(static_cast<std::size_t>(x.size())),
                          std::vector<testing::reference_sum>(static_cast<std::size_t>(weight.count())),
                          std::vector<testing::reference_sum>(static_cast<std::size_t>(out_channels))};
    for (index_t i = 0; i < g.size(); ++i)
        d.bias[static_cast<std::size_t>(i / (g.shape()[2] * g.shape()[3]) % out_channels)].add(passes * g[i]);
    for_each_tap(x.shape(), out_channels, kernel, stride, pad, g.shape().drop_front(),
                 [&](index_t n, index_t o, index_t oh, index_t ow, index_t c, index_t i, index_t j, index_t ih,
                     index_t iw) {
                     const double grad = g.at(n, o, oh, ow), input = x.at(n, c, ih, iw);
                     d.dx[static_cast<std::size_t>(flat(x.shape(), n, c, ih, iw))].add(
                         grad * as_double(params, flat(weight, o, c, i, j)));
                     d.weight[static_cast<std::size_t>(flat(weight, o, c, i, j))].add(passes * grad * input);
                 });
    return d;
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
    CHECK(conv2d<float>(4, 5, 1, padding::same).configure(shape{3, 4, 9}) == shape{4, 4, 9});

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

// Sizes whose forward and backward passes split the images over two blocks (see
// conv2d::parallel_grain), one per lowering, each with an odd number of images (unequal
// blocks).
struct threaded_config {
    std::string lowering;
    index_t out_channels, kernel, stride;
    padding pad;
    shape item;
    index_t images;
};
const threaded_config threaded_configs[] = {
    {"channel-last, Winograd", 16, 3, 1, padding::same, shape{8, 16, 15}, 5},
    {"channel-last, direct", 8, 5, 1, padding::same, shape{4, 12, 11}, 7},
    {"im2col", 16, 3, 2, padding::same, shape{3, 32, 31}, 5},
};

TEST_CASE("conv2d: the two-block backward equals one thread's blocks added in order, and its definition in double") {
    testing::thread_count_guard guard;
    for (const threaded_config& c : threaded_configs) {
        CAPTURE(c.lowering);
        const auto x = random_tensor<float>(c.item.prepend(c.images), 21);
        auto layer = [&] {
            return std::make_unique<bound_conv<float>>(c.out_channels, c.kernel, c.stride, c.pad, c.item, 22);
        };
        auto run = [&](int threads) {
            set_threads(threads);
            const auto conv = layer();
            const long long weights = static_cast<long long>(conv->params.size()) - c.out_channels;
            REQUIRE(c.images * weights * conv->output_item.drop_front().count() >= 2 * conv2d<float>::parallel_grain);
            return testing::forward_backward_twice(*conv, x, 23);
        };
        const auto two = run(2), one = run(1);
        // Each image's output and input gradient are computed by one thread alone, by the
        // same operations whichever thread it is.
        CHECK(std::equal(two.y.span().begin(), two.y.span().end(), one.y.span().begin(), one.y.span().end()));
        CHECK(std::equal(two.dx.span().begin(), two.dx.span().end(), one.dx.span().begin(), one.dx.span().end()));

        // The parameter gradients: block b (images [N b / 2, N (b + 1) / 2)) sums its own
        // partial as one thread does for its images alone; two backward calls add the
        // partials in block order: ((p0 + p1) + p0) + p1, bit for bit.
        const auto g = random_tensor<float>(layer()->output_item.prepend(c.images), 23);
        auto one_thread_partial = [&](index_t first, index_t last) {
            set_threads(1);
            const auto conv = layer();
            tensor<float> xs(c.item.prepend(last - first)), gs(conv->output_item.prepend(last - first)), y, dx, cache;
            std::copy_n(x.item(first).data(), xs.size(), xs.data());
            std::copy_n(g.item(first).data(), gs.size(), gs.data());
            workspace<float> scratch;
            backward_context<float> ctx{scratch};
            conv->layer.infer(xs, y, scratch);
            conv->layer.backward(xs, y, gs, dx, cache, ctx);
            return conv->grads;
        };
        const auto p0 = one_thread_partial(0, c.images / 2), p1 = one_thread_partial(c.images / 2, c.images);
        std::vector<float> in_block_order(p0.size());
        for (std::size_t i = 0; i < p0.size(); ++i) {
            float sum = p0[i] + p1[i];
            sum += p0[i];
            in_block_order[i] = sum + p1[i];
        }
        CHECK(two.grads == in_block_order);

        // Both against the definitions, in double: a float sum of K products may be off by
        // 2 (K + 2) 2^-24 sum|terms| (see test_gemm); dx sums Cout k^2 products, dweight
        // and dbias 2 N Ho Wo (two backward calls).
        const auto conv = layer();
        const auto want = conv_gradients(x, g, conv->params, c.out_channels, c.kernel, c.stride, c.pad, 2);
        auto float_bound = [](index_t terms) { return 2.0 * static_cast<double>(terms + 2) * 0x1p-24; };
        const index_t parameter_terms = 2 * c.images * conv->output_item.drop_front().count();
        const auto weights = static_cast<std::ptrdiff_t>(want.weight.size());
        for (const auto* result : {&two, &one}) {
            CHECK(testing::close_to_reference(result->dx, want.dx, float_bound(c.out_channels * c.kernel * c.kernel)));
            tensor<float> dweight(shape{weights}), dbias(shape{c.out_channels});
            std::copy(result->grads.begin(), result->grads.begin() + weights, dweight.data());
            std::copy(result->grads.begin() + weights, result->grads.end(), dbias.data());
            CHECK(testing::close_to_reference(dweight, want.weight, float_bound(parameter_terms)));
            CHECK(testing::close_to_reference(dbias, want.bias, float_bound(parameter_terms)));
        }
    }
}

TEST_CASE("conv2d: numerical gradient of the two-block backward") {
    testing::thread_count_guard guard;
    set_threads(2);
    for (const threaded_config& c : threaded_configs) {
        CAPTURE(c.lowering);
        testing::gradient_check_options options;
        options.batch = c.images;
        options.max_points = 60;
        const auto report = testing::check_layer_gradients(
            [&] { return std::make_unique<conv2d<double>>(c.out_channels, c.kernel, c.stride, c.pad); }, c.item,
            options);
        CHECK(report.checked >= 2 * options.max_points + c.out_channels);
        CHECK(report.skipped_kinks == 0);
    }
}

// Sizes whose forward pass on two threads cuts even a single image in two (its work is
// at least 2 x conv2d::parallel_grain): every lowering, both Winograd tiles, by tiles
// (rows) and, with few tiles and two panels of output channels or more, by channels;
// unrolled by output channels or, with few of them, by rows; and the small-window
// first layer of paper-mnist, which is unrolled.
const threaded_config image_split_configs[] = {
    {"channel-last, Winograd 4x4", 16, 3, 1, padding::same, shape{8, 16, 15}, 1},
    {"channel-last, Winograd 2x2", 32, 3, 1, padding::valid, shape{16, 11, 9}, 1},
    {"channel-last, Winograd 4x4 by channels", 64, 3, 1, padding::valid, shape{8, 14, 14}, 1},
    {"channel-last, Winograd 2x2 by channels", 64, 3, 1, padding::valid, shape{16, 10, 10}, 1},
    {"channel-last, direct", 16, 5, 1, padding::same, shape{8, 13, 11}, 1},
    {"channel-last, direct by channels", 48, 5, 1, padding::same, shape{8, 5, 5}, 1},
    {"im2col, stride 2, by channels", 32, 3, 2, padding::same, shape{3, 33, 31}, 1},
    {"im2col, stride 2, by rows", 8, 3, 2, padding::same, shape{3, 65, 63}, 1},
    {"im2col, small window", 32, 3, 1, padding::valid, shape{1, 28, 28}, 1},
};

TEST_CASE("conv2d: 1 and 3 images forward on 2 threads, images cut in parts, equal 1 thread bit for bit") {
    testing::thread_count_guard guard;
    for (const threaded_config& c : image_split_configs)
        for (index_t images : {1, 3}) {
            CAPTURE(c.lowering);
            CAPTURE(images);
            const bound_conv<float> conv(c.out_channels, c.kernel, c.stride, c.pad, c.item, 31);
            const long long weights = static_cast<long long>(conv.params.size()) - c.out_channels;
            REQUIRE(weights * conv.output_item.drop_front().count() >= 2 * conv2d<float>::parallel_grain);
            const auto x = random_tensor<float>(c.item.prepend(images), 32);
            // Each output part is computed by one thread from the input rows it reads, by
            // the operations the whole image uses: the same values, with and without the ReLU.
            auto run = [&](int threads, bool relu) {
                set_threads(threads);
                workspace<float> scratch;
                tensor<float> y;
                if (relu) REQUIRE(conv.layer.infer_then_relu(x, y, scratch));
                else conv.layer.infer(x, y, scratch);
                return y;
            };
            for (bool relu : {false, true}) {
                CAPTURE(relu);
                const auto one = run(1, relu), two = run(2, relu);
                CHECK(std::equal(two.span().begin(), two.span().end(), one.span().begin(), one.span().end()));
            }
            const auto want =
                direct_convolution(x, conv.params, c.out_channels, c.kernel, c.stride, c.pad, conv.output_item);
            CHECK(testing::close_to_reference(run(2, false), want, 1e-5));
        }
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
