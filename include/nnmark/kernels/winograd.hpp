// winograd: 3x3 stride-1 convolution by Winograd's minimal filtering F(m x m, 3x3),
// m = 2 or 4 (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
//
// Why: an m x m block of outputs of one (input, output) channel pair reads an n x n
// input tile d (n = m + 2) and costs 9 m^2 multiply-adds directly. Winograd's identity
//     Y = A^T [ (G g G^T) .* (B^T d B) ] A
// gives the same block from n^2 products of transformed values. Summed over the input
// channels, the n^2 positions xi of the transformed tile are independent matrix
// products,
//     M[xi] [tiles x Cout] = V[xi] [tiles x Cin] * U[xi] [Cin x Cout],
// which the GEMM microkernel (gemm.hpp) runs as fast as any other product: 2.25x
// (m = 2) or 4x (m = 4) fewer multiply-adds than conv_nhwc.hpp's direct product, for
// the price of transforming inputs and outputs once per tile (a few operations per
// value, vectorized over channels). Which m serves an image best: winograd_tile.
// Exact in exact arithmetic; in floating point the result differs from the direct sum
// by rounding, somewhat more than the direct sum's for m = 4 (coefficients up to 8
// and down to 1/24).
//
//   F(2x2, 3x3):  B^T = | 1  0 -1  0 |   G = | 1    0    0  |   A^T = | 1  1  1  0 |
//                       | 0  1  1  0 |       | 1/2  1/2  1/2|         | 0  1 -1 -1 |
//                       | 0 -1  1  0 |       | 1/2 -1/2  1/2|
//                       | 0  1  0 -1 |       | 0    0    1  |
//
//   F(4x4, 3x3):  B^T = | 4  0 -5  0  1  0 |   G = |  1/4     0     0  |
//                       | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6 |
//                       | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6 |
//                       | 0 -2 -1  2  1  0 |       |  1/24  1/12  1/6 |
//                       | 0  2 -1 -2  1  0 |       |  1/24 -1/12  1/6 |
//                       | 0  4  0 -5  0  1 |       |  0     0     1   |
//                 A^T = | 1  1  1  1  1  0 |
//                       | 0  1 -1  2 -2  0 |
//                       | 0  1  1  4  4  0 |
//                       | 0  1 -1  8 -8  1 |
//
// Contracts, for one image and a tile size `tile`:
// - The input is channel-last, [in_h][in_w][in_ch] with in_h = tile.input_extent(out_h)
//   = m * ceil(out_h / m) + 2 and in_w likewise: the valid input of out_h x out_w
//   outputs, plus zero rows (columns) up to whole tiles. to_channel_last
//   (conv_nhwc.hpp) writes it, border included.
// - winograd_weights(tile, weight [O][I][3][3], O, I, role, u) WRITES the transformed
//   weights, n^2 GEMM B operands packed in NR-column panels (winograd_weights_size):
//     conv_role::forward:        U[xi][i][o] = (G weight[o][i] G^T)[xi]
//     conv_role::input_gradient: U[xi][o][i] = (G flip(weight[o][i]) G^T)[xi],
//   flip turning the 3x3 window by 180 degrees (see conv_nhwc.hpp for why the input
//   gradient is this convolution of the bordered output gradient). With ranges `rows`
//   of i and `columns` of o (forward; swapped for the input gradient; columns.first a
//   multiple of NR), only those rows of those NR-column panels of every U[xi] are written.
// - conv3x3_winograd(tile, in, out_h, out_w, in_ch, u, out_ch, bias or nullptr, out,
//   relu, scratch) WRITES out [out_ch][out_h][out_w] (channel-first), the convolution
//   conv_forward_nhwc computes for k = 3, up to rounding, through a ReLU when `relu`.
//   `scratch` holds winograd_scratch_size(tile, out_h, out_w, in_ch, out_ch) elements.
//   With a range `tiles` of the image's tile.tiles(out_h, out_w) tiles (row-major, m x m
//   outputs each) and a range `channels` of output channels (channels.first a multiple
//   of NR), only those tiles' outputs in those channels are written, and only the input
//   rows tile.input_rows(out_w, tiles) and U's columns `channels` are read: the part of
//   one image a thread computes.
// - The weight gradient, dL/dg = G^T [ (A dy A^T) .* (B^T d B) ] G per tile (the forward
//   identity transposed), summed over tiles and images before the outer transform:
//   winograd_weight_grad(tile, in, grad, out_h, out_w, in_ch, out_ch, w, scratch) ADDS
//   W[xi][i][o] += sum over the image's tiles of (B^T d B)[xi][i] (A dy A^T)[xi][o], with
//   `in` as above and grad the output gradient channel-last over whole tiles,
//   [tile.covered(out_h)][tile.covered(out_w)][out_ch], zero past the image; w holds
//   winograd_weight_grad_size elements. Then
//   winograd_add_weight_grad(tile, w, in_ch, out_ch, dw) ADDS G^T W[.][i][o] G to
//   dw[o][(ki*3 + kj)*in_ch + i] (conv_nhwc.hpp's window-major layout), in double.
// Each output is summed in one fixed order, whatever the thread count and whichever
// tiles a call computes: the GEMM rows of a tile give the same sums in any band, so
// callers that split an image by tiles get bit for bit the whole image's results.
// conv_forward_nhwc_reference is the definition the tests
// (tests/kernels/test_winograd.cpp) compare with, on odd sizes, for both tiles.
#pragma once

#include "nnmark/kernels/conv_nhwc.hpp"
#include "nnmark/kernels/gemm.hpp"
#include "nnmark/kernels/positive_part.hpp"
#include "nnmark/kernels/transpose.hpp"

#include <algorithm>

namespace nnmark {

// The Winograd tile a convolution uses: F(4x4, 3x3) for images of 12 or more outputs a
// side, F(2x2, 3x3) for smaller ones. Measured on the paper's layer sizes: alone on
// one core, the large tile took 0.65-0.8x the small one's time from 12 outputs a side,
// 0.9x at 10 and 1.15x at 8 (an image has only 4 tiles of 4x4, and the GEMM rows run
// short); in training on two cores, 1.1-1.2x at 10 (its larger scratch).
struct winograd_tile {
    index_t outputs;  // per tile side: 2 or 4

    static constexpr index_t large_from = 12;
    static winograd_tile for_output(index_t out_h, index_t out_w) {
        return {std::min(out_h, out_w) >= large_from ? index_t(4) : index_t(2)};
    }
    index_t inputs() const { return outputs + 2; }  // input values per tile side
    index_t positions() const { return inputs() * inputs(); }
    // Rows (columns) of the input that `out` outputs read: whole tiles plus the
    // window's overhang.
    index_t input_extent(index_t out) const { return covered(out) + 2; }
    // Outputs that whole tiles cover: `out`, rounded up to a multiple of the tile.
    index_t covered(index_t out) const { return (out + outputs - 1) / outputs * outputs; }
    // Tiles of an out_h x out_w output, and the input rows that the tiles `part` of it
    // (row-major) read.
    index_t tiles(index_t out_h, index_t out_w) const { return covered(out_h) / outputs * (covered(out_w) / outputs); }
    index_range input_rows(index_t out_w, index_range part) const {
        const index_t tiles_w = covered(out_w) / outputs;
        if (part.size() <= 0) return {0, 0};
        return {part.first / tiles_w * outputs, ((part.last - 1) / tiles_w + 1) * outputs + 2};
    }
};

namespace detail::winograd {

// Elements between the positions' B operands of the transformed weights: the packed
// panels plus a cache line, so that writing all positions of one window does not hit
// the same cache sets over and over (their packed size is often a multiple of 4 KiB).
template <class T>
index_t weights_position_stride(index_t in_ch, index_t out_ch) {
    return conv_packed_size<T>(out_ch, in_ch) + 64;
}

}  // namespace detail::winograd

template <class T>
index_t winograd_weights_size(winograd_tile tile, index_t in_ch, index_t out_ch) {
    return tile.positions() * detail::winograd::weights_position_stride<T>(in_ch, out_ch);
}

namespace detail::winograd {

// The matrices of F(m x m, 3x3), applied to one column (or row) of a tile at a time:
// input_column x <- B^T x, output_column x <- A^T x, weight_column x <- G x, and for
// the weight gradient their transposes gradient_column x <- A x (an m x m tile of the
// output gradient to n x n) and window_column x <- G^T x (n x n back to 3x3).
template <index_t m>
struct transforms;

template <>
struct transforms<2> {
    template <class T, class V>
    static void input_column(const V (&d)[4], V (&out)[4]) {
        out[0] = d[0] - d[2];
        out[1] = d[1] + d[2];
        out[2] = d[2] - d[1];
        out[3] = d[1] - d[3];
    }
    template <class T, class V>
    static void output_column(const V (&x)[4], V (&out)[2]) {
        out[0] = x[0] + x[1] + x[2];
        out[1] = x[1] - x[2] - x[3];
    }
    template <class T, class V>
    static void weight_column(const V (&g)[3], V (&out)[4]) {
        const V half(T(0.5));
        out[0] = g[0];
        out[1] = half * (g[0] + g[1] + g[2]);
        out[2] = half * (g[0] - g[1] + g[2]);
        out[3] = g[2];
    }
    template <class T, class V>
    static void gradient_column(const V (&y)[2], V (&out)[4]) {
        out[0] = y[0];
        out[1] = y[0] + y[1];
        out[2] = y[0] - y[1];
        out[3] = -y[1];
    }
    static void window_column(const double (&x)[4], double (&out)[3]) {
        out[0] = x[0] + (x[1] + x[2]) / 2;
        out[1] = (x[1] - x[2]) / 2;
        out[2] = (x[1] + x[2]) / 2 + x[3];
    }
};

template <>
struct transforms<4> {
    template <class T, class V>
    static void input_column(const V (&d)[6], V (&out)[6]) {
        const V four(T(4)), five(T(5)), two(T(2));
        const V near = d[4] - four * d[2], far = d[3] - four * d[1];  // rows 1 and 2
        const V even = d[4] - d[2], odd = two * (d[3] - d[1]);        // rows 3 and 4
        out[0] = four * d[0] - five * d[2] + d[4];
        out[1] = near + far;
        out[2] = near - far;
        out[3] = even + odd;
        out[4] = even - odd;
        out[5] = four * d[1] - five * d[3] + d[5];
    }
    template <class T, class V>
    static void output_column(const V (&x)[6], V (&out)[4]) {
        const V plus_low = x[1] + x[2], minus_low = x[1] - x[2];
        const V plus_high = x[3] + x[4], minus_high = x[3] - x[4];
        out[0] = x[0] + plus_low + plus_high;
        out[1] = minus_low + V(T(2)) * minus_high;
        out[2] = plus_low + V(T(4)) * plus_high;
        out[3] = minus_low + V(T(8)) * minus_high + x[5];
    }
    template <class T, class V>
    static void weight_column(const V (&g)[3], V (&out)[6]) {
        const V quarter(T(1) / 4), sixth(T(1) / 6), twelfth(T(1) / 12), twenty_fourth(T(1) / 24);
        const V outer = twenty_fourth * g[0] + sixth * g[2], middle = twelfth * g[1];  // rows 3 and 4
        out[0] = quarter * g[0];
        out[1] = -sixth * (g[0] + g[1] + g[2]);
        out[2] = -sixth * (g[0] - g[1] + g[2]);
        out[3] = outer + middle;
        out[4] = outer - middle;
        out[5] = g[2];
    }
    template <class T, class V>
    static void gradient_column(const V (&y)[4], V (&out)[6]) {
        const V two(T(2)), four(T(4)), eight(T(8));
        const V even = y[0] + y[2], odd = y[1] + y[3];                              // rows 1 and 2
        const V even_far = y[0] + four * y[2], odd_far = two * y[1] + eight * y[3];  // rows 3 and 4
        out[0] = y[0];
        out[1] = even + odd;
        out[2] = even - odd;
        out[3] = even_far + odd_far;
        out[4] = even_far - odd_far;
        out[5] = y[3];
    }
    static void window_column(const double (&x)[6], double (&out)[3]) {
        out[0] = x[0] / 4 - (x[1] + x[2]) / 6 + (x[3] + x[4]) / 24;
        out[1] = (x[2] - x[1]) / 6 + (x[3] - x[4]) / 12;
        out[2] = (x[3] + x[4] - x[1] - x[2]) / 6 + x[5];
    }
};

// X -> C X C^T for one tile, C the [out x in] matrix that `column` applies to `in`
// values (one of the transforms above): first to each column of X, read by load(i, j),
// then to each row of the result, whose elements go to store(i, j, value). Every
// transform of the scheme, inputs, outputs, weights and both of the weight gradient's,
// is this with its own C, loads and stores.
template <class Value, index_t in, index_t out, class Column, class Load, class Store>
void transform_both_sides(Column column, Load load, Store store) {
    Value columns[in][out];  // columns[j]: C times column j of X
    for (index_t j = 0; j < in; ++j) {
        Value x[in];
        for (index_t i = 0; i < in; ++i) x[i] = load(i, j);
        column(x, columns[j]);
    }
    for (index_t i = 0; i < out; ++i) {
        Value x[in], y[out];
        for (index_t j = 0; j < in; ++j) x[j] = columns[j][i];
        column(x, y);
        for (index_t j = 0; j < out; ++j) store(i, j, y[j]);
    }
}

// The tiles of an image, in row-major order, are transformed and multiplied in bands
// of this many MR-row GEMM tiles, so that a band has no short GEMM tile but the
// image's last.
inline constexpr index_t band_gemm_tiles = 4;

template <class T, index_t m>
struct band_geometry {
    static constexpr index_t n = m + 2, positions = n * n;
    index_t tiles_h, tiles_w, tiles, band_tiles;

    band_geometry(index_t out_h, index_t out_w)
        : tiles_h((out_h + m - 1) / m),
          tiles_w((out_w + m - 1) / m),
          tiles(tiles_h * tiles_w),
          band_tiles(std::min(tiles, band_gemm_tiles * packed_gemm::tile<T>::mr)) {}

    // Elements between the positions of V (or M) with `channels` per tile: one cache
    // line more than the band, so that the streams of a transform do not fall on the
    // same cache sets when the band is a multiple of 4 KiB (measured: 3x slower).
    index_t position_stride(index_t channels) const { return band_tiles * channels + 64; }

    // The scratch: V and M of one band, then the whole image's output in
    // channel-last order, [m * tiles_h][m * tiles_w][out_ch].
    index_t v_size(index_t in_ch) const { return positions * position_stride(in_ch); }
    index_t m_size(index_t out_ch) const { return positions * position_stride(out_ch); }
    index_t scratch_size(index_t in_ch, index_t out_ch) const {
        return v_size(in_ch) + m_size(out_ch) + m * m * tiles * out_ch;
    }
};

// Loads and stores of `width` channels at once: a SIMD register, or one value for the
// channels past the last whole register.
template <class T>
struct vector_access {
    using simd = packed_gemm::lanes<T>;
    static constexpr index_t width = simd::width;
    static auto load(const T* p) { return simd::load_unaligned(p); }
    template <class V>
    static void store(T* p, V v) {
        simd::store_unaligned(p, v);
    }
    template <class V>
    static V relu(V v) {
        return simd::positive_part(v);
    }
};

template <class T>
struct scalar_access {
    static constexpr index_t width = 1;
    static T load(const T* p) { return *p; }
    static void store(T* p, T v) { *p = v; }
    static T relu(T v) { return positive_part(v); }
};

// body(c, access) for each group of channels [c, c + access.width) of `channels`.
template <class T, class Body>
void for_channel_groups(index_t channels, Body&& body) {
    constexpr index_t width = vector_access<T>::width;
    index_t c = 0;
    for (; c + width <= channels; c += width) body(c, vector_access<T>{});
    for (; c < channels; ++c) body(c, scalar_access<T>{});
}

// V[xi][t][c] = (B^T d B)[xi] for the tiles [first, first + count), d the n x n input
// tile of tile t = (tile row, tile column) at m * (tile row, tile column). Columns
// first (B^T d), then rows.
template <class T, index_t m>
void transform_input(const T* in, index_t in_w, index_t in_ch, const band_geometry<T, m>& g, index_t first,
                     index_t count, T* v) {
    constexpr index_t n = m + 2;
    const index_t xi_stride = g.position_stride(in_ch);
    for (index_t t = 0; t < count; ++t) {
        const index_t row = (first + t) / g.tiles_w, col = (first + t) % g.tiles_w;
        const T* tile = in + m * (row * in_w + col) * in_ch;
        T* out = v + t * in_ch;
        for_channel_groups<T>(in_ch, [&](index_t c, auto access) {
            transform_both_sides<decltype(access.load(tile)), n, n>(
                [](const auto& x, auto& y) { transforms<m>::template input_column<T>(x, y); },
                [&](index_t i, index_t j) { return access.load(tile + (i * in_w + j) * in_ch + c); },
                [&](index_t i, index_t j, auto v) { access.store(out + (i * n + j) * xi_stride + c, v); });
        });
    }
}

// M[xi] = V[xi] U[xi] for `count` tiles, one product per position; U's positions are
// u_stride apart (out_ch may be some of the columns the weights were prepared for).
template <class T, index_t m>
void multiply(const T* v, index_t count, const band_geometry<T, m>& g, index_t in_ch, const T* u, index_t u_stride,
              index_t out_ch, T* product) {
    for (index_t xi = 0; xi < g.positions; ++xi)
        packed_gemm::multiply_block<T, packed_gemm::a_layout::in_place>(
            count, out_ch, in_ch, v + xi * g.position_stride(in_ch), in_ch, u + xi * u_stride, T(1), T(0),
            product + xi * g.position_stride(out_ch), out_ch);
}

// The outputs of tiles [first, first + count), Y = A^T M A per tile plus the bias,
// through a ReLU when `relu`, into staged [m * tiles_h][m * tiles_w][out_ch].
template <class T, index_t m>
void transform_output(const T* product, index_t out_ch, const band_geometry<T, m>& g, index_t first, index_t count,
                      const T* bias, bool relu, T* staged) {
    constexpr index_t n = m + 2;
    const index_t xi_stride = g.position_stride(out_ch);
    const index_t row_stride = m * g.tiles_w * out_ch;
    for (index_t t = 0; t < count; ++t) {
        const index_t row = (first + t) / g.tiles_w, col = (first + t) % g.tiles_w;
        const T* tile = product + t * out_ch;
        T* out = staged + m * (row * row_stride + col * out_ch);
        for_channel_groups<T>(out_ch, [&](index_t c, auto access) {
            using value = decltype(access.load(tile));
            const value offset = bias ? access.load(bias + c) : value(T(0));
            transform_both_sides<value, n, m>(
                [](const auto& x, auto& y) { transforms<m>::template output_column<T>(x, y); },
                [&](index_t i, index_t j) { return access.load(tile + (i * n + j) * xi_stride + c); },
                [&](index_t i, index_t j, value v) {
                    const value biased = v + offset;
                    access.store(out + i * row_stride + j * out_ch + c, relu ? access.relu(biased) : biased);
                });
        });
    }
}

template <class T, index_t m>
void weights(const T* weight, index_t out_ch, index_t in_ch, conv_role role, T* u, index_range part,
             index_range columns) {
    using simd = packed_gemm::lanes<T>;
    using vec = typename simd::type;
    constexpr index_t n = m + 2, nr = packed_gemm::tile<T>::nr, width = simd::width;
    const bool forward = role == conv_role::forward;
    const index_t rows = forward ? in_ch : out_ch;  // the product's input channels
    const index_t cols = forward ? out_ch : in_ch;  // and its output channels
    // Tap t of the window that multiplies product row `row` into product column `col`
    // is weight[first_tap + row * row_step + col * col_step + t * tap_step].
    const index_t row_step = forward ? 9 : in_ch * 9, col_step = forward ? in_ch * 9 : 9;
    const index_t first_tap = forward ? 0 : 8, tap_step = forward ? 1 : -1;
    // Straight into the packed layout (see pack_b in gemm.hpp): position xi's B is
    // panels of NR columns, [rows][NR] each, element (row, col) at
    // (col / NR) * NR * rows + row * NR + col % NR. NR windows at a time, G g G^T
    // vectorized across them; the columns past `cols` get zero windows.
    const index_t position_stride = weights_position_stride<T>(rows, cols);
    for (index_t col0 = columns.first; col0 < columns.last; col0 += nr) {
        const index_t valid = std::min(nr, cols - col0);
        T* panel = u + col0 * rows;
        for (index_t row = part.first; row < part.last; ++row) {
            alignas(packed_gemm::buffer_alignment) T taps[9][nr];
            const T* window = weight + first_tap + row * row_step + col0 * col_step;
            for (index_t c = 0; c < valid; ++c)
                for (index_t t = 0; t < 9; ++t) taps[t][c] = window[c * col_step + t * tap_step];
            for (index_t c = valid; c < nr; ++c)
                for (index_t t = 0; t < 9; ++t) taps[t][c] = T(0);
            for (index_t lane0 = 0; lane0 < nr; lane0 += width)
                transform_both_sides<vec, 3, n>(
                    [](const auto& x, auto& y) { transforms<m>::template weight_column<T>(x, y); },
                    [&](index_t i, index_t j) { return simd::load_unaligned(taps[i * 3 + j] + lane0); },
                    [&](index_t i, index_t j, vec v) {
                        simd::store_unaligned(panel + (i * n + j) * position_stride + row * nr + lane0, v);
                    });
        }
    }
}

// The tiles `tiles` of output channels `channels` (channels.first a multiple of NR):
// as the whole output's, with U's columns, the bias and the planes from the range's
// first channel on.
template <class T, index_t m>
void convolve(const T* in, index_t out_h, index_t out_w, index_t in_ch, const T* u, index_t total_out_ch,
              const T* bias, T* planes, bool relu, T* scratch, index_range tiles, index_range channels) {
    const band_geometry<T, m> g(out_h, out_w);
    const index_t out_ch = channels.size(), u_stride = weights_position_stride<T>(in_ch, total_out_ch);
    u += channels.first * in_ch;  // the panels of the range's columns (see pack_b in gemm.hpp)
    if (bias) bias += channels.first;
    T* out = planes + channels.first * out_h * out_w;
    T* v = scratch;
    T* product = v + g.v_size(in_ch);
    T* staged = product + g.m_size(out_ch);
    const index_t in_w = (out_w + m - 1) / m * m + 2;
    for (index_t first = tiles.first; first < tiles.last; first += g.band_tiles) {
        const index_t count = std::min(g.band_tiles, tiles.last - first);
        transform_input(in, in_w, in_ch, g, first, count, v);
        multiply(v, count, g, in_ch, u, u_stride, out_ch, product);
        transform_output(product, out_ch, g, first, count, bias, relu, staged);
    }
    // The staged outputs of the tiles, transposed into the output planes, a tile row's
    // run of tiles at a time; the rows and columns past the image's last (where out_h,
    // out_w are not multiples of m) are dropped.
    const index_t staged_row = m * g.tiles_w * out_ch;
    for (index_t first = tiles.first; first < tiles.last;) {
        const index_t row = first / g.tiles_w, col = first % g.tiles_w;
        const index_t run = std::min(tiles.last - first, g.tiles_w - col);
        const index_t ow = m * col, width = std::min(m * run, out_w - ow);
        for (index_t oh = m * row; oh < std::min(m * row + m, out_h); ++oh)
            nnmark::detail::transpose(staged + oh * staged_row + ow * out_ch, out_ch, width, out_ch,
                                      out + oh * out_w + ow, out_h * out_w);
        first += run;
    }
}

// GH[xi][t][o] = (A y A^T)[xi] for the tiles [first, first + count), y the m x m
// block of the output gradient (channel-last, [m * tiles_h][m * tiles_w][out_ch]) of
// tile t.
template <class T, index_t m>
void transform_gradient(const T* grad, index_t out_ch, const band_geometry<T, m>& g, index_t first, index_t count,
                        T* gh) {
    constexpr index_t n = m + 2;
    const index_t xi_stride = g.position_stride(out_ch);
    const index_t row_stride = m * g.tiles_w * out_ch;
    for (index_t t = 0; t < count; ++t) {
        const index_t row = (first + t) / g.tiles_w, col = (first + t) % g.tiles_w;
        const T* tile = grad + m * (row * row_stride + col * out_ch);
        T* out = gh + t * out_ch;
        for_channel_groups<T>(out_ch, [&](index_t c, auto access) {
            transform_both_sides<decltype(access.load(tile)), m, n>(
                [](const auto& x, auto& y) { transforms<m>::template gradient_column<T>(x, y); },
                [&](index_t i, index_t j) { return access.load(tile + i * row_stride + j * out_ch + c); },
                [&](index_t i, index_t j, auto v) { access.store(out + (i * n + j) * xi_stride + c, v); });
        });
    }
}

// W[xi] [in_ch x out_ch] += V[xi]^T GH[xi] over `count` tiles: both are read in place,
// tiles being the rows of both (see a_layout::transposed_in_place in gemm.hpp).
template <class T, index_t m>
void accumulate_weight_products(const T* v, const T* gh, index_t count, const band_geometry<T, m>& g, index_t in_ch,
                                index_t out_ch, T* w) {
    namespace pg = packed_gemm;
    constexpr index_t mr = pg::tile<T>::mr, nr = pg::tile<T>::nr;
    for (index_t xi = 0; xi < g.positions; ++xi)
        for (index_t i0 = 0; i0 < in_ch; i0 += mr) {
            const index_t rows = std::min(mr, in_ch - i0);
            for (index_t o0 = 0; o0 < out_ch; o0 += nr) {
                const index_t cols = std::min(nr, out_ch - o0);
                const pg::tile_walk<T> walk{v + xi * g.position_stride(in_ch) + i0, in_ch,
                                            gh + xi * g.position_stride(out_ch) + o0, out_ch, count};
                const pg::scaled_store<T> sink{T(1), T(1), w + (xi * in_ch + i0) * out_ch + o0, out_ch};
                pg::kernel_for<T, pg::a_layout::transposed_in_place, pg::b_layout::in_place, pg::scaled_store<T>>(
                    rows, cols)(walk, sink, cols);
            }
        }
}

template <class T, index_t m>
void weight_grad(const T* in, const T* grad, index_t out_h, index_t out_w, index_t in_ch, index_t out_ch, T* w,
                 T* scratch) {
    const band_geometry<T, m> g(out_h, out_w);
    T* v = scratch;
    T* gh = v + g.v_size(in_ch);
    const index_t in_w = (out_w + m - 1) / m * m + 2;
    for (index_t first = 0; first < g.tiles; first += g.band_tiles) {
        const index_t count = std::min(g.band_tiles, g.tiles - first);
        transform_input(in, in_w, in_ch, g, first, count, v);
        transform_gradient(grad, out_ch, g, first, count, gh);
        accumulate_weight_products(v, gh, count, g, in_ch, out_ch, w);
    }
}

// dw[o][(ki * 3 + kj) * in_ch + i] += (G^T W[.][i][o] G)[ki][kj], in double.
template <class T, index_t m>
void add_weight_grad(const T* w, index_t in_ch, index_t out_ch, T* dw) {
    constexpr index_t n = m + 2;
    const index_t position = in_ch * out_ch;
    for (index_t o = 0; o < out_ch; ++o)
        for (index_t i = 0; i < in_ch; ++i) {
            const T* x = w + i * out_ch + o;
            transform_both_sides<double, n, 3>(
                [](const auto& column, auto& window) { transforms<m>::window_column(column, window); },
                [&](index_t r, index_t j) { return double(x[(r * n + j) * position]); },
                [&](index_t ki, index_t kj, double v) { dw[o * 9 * in_ch + (ki * 3 + kj) * in_ch + i] += static_cast<T>(v); });
        }
}

}  // namespace detail::winograd

template <class T>
void winograd_weights(winograd_tile tile, const T* weight, index_t out_ch, index_t in_ch, conv_role role, T* u,
                      index_range rows, index_range columns) {
    namespace wg = detail::winograd;
    tile.outputs == 4 ? wg::weights<T, 4>(weight, out_ch, in_ch, role, u, rows, columns)
                      : wg::weights<T, 2>(weight, out_ch, in_ch, role, u, rows, columns);
}

template <class T>
void winograd_weights(winograd_tile tile, const T* weight, index_t out_ch, index_t in_ch, conv_role role, T* u) {
    const bool forward = role == conv_role::forward;
    winograd_weights(tile, weight, out_ch, in_ch, role, u, {0, forward ? in_ch : out_ch}, {0, forward ? out_ch : in_ch});
}

template <class T>
index_t winograd_scratch_size(winograd_tile tile, index_t out_h, index_t out_w, index_t in_ch, index_t out_ch) {
    namespace wg = detail::winograd;
    return tile.outputs == 4 ? wg::band_geometry<T, 4>(out_h, out_w).scratch_size(in_ch, out_ch)
                             : wg::band_geometry<T, 2>(out_h, out_w).scratch_size(in_ch, out_ch);
}

template <class T>
void conv3x3_winograd(winograd_tile tile, const T* in, index_t out_h, index_t out_w, index_t in_ch, const T* u,
                      index_t out_ch, const T* bias, T* out, bool relu, T* scratch, index_range tiles,
                      index_range channels) {
    namespace wg = detail::winograd;
    tile.outputs == 4
        ? wg::convolve<T, 4>(in, out_h, out_w, in_ch, u, out_ch, bias, out, relu, scratch, tiles, channels)
        : wg::convolve<T, 2>(in, out_h, out_w, in_ch, u, out_ch, bias, out, relu, scratch, tiles, channels);
}

template <class T>
void conv3x3_winograd(winograd_tile tile, const T* in, index_t out_h, index_t out_w, index_t in_ch, const T* u,
                      index_t out_ch, const T* bias, T* out, bool relu, T* scratch) {
    conv3x3_winograd(tile, in, out_h, out_w, in_ch, u, out_ch, bias, out, relu, scratch,
                     {0, tile.tiles(out_h, out_w)}, {0, out_ch});
}

// The weight gradient in the transformed domain: W[xi] [in_ch x out_ch], summed over
// tiles and images, turned into the 3x3 windows once per batch.
template <class T>
index_t winograd_weight_grad_size(winograd_tile tile, index_t in_ch, index_t out_ch) {
    return tile.positions() * in_ch * out_ch;
}

template <class T>
void winograd_weight_grad(winograd_tile tile, const T* in, const T* grad, index_t out_h, index_t out_w, index_t in_ch,
                          index_t out_ch, T* w, T* scratch) {
    namespace wg = detail::winograd;
    tile.outputs == 4 ? wg::weight_grad<T, 4>(in, grad, out_h, out_w, in_ch, out_ch, w, scratch)
                      : wg::weight_grad<T, 2>(in, grad, out_h, out_w, in_ch, out_ch, w, scratch);
}

template <class T>
void winograd_add_weight_grad(winograd_tile tile, const T* w, index_t in_ch, index_t out_ch, T* dw) {
    namespace wg = detail::winograd;
    tile.outputs == 4 ? wg::add_weight_grad<T, 4>(w, in_ch, out_ch, dw) : wg::add_weight_grad<T, 2>(w, in_ch, out_ch, dw);
}

}  // namespace nnmark
