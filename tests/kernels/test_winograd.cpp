#include "nnmark/kernels/winograd.hpp"

#include "nnmark/core/rng.hpp"

#include "../support/rounding.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace nnmark;
using namespace nnmark::testing;

// Named apart from test_conv_nhwc.cpp's helpers: the room's tests build as one unit.
namespace winograd_checks {

// A 3x3 valid convolution of in_ch channels to out_ch, out_h x out_w outputs.
struct problem {
    index_t in_ch, out_ch, out_h, out_w;

    index_t in_h() const { return out_h + 2; }
    index_t in_w() const { return out_w + 2; }
    std::string str() const {
        return "Cin " + std::to_string(in_ch) + " Cout " + std::to_string(out_ch) + " out " + std::to_string(out_h) +
               "x" + std::to_string(out_w);
    }
};

// Channel counts on both sides of a SIMD register; output sides that are and are not
// multiples of the tile; one tile; several bands of tiles, the last one short, and
// bands that start inside a row of tiles (bands of 56 tiles with AVX-512: out 45x5 and
// 3x130 have 69 and 130 tiles of 2x2, out 97x13 has 100 tiles of 4x4).
std::vector<problem> problems() {
    std::vector<problem> all;
    for (index_t in_ch : {1, 3, 8, 17, 33})
        for (index_t out_ch : {1, 7, 16, 33})
            for (auto [out_h, out_w] : {std::pair<index_t, index_t>{1, 1}, {2, 2}, {3, 8}, {7, 5}, {45, 5}, {3, 130}, {97, 13}})
                all.push_back({in_ch, out_ch, out_h, out_w});
    return all;
}

// The image as conv3x3_winograd reads it: channel-last, widened by zeros to whole tiles.
template <class T>
std::vector<T> winograd_input(const std::vector<T>& planes, const problem& p, winograd_tile tile) {
    const index_t h = tile.input_extent(p.out_h), w = tile.input_extent(p.out_w);
    std::vector<T> image(static_cast<std::size_t>(channel_last_size<T>(h, w, p.in_ch)));
    to_channel_last(planes.data(), p.in_ch, p.in_h(), p.in_w(), 0, 0, h, w, image.data());
    return image;
}

template <class T>
std::vector<T> channel_last_of(const std::vector<T>& planes, const problem& p) {
    std::vector<T> image(static_cast<std::size_t>(channel_last_size<T>(p.in_h(), p.in_w(), p.in_ch)));
    to_channel_last(planes.data(), p.in_ch, p.in_h(), p.in_w(), 0, 0, p.in_h(), p.in_w(), image.data());
    return image;
}

// conv3x3_winograd of `planes` by weights transformed for `role`; the scratch and the
// output start as NaN and -7, so that nothing stale can pass.
template <class T>
std::vector<T> winograd_conv(winograd_tile tile, const std::vector<T>& planes, const problem& p,
                             const std::vector<T>& weight, conv_role role, const T* bias, bool relu) {
    const index_t weight_out = role == conv_role::forward ? p.out_ch : p.in_ch;
    const index_t weight_in = role == conv_role::forward ? p.in_ch : p.out_ch;
    std::vector<T> u(static_cast<std::size_t>(winograd_weights_size<T>(tile, p.in_ch, p.out_ch)), std::nan(""));
    winograd_weights(tile, weight.data(), weight_out, weight_in, role, u.data());
    std::vector<T> scratch(
        static_cast<std::size_t>(winograd_scratch_size<T>(tile, p.out_h, p.out_w, p.in_ch, p.out_ch)), std::nan(""));
    std::vector<T> out(static_cast<std::size_t>(p.out_ch * p.out_h * p.out_w), T(-7));
    conv3x3_winograd(tile, winograd_input(planes, p, tile).data(), p.out_h, p.out_w, p.in_ch, u.data(), p.out_ch, bias,
                     out.data(), relu, scratch.data());
    return out;
}

// The definition's value and magnitude bound of the same convolution, in double, from
// weights [out_ch][in_ch][3][3].
struct reference {
    std::vector<double> exact, bound;

    template <class T>
    reference(const std::vector<T>& planes, const problem& p, const std::vector<T>& weight, const T* bias)
        : exact(static_cast<std::size_t>(p.out_ch * p.out_h * p.out_w)), bound(exact.size()) {
        const auto image = as_double(channel_last_of(planes, p));
        const auto w = as_double(weight);
        std::vector<double> b(static_cast<std::size_t>(p.out_ch), 0.0);
        if (bias) b.assign(bias, bias + p.out_ch);
        conv_forward_nhwc_reference(image.data(), p.in_h(), p.in_w(), p.in_ch, 3, w.data(), p.out_ch, b.data(),
                                    exact.data());
        conv_forward_nhwc_reference(magnitudes(image).data(), p.in_h(), p.in_w(), p.in_ch, 3, magnitudes(w).data(),
                                    p.out_ch, magnitudes(b).data(), bound.data());
    }
};

// The transforms add and subtract up to 4 input values, and the weights' sums scaled
// by up to 9/4, before the products: the rounding may be a few times the direct sum's.
// (These draws pass at 1; 4 leaves room without letting a wrong transform through.)
constexpr double winograd_slack = 4;

template <class T>
void check_forward(winograd_tile tile, const problem& p, rng& random) {
    CAPTURE(tile.outputs);
    CAPTURE(p.str());
    const auto planes = normal_values<T>(p.in_ch * p.in_h() * p.in_w(), random);
    const auto weight = normal_values<T>(p.out_ch * p.in_ch * 9, random);
    const auto bias = normal_values<T>(p.out_ch, random);

    const auto fast = winograd_conv(tile, planes, p, weight, conv_role::forward, bias.data(), false);
    const reference want(planes, p, weight, bias.data());
    CHECK(within_rounding(fast, want.exact, want.bound, winograd_slack));

    // Through a ReLU: max(0, the same values), as the relu layer computes it.
    const auto clipped = winograd_conv(tile, planes, p, weight, conv_role::forward, bias.data(), true);
    bool relu_applied = true;
    for (std::size_t i = 0; i < fast.size(); ++i)
        relu_applied = relu_applied && clipped[i] == (fast[i] > T(0) ? fast[i] : T(0));
    CHECK(relu_applied);

    // Without a bias nothing is added.
    const auto unbiased = winograd_conv(tile, planes, p, weight, conv_role::forward, static_cast<const T*>(nullptr), false);
    const reference want_unbiased(planes, p, weight, static_cast<const T*>(nullptr));
    CHECK(within_rounding(unbiased, want_unbiased.exact, want_unbiased.bound, winograd_slack));
}

// conv_role::input_gradient: winograd_weights gets a layer's weights [O][I][3][3] with
// O = p.in_ch (the layer's outputs are the product's inputs) and I = p.out_ch, and the
// product must be the direct convolution by flipped[i][o][ki][kj] = weight[o][i][2-ki][2-kj].
template <class T>
void check_input_gradient_role(winograd_tile tile, const problem& p, rng& random) {
    CAPTURE(tile.outputs);
    CAPTURE(p.str());
    const auto planes = normal_values<T>(p.in_ch * p.in_h() * p.in_w(), random);
    const auto weight = normal_values<T>(p.in_ch * p.out_ch * 9, random);  // [p.in_ch][p.out_ch][3][3]
    std::vector<T> flipped(weight.size());
    for (index_t o = 0; o < p.in_ch; ++o)
        for (index_t i = 0; i < p.out_ch; ++i)
            for (index_t tap = 0; tap < 9; ++tap)
                flipped[static_cast<std::size_t>((i * p.in_ch + o) * 9 + tap)] =
                    weight[static_cast<std::size_t>((o * p.out_ch + i) * 9 + 8 - tap)];

    const auto fast = winograd_conv(tile, planes, p, weight, conv_role::input_gradient, static_cast<const T*>(nullptr), false);
    const reference want(planes, p, flipped, static_cast<const T*>(nullptr));
    CHECK(within_rounding(fast, want.exact, want.bound, winograd_slack));
}

// The weight gradient of two images summed in the transformed domain, then added to a
// gradient that already holds something, against the reference's sums.
template <class T>
void check_weight_grad(winograd_tile tile, const problem& p, rng& random) {
    CAPTURE(tile.outputs);
    CAPTURE(p.str());
    std::vector<T> w(static_cast<std::size_t>(winograd_weight_grad_size<T>(tile, p.in_ch, p.out_ch)), T(0));
    std::vector<T> scratch(
        static_cast<std::size_t>(winograd_scratch_size<T>(tile, p.out_h, p.out_w, p.in_ch, p.out_ch)), std::nan(""));
    const auto start = normal_values<T>(p.out_ch * 9 * p.in_ch, random);
    std::vector<double> exact = as_double(start), bound = magnitudes(as_double(start));
    for (int image = 0; image < 2; ++image) {
        const auto planes = normal_values<T>(p.in_ch * p.in_h() * p.in_w(), random);
        const auto grad = normal_values<T>(p.out_ch * p.out_h * p.out_w, random);
        const index_t grad_h = tile.covered(p.out_h), grad_w = tile.covered(p.out_w);
        std::vector<T> grad_tiles(static_cast<std::size_t>(channel_last_size<T>(grad_h, grad_w, p.out_ch)));
        to_channel_last(grad.data(), p.out_ch, p.out_h, p.out_w, 0, 0, grad_h, grad_w, grad_tiles.data());
        winograd_weight_grad(tile, winograd_input(planes, p, tile).data(), grad_tiles.data(), p.out_h, p.out_w, p.in_ch,
                             p.out_ch, w.data(), scratch.data());

        const auto image_values = as_double(channel_last_of(planes, p));
        conv_weight_grad_nhwc_reference(image_values.data(), p.in_h(), p.in_w(), p.in_ch, 3, as_double(grad).data(),
                                        p.out_ch, exact.data());
        conv_weight_grad_nhwc_reference(magnitudes(image_values).data(), p.in_h(), p.in_w(), p.in_ch, 3,
                                        magnitudes(as_double(grad)).data(), p.out_ch, bound.data());
    }
    std::vector<T> fast = start;
    winograd_add_weight_grad(tile, w.data(), p.in_ch, p.out_ch, fast.data());
    CHECK(within_rounding(fast, exact, bound, winograd_slack));
}

// The parts threads share an image in (conv2d's forward), both ways: the weights
// transformed in ranges of input channels and the tiles in runs (which start and end
// inside rows of tiles), each run from a copy of only the input rows it reads (the
// others NaN, so that a read past them shows); or the weights transformed and the
// image convolved in runs of whole NR-column panels of output channels. Either way
// together they must give the whole image bit for bit.
template <class T>
void check_parts(winograd_tile tile, const problem& p, int parts, rng& random) {
    CAPTURE(tile.outputs);
    CAPTURE(p.str());
    CAPTURE(parts);
    constexpr index_t nr = detail::packed_gemm::tile<T>::nr;
    const auto planes = normal_values<T>(p.in_ch * p.in_h() * p.in_w(), random);
    const auto weight = normal_values<T>(p.out_ch * p.in_ch * 9, random);
    const auto bias = normal_values<T>(p.out_ch, random);
    const auto whole = winograd_conv(tile, planes, p, weight, conv_role::forward, bias.data(), true);
    const index_t in_w = tile.input_extent(p.out_w), tiles = tile.tiles(p.out_h, p.out_w);
    const auto image_size = static_cast<std::size_t>(channel_last_size<T>(tile.input_extent(p.out_h), in_w, p.in_ch));
    const index_range all_tiles{0, tiles}, all_channels{0, p.out_ch}, all_rows{0, p.in_ch};
    auto panels = [&](int c) {
        const index_range r = chunk_of((p.out_ch + nr - 1) / nr, c, parts);
        return index_range{r.first * nr, std::min(r.last * nr, p.out_ch)};
    };
    for (bool by_channels : {false, true}) {
        CAPTURE(by_channels);
        std::vector<T> u(static_cast<std::size_t>(winograd_weights_size<T>(tile, p.in_ch, p.out_ch)), std::nan(""));
        for (int c = 0; c < parts; ++c)
            winograd_weights(tile, weight.data(), p.out_ch, p.in_ch, conv_role::forward, u.data(),
                             by_channels ? all_rows : chunk_of(p.in_ch, c, parts), by_channels ? panels(c) : all_channels);
        std::vector<T> scratch(
            static_cast<std::size_t>(winograd_scratch_size<T>(tile, p.out_h, p.out_w, p.in_ch, p.out_ch)), std::nan(""));
        std::vector<T> parted(whole.size(), T(-7));
        for (int c = 0; c < parts; ++c) {
            const index_range part = by_channels ? all_tiles : chunk_of(tiles, c, parts);
            const index_range channels = by_channels ? panels(c) : all_channels;
            std::vector<T> rows_only(image_size, std::nan(""));
            to_channel_last_rows(planes.data(), p.in_ch, p.in_h(), p.in_w(), 0, 0, in_w, tile.input_rows(p.out_w, part),
                                 rows_only.data());
            if (channels.size() > 0)
                conv3x3_winograd(tile, rows_only.data(), p.out_h, p.out_w, p.in_ch, u.data(), p.out_ch, bias.data(),
                                 parted.data(), true, scratch.data(), part, channels);
        }
        CHECK(parted == whole);
    }
}

}  // namespace winograd_checks

TEST_CASE_TEMPLATE("conv3x3_winograd equals the direct convolution on odd sizes, both tiles", T, float, double) {
    rng random(21);
    for (index_t outputs : {2, 4})
        for (const auto& p : winograd_checks::problems()) winograd_checks::check_forward<T>({outputs}, p, random);
}

TEST_CASE_TEMPLATE("winograd_weights for the input gradient convolve by the flipped window", T, float, double) {
    rng random(22);
    for (index_t outputs : {2, 4})
        for (const auto& p : winograd_checks::problems())
            winograd_checks::check_input_gradient_role<T>({outputs}, p, random);
}

TEST_CASE_TEMPLATE("winograd_weight_grad adds what the reference adds, on odd sizes", T, float, double) {
    rng random(23);
    for (index_t outputs : {2, 4})
        for (const auto& p : winograd_checks::problems()) winograd_checks::check_weight_grad<T>({outputs}, p, random);
}

TEST_CASE_TEMPLATE("conv3x3_winograd by runs of tiles or of channels equals the whole image bit for bit", T, float,
                   double) {
    rng random(24);
    for (index_t outputs : {2, 4})
        for (const auto& p : winograd_checks::problems())
            for (int parts : {2, 3}) winograd_checks::check_parts<T>({outputs}, p, parts, random);
}

TEST_CASE("winograd_tile: whole tiles plus the window's overhang; the large tile from 12 outputs a side") {
    const winograd_tile small{2}, large{4};
    CHECK(small.input_extent(1) == 4);
    CHECK(small.input_extent(2) == 4);
    CHECK(small.input_extent(3) == 6);
    CHECK(large.input_extent(1) == 6);
    CHECK(large.input_extent(8) == 10);
    CHECK(large.input_extent(9) == 14);
    CHECK(small.positions() == 16);
    CHECK(large.positions() == 36);
    CHECK(large.tiles(9, 8) == 6);
    // Tiles 2..3 of 3 x 2 tiles (out 9 x 8) are the second row of tiles: input rows 4..10.
    CHECK(large.input_rows(8, {2, 4}).first == 4);
    CHECK(large.input_rows(8, {2, 4}).last == 10);
    CHECK(large.input_rows(8, {1, 3}).first == 0);
    CHECK(small.input_rows(5, {0, 0}).size() == 0);
    CHECK(winograd_tile::for_output(11, 30).outputs == 2);
    CHECK(winograd_tile::for_output(12, 12).outputs == 4);
}
