#include "nnmark/kernels/conv_nhwc.hpp"

#include "nnmark/core/rng.hpp"

#include "../support/rounding.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

// One valid stride-1 convolution: a channel-last input [in_h][in_w][in_ch] and a
// k x k kernel to out_ch channels.
struct problem {
    index_t in_ch, in_h, in_w, k, out_ch;

    index_t out_h() const { return in_h - k + 1; }
    index_t out_w() const { return in_w - k + 1; }
    index_t depth() const { return k * k * in_ch; }
    std::string str() const {
        return std::string("Cin ") + std::to_string(in_ch) + " " + std::to_string(in_h) + "x" + std::to_string(in_w) +
               " k" + std::to_string(k) + " Cout " + std::to_string(out_ch);
    }
};

// Odd channel counts on both sides of a SIMD register and of the 8x8 transpose, output
// rows shorter and longer than a register tile (MR = 14 floats with AVX-512), batch-1
// sized images.
std::vector<problem> problems() {
    std::vector<problem> all;
    for (index_t in_ch : {1, 3, 8, 17, 33})
        for (index_t out_ch : {1, 7, 16, 33})
            for (index_t k : {1, 2, 3, 5})
                for (index_t in_w : {index_t(5), index_t(9), index_t(17 + 4), index_t(33)})
                    if (in_w >= k) all.push_back({in_ch, k + 2, in_w, k, out_ch});
    return all;
}

template <class T>
void check_forward(const problem& p, rng& random) {
    CAPTURE(p.str());
    const auto image = normal_values<T>(channel_last_size<T>(p.in_h, p.in_w, p.in_ch), random);
    const auto weight = normal_values<T>(p.out_ch * p.depth(), random);
    const auto bias = normal_values<T>(p.out_ch, random);
    std::vector<T> packed(static_cast<std::size_t>(conv_packed_size<T>(p.out_ch, p.depth())));
    pack_conv_weights(weight.data(), p.out_ch, p.in_ch, p.k, conv_role::forward, packed.data());

    const std::size_t outputs = static_cast<std::size_t>(p.out_ch * p.out_h() * p.out_w());
    std::vector<T> fast(outputs, T(-7));
    conv_forward_nhwc(image.data(), p.in_h, p.in_w, p.in_ch, p.k, packed.data(), p.out_ch, bias.data(), fast.data());
    std::vector<double> exact(outputs), bound(outputs);
    conv_forward_nhwc_reference(as_double(image).data(), p.in_h, p.in_w, p.in_ch, p.k, as_double(weight).data(),
                                p.out_ch, as_double(bias).data(), exact.data());
    conv_forward_nhwc_reference(magnitudes(as_double(image)).data(), p.in_h, p.in_w, p.in_ch, p.k,
                                magnitudes(as_double(weight)).data(), p.out_ch, magnitudes(as_double(bias)).data(),
                                bound.data());
    CHECK(within_rounding(fast, exact, bound));

    // Through a ReLU: max(0, the same sums), as the relu layer computes it.
    conv_forward_nhwc(image.data(), p.in_h, p.in_w, p.in_ch, p.k, packed.data(), p.out_ch, bias.data(), fast.data(),
                      true);
    std::vector<T> unclipped(outputs);
    conv_forward_nhwc(image.data(), p.in_h, p.in_w, p.in_ch, p.k, packed.data(), p.out_ch, bias.data(), unclipped.data());
    bool clipped = true;
    for (std::size_t i = 0; i < outputs; ++i) clipped = clipped && fast[i] == (unclipped[i] > T(0) ? unclipped[i] : T(0));
    CHECK(clipped);

    // Without a bias the same sums, nothing added.
    conv_forward_nhwc(image.data(), p.in_h, p.in_w, p.in_ch, p.k, packed.data(), p.out_ch, static_cast<const T*>(nullptr),
                      fast.data());
    conv_forward_nhwc_reference(as_double(image).data(), p.in_h, p.in_w, p.in_ch, p.k, as_double(weight).data(),
                                p.out_ch, static_cast<const double*>(nullptr), exact.data());
    CHECK(within_rounding(fast, exact, bound));
}

template <class T>
void check_weight_grad(const problem& p, rng& random) {
    CAPTURE(p.str());
    // The image's tail is not zero here: the lanes that read it must be discarded.
    const auto image = normal_values<T>(channel_last_size<T>(p.in_h, p.in_w, p.in_ch), random);
    const auto grad = normal_values<T>(p.out_ch * p.out_h() * p.out_w(), random);
    const auto start = normal_values<T>(p.out_ch * p.depth(), random);
    std::vector<T> fast = start;
    conv_weight_grad_nhwc(image.data(), p.in_h, p.in_w, p.in_ch, p.k, grad.data(), p.out_ch, fast.data());
    std::vector<double> exact = as_double(start), bound = magnitudes(as_double(start));
    conv_weight_grad_nhwc_reference(as_double(image).data(), p.in_h, p.in_w, p.in_ch, p.k, as_double(grad).data(),
                                    p.out_ch, exact.data());
    conv_weight_grad_nhwc_reference(magnitudes(as_double(image)).data(), p.in_h, p.in_w, p.in_ch, p.k,
                                    magnitudes(as_double(grad)).data(), p.out_ch, bound.data());
    CHECK(within_rounding(fast, exact, bound));
}

}  // namespace

TEST_CASE("to_channel_last: transposes and borders like its definition, then writes the zero tail") {
    rng random(5);
    int cases = 0;
    for (index_t channels : {1, 3, 8, 9, 17})
        for (index_t height : {1, 4, 9})
            for (index_t width : {1, 7, 8, 19})
                for (index_t top : {0, 2})
                    for (index_t left : {0, 1, 3})
                        for (index_t extra : {-1, 0, 2}) {  // dst smaller than, as large as, larger than the image
                            const index_t dst_h = std::max<index_t>(1, height + top + extra);
                            const index_t dst_w = std::max<index_t>(1, width + left + extra);
                            CAPTURE(channels);
                            CAPTURE(height);
                            CAPTURE(width);
                            CAPTURE(top);
                            CAPTURE(left);
                            CAPTURE(extra);
                            const auto src = normal_values<float>(channels * height * width, random);
                            std::vector<float> dst(static_cast<std::size_t>(channel_last_size<float>(dst_h, dst_w, channels)),
                                                   std::nanf(""));
                            to_channel_last(src.data(), channels, height, width, top, left, dst_h, dst_w, dst.data());
                            bool same = true;
                            for (index_t y = 0; y < dst_h; ++y)
                                for (index_t x = 0; x < dst_w; ++x)
                                    for (index_t c = 0; c < channels; ++c) {
                                        const index_t h = y - top, w = x - left;
                                        const bool inside = h >= 0 && h < height && w >= 0 && w < width;
                                        const float expected = inside ? src[static_cast<std::size_t>((c * height + h) * width + w)] : 0.0f;
                                        same = same && dst[static_cast<std::size_t>((y * dst_w + x) * channels + c)] == expected;
                                    }
                            for (std::size_t i = static_cast<std::size_t>(dst_h * dst_w * channels); i < dst.size(); ++i)
                                same = same && dst[i] == 0.0f;
                            CHECK(same);
                            ++cases;
                        }
    CHECK(cases == 1080);
}

TEST_CASE_TEMPLATE("conv_forward_nhwc equals the reference on odd sizes", T, float, double) {
    rng random(11);
    for (const problem& p : problems()) check_forward<T>(p, random);
}

// The parts threads share an image in (conv2d's forward), both ways: weights packed in
// ranges of input channels and output rows in runs, each run computed from a copy of
// only the input rows it reads (the others NaN, so that a read past them shows); or
// weights packed and the image convolved in runs of whole NR-column panels of output
// channels. Either way together they must give the whole image's output bit for bit.
TEST_CASE_TEMPLATE("conv_forward_nhwc by runs of output rows or of channels equals the whole image bit for bit", T,
                   float, double) {
    constexpr index_t nr = detail::packed_gemm::tile<T>::nr;
    rng random(14);
    for (const problem& p : problems())
        for (int parts : {2, 3}) {
            CAPTURE(p.str());
            CAPTURE(parts);
            const index_t in_h = p.in_h + 2 * (parts - 1);  // so that every part has a row
            const auto planes = normal_values<T>(p.in_ch * in_h * p.in_w, random);
            const auto weight = normal_values<T>(p.out_ch * p.depth(), random);
            const auto bias = normal_values<T>(p.out_ch, random);
            const index_t out_h = in_h - p.k + 1, plane = out_h * p.out_w(), depth = p.depth();
            const auto size = static_cast<std::size_t>(channel_last_size<T>(in_h, p.in_w, p.in_ch));

            std::vector<T> image(size), packed(static_cast<std::size_t>(conv_packed_size<T>(p.out_ch, depth)));
            to_channel_last(planes.data(), p.in_ch, in_h, p.in_w, 0, 0, in_h, p.in_w, image.data());
            pack_conv_weights(weight.data(), p.out_ch, p.in_ch, p.k, conv_role::forward, packed.data());
            std::vector<T> whole(static_cast<std::size_t>(p.out_ch * plane));
            conv_forward_nhwc(image.data(), in_h, p.in_w, p.in_ch, p.k, packed.data(), p.out_ch, bias.data(),
                              whole.data(), true);

            auto panels = [&](int c) {
                const index_range r = chunk_of((p.out_ch + nr - 1) / nr, c, parts);
                return index_range{r.first * nr, std::min(r.last * nr, p.out_ch)};
            };
            for (bool by_channels : {false, true}) {
                CAPTURE(by_channels);
                std::vector<T> parted_packed(packed.size(), std::nan(""));
                for (int c = 0; c < parts; ++c)
                    pack_conv_weights(weight.data(), p.out_ch, p.in_ch, p.k, conv_role::forward, parted_packed.data(),
                                      by_channels ? index_range{0, p.in_ch} : chunk_of(p.in_ch, c, parts),
                                      by_channels ? panels(c) : index_range{0, p.out_ch});
                std::vector<T> parted(whole.size(), T(-7));
                for (int c = 0; c < parts; ++c) {
                    const index_range rows = by_channels ? index_range{0, out_h} : chunk_of(out_h, c, parts);
                    const index_range channels = by_channels ? panels(c) : index_range{0, p.out_ch};
                    std::vector<T> rows_only(size, std::nan(""));
                    to_channel_last_rows(planes.data(), p.in_ch, in_h, p.in_w, 0, 0, p.in_w,
                                         {rows.first, rows.last + p.k - 1}, rows_only.data());
                    if (channels.size() > 0)
                        conv_forward_nhwc(rows_only.data(), in_h, p.in_w, p.in_ch, p.k,
                                          parted_packed.data() + channels.first * depth, channels.size(),
                                          bias.data() + channels.first, parted.data() + channels.first * plane, true,
                                          rows);
                }
                CHECK(parted == whole);
            }
        }
}

TEST_CASE_TEMPLATE("conv_weight_grad_nhwc adds what the reference adds, on odd sizes", T, float, double) {
    rng random(12);
    for (const problem& p : problems()) check_weight_grad<T>(p, random);
}

// The input gradient of y = conv(x, w) is the valid correlation of the gradient, bordered
// by k - 1, with the flipped weights: <conv(x), g> == <x, that> for every x and g.
TEST_CASE("conv_role::input_gradient packs the adjoint of the forward convolution") {
    rng random(13);
    for (const problem& p : problems()) {
        CAPTURE(p.str());
        const auto x_planes = normal_values<double>(p.in_ch * p.in_h * p.in_w, random);
        const auto g = normal_values<double>(p.out_ch * p.out_h() * p.out_w(), random);
        const auto weight = normal_values<double>(p.out_ch * p.depth(), random);

        std::vector<double> x(static_cast<std::size_t>(channel_last_size<double>(p.in_h, p.in_w, p.in_ch)));
        to_channel_last(x_planes.data(), p.in_ch, p.in_h, p.in_w, 0, 0, p.in_h, p.in_w, x.data());
        std::vector<double> packed(static_cast<std::size_t>(conv_packed_size<double>(p.out_ch, p.depth())));
        pack_conv_weights(weight.data(), p.out_ch, p.in_ch, p.k, conv_role::forward, packed.data());
        std::vector<double> y(g.size());
        conv_forward_nhwc(x.data(), p.in_h, p.in_w, p.in_ch, p.k, packed.data(), p.out_ch,
                          static_cast<const double*>(nullptr), y.data());

        const index_t border = p.k - 1, bordered_h = p.in_h + border, bordered_w = p.in_w + border;
        std::vector<double> bordered(static_cast<std::size_t>(channel_last_size<double>(bordered_h, bordered_w, p.out_ch)));
        to_channel_last(g.data(), p.out_ch, p.out_h(), p.out_w(), border, border, bordered_h, bordered_w,
                        bordered.data());
        std::vector<double> flipped(static_cast<std::size_t>(conv_packed_size<double>(p.in_ch, p.k * p.k * p.out_ch)));
        pack_conv_weights(weight.data(), p.out_ch, p.in_ch, p.k, conv_role::input_gradient, flipped.data());
        std::vector<double> dx(x_planes.size());
        conv_forward_nhwc(bordered.data(), bordered_h, bordered_w, p.out_ch, p.k, flipped.data(), p.in_ch,
                          static_cast<const double*>(nullptr), dx.data());

        double y_dot_g = 0, x_dot_dx = 0, scale = 0;
        for (std::size_t i = 0; i < g.size(); ++i) y_dot_g += y[i] * g[i], scale += std::abs(y[i] * g[i]);
        for (std::size_t i = 0; i < dx.size(); ++i) x_dot_dx += x_planes[i] * dx[i];
        CHECK(std::abs(y_dot_g - x_dot_dx) <= 1e-12 * (scale + 1));
    }
}
