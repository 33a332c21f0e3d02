// conv_nhwc: stride-1 convolution on channel-last copies of the images, by the GEMM
// microkernel reading the windows where they lie instead of unrolling them.
//
// Why: im2col (kernels/im2col.hpp) copies every input value k*k times into a
// [Cin*k*k x pixels] matrix, and the GEMM copies that matrix once more into its
// panels; for the paper's small images those copies cost as much time as the
// multiply-adds. In channel-last order ([height][width][channels]) the k*Cin values a
// window reads from one image row are contiguous, and the windows of neighbouring
// output pixels start Cin apart. So a tile of the product is: MR neighbouring pixels
// of one output row as the rows of A, read in place (lda = Cin); the window's k image
// rows as the k segments of the walk (see tile_walk in gemm.hpp); the packed weights
// as B. The weight gradient turns the roles round: gradient planes as A, the image as
// B read in place. The input gradient is a forward convolution too, the "full"
// correlation of the zero-bordered output gradient with the flipped weights, so it
// writes each input position once instead of scattering k*k partial sums (col2im).
//
// Contracts, for one image. Channel-last images are [height][width][channels] and,
// when a kernel reads them in place, are followed by `channel_last_tail` readable
// elements (to_channel_last writes them as zeros; channel_last_size counts them).
// Every convolution here is "valid", stride 1, square kernel k, so out_h = in_h - k + 1
// and out_w = in_w - k + 1; the conv2d layer gets its padding by bordering the copy.
// - to_channel_last(src [C][H][W], C, H, W, top, left, dst_h, dst_w, dst) WRITES dst
//   [dst_h][dst_w][C] with dst[h + top][w + left][c] = src[c][h][w] where that lies
//   inside dst, 0 everywhere else, then the tail. to_channel_last_rows(src, C, H, W,
//   top, left, dst_w, rows, dst) WRITES the same rows `rows` of dst only, no tail: the
//   rows a part of the output reads (the forward kernels never read the tail).
// - pack_conv_weights(weight [O][I][k][k], O, I, k, role, packed) WRITES the B operand
//   in panels of NR columns (zero-padded), each [k*k*rows_in][NR]:
//     conv_role::forward:        B[(ki*k + kj)*I + i][o] = weight[o][i][ki][kj]
//     conv_role::input_gradient: B[(ki*k + kj)*O + o][i] = weight[o][i][k-1-ki][k-1-kj]
//   conv_packed_size(columns, depth) is its size. With ranges `channels` of i and
//   `columns` of o (forward; swapped for the input gradient; columns.first a multiple
//   of NR), only those channels' rows of those NR-column panels of B are written, so
//   that threads can share the packing. The panels of columns [c, ...) begin at
//   packed + c * depth: a product of some output channels reads them from there.
// - conv_forward_nhwc(in, in_h, in_w, in_ch, k, packed, out_ch, bias or nullptr, out, relu)
//   WRITES out [out_ch][out_h][out_w] (channel-first, as the layers pass tensors):
//     out[o][oh][ow] = bias[o] + sum_{ki,kj,i} B[(ki*k + kj)*in_ch + i][o] * in[oh+ki][ow+kj][i]
//   and, with relu, max(0, that) (v > 0 ? v : 0, as the relu layer), applied as it is stored.
//   With a range `rows` of output rows, only those rows are written and only input rows
//   [rows.first, rows.last + k - 1) are read: the part of one image a thread computes.
// - conv_weight_grad_nhwc(in, in_h, in_w, in_ch, k, grad [out_ch][out_h][out_w], out_ch, dw)
//   ADDS dw[o][(ki*k + kj)*in_ch + i] += sum_{oh,ow} grad[o][oh][ow] * in[oh+ki][ow+kj][i]
//   (dw is [out_ch][k*k*in_ch], the weights in window-major order).
// The *_reference functions are the definitions as plain loops (forward from the
// [O][I][k][k] weights); tests/kernels/test_conv_nhwc.cpp compares them on odd sizes.
//
// Each output element is summed in one fixed order (window rows, then the row's k*Cin
// values), whichever part of the output a call computes: callers that split an image
// into parts by output rows get bit for bit the whole image's results.
#pragma once

#include "nnmark/core/parallel.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/kernels/gemm.hpp"
#include "nnmark/kernels/positive_part.hpp"
#include "nnmark/kernels/transpose.hpp"

#include <algorithm>

namespace nnmark {

enum class conv_role { forward, input_gradient };

// Readable elements after a channel-last image: one B panel row, the most the weight
// gradient's in-place loads run past the last window (into lanes it discards).
template <class T>
inline constexpr index_t channel_last_tail = detail::packed_gemm::tile<T>::nr;

template <class T>
index_t channel_last_size(index_t height, index_t width, index_t channels) {
    return height * width * channels + channel_last_tail<T>;
}

template <class T>
void to_channel_last_rows(const T* src, index_t channels, index_t height, index_t width, index_t top, index_t left,
                          index_t dst_w, index_range rows, T* dst) {
    const index_t row = dst_w * channels;
    // Source columns [w_first, w_last) land inside dst; the rest of each dst row is border.
    const index_t w_first = std::clamp<index_t>(-left, 0, width);
    const index_t w_last = std::clamp<index_t>(dst_w - left, w_first, width);
    for (index_t y = rows.first; y < rows.last; ++y) {
        T* out = dst + y * row;
        const index_t h = y - top;
        if (h < 0 || h >= height || w_first == w_last) {
            std::fill_n(out, row, T(0));
            continue;
        }
        const index_t inside_begin = (w_first + left) * channels, inside_end = (w_last + left) * channels;
        std::fill_n(out, inside_begin, T(0));
        std::fill(out + inside_end, out + row, T(0));
        // The [channels x inside columns] slab of source row h, transposed.
        detail::transpose(src + h * width + w_first, height * width, channels, w_last - w_first, out + inside_begin,
                          channels);
    }
}

template <class T>
void to_channel_last(const T* src, index_t channels, index_t height, index_t width, index_t top, index_t left,
                     index_t dst_h, index_t dst_w, T* dst) {
    to_channel_last_rows(src, channels, height, width, top, left, dst_w, {0, dst_h}, dst);
    std::fill_n(dst + dst_h * dst_w * channels, channel_last_tail<T>, T(0));
}

template <class T>
index_t conv_packed_size(index_t columns, index_t depth) {
    constexpr index_t nr = detail::packed_gemm::tile<T>::nr;
    return (columns + nr - 1) / nr * nr * depth;
}

template <class T>
void pack_conv_weights(const T* weight, index_t out_ch, index_t in_ch, index_t k, conv_role role, T* packed,
                       index_range channels, index_range column_range) {
    constexpr index_t nr = detail::packed_gemm::tile<T>::nr;
    const bool forward = role == conv_role::forward;
    const index_t columns = forward ? out_ch : in_ch;  // output channels of the product
    const index_t rows_in = forward ? in_ch : out_ch;  // its input channels, `channels` among them
    const index_t taps = k * k;
    const index_t depth = taps * rows_in;
    for (index_t j0 = column_range.first; j0 < column_range.last; j0 += nr) {
        T* panel = packed + j0 * depth;
        const index_t cols = std::min(nr, columns - j0);
        // Per input channel i (forward) or output channel o (input gradient), the
        // panel's [cols x taps] block of weights is transposed into the rows of its taps:
        // forward, tap t of channel i is row t * in_ch + i; flipped, tap t of channel o
        // is row (taps - 1 - t) * out_ch + o, as (k-1-ki)*k + (k-1-kj) = k*k - 1 - (ki*k + kj),
        // a negative row step. Either way the channel's rows are t * rows_in + channel,
        // whose columns past `cols` are the panel's zero padding.
        for (index_t c = channels.first; c < channels.last; ++c) {
            if (forward)
                detail::transpose(weight + (j0 * in_ch + c) * taps, in_ch * taps, cols, taps, panel + c * nr,
                                  in_ch * nr);
            else
                detail::transpose(weight + (c * in_ch + j0) * taps, taps, cols, taps,
                                  panel + ((taps - 1) * out_ch + c) * nr, -out_ch * nr);
            if (cols < nr)
                for (index_t t = 0; t < taps; ++t)
                    std::fill(panel + (t * rows_in + c) * nr + cols, panel + (t * rows_in + c + 1) * nr, T(0));
        }
    }
}

template <class T>
void pack_conv_weights(const T* weight, index_t out_ch, index_t in_ch, index_t k, conv_role role, T* packed) {
    const bool forward = role == conv_role::forward;
    pack_conv_weights(weight, out_ch, in_ch, k, role, packed, {0, forward ? in_ch : out_ch},
                      {0, forward ? out_ch : in_ch});
}

namespace detail {

// The sizes of a valid stride-1 convolution of an [in_h][in_w][in_ch] image by a k x k
// kernel: output rows and columns, output pixels, one window row (k * in_ch values,
// contiguous in the image) and the whole window.
struct window_geometry {
    index_t out_h, out_w, plane, run, depth;

    window_geometry(index_t in_h, index_t in_w, index_t in_ch, index_t k)
        : out_h(in_h - k + 1), out_w(in_w - k + 1), plane(out_h * out_w), run(k * in_ch), depth(k * run) {}
};

}  // namespace detail

namespace detail::packed_gemm {

// Where a convolution tile lands: acc[r][v] is pixel r, channel v * lanes + lane of the
// tile, written to out[channel * plane + r] (channel-first) plus the channel's bias,
// through a ReLU when `relu`.
// The tile goes through a small buffer and is written transposed, eight pixels at a
// time by register transposes; the pixels past the last multiple of eight, and tiles
// cut by the last channel, element by element.
template <class T>
struct plane_store {
    const T* bias;  // the tile's first channel's bias, or nullptr
    T* out;
    index_t plane;
    bool relu;

    template <index_t rows, index_t vectors>
    void store(const typename lanes<T>::type (&acc)[rows][vectors], index_t cols) const {
        using simd = lanes<T>;
        constexpr index_t w = simd::width;
        constexpr index_t width = vectors * w;
        const bool whole = cols == width;  // every channel of the registers is real
        // Whole tiles are finished (bias, ReLU) in registers; cut ones element by element.
        alignas(buffer_alignment) T values[rows * width];
        for (index_t r = 0; r < rows; ++r)
            for (index_t v = 0; v < vectors; ++v) {
                auto sum = bias && whole ? acc[r][v] + simd::load_unaligned(bias + v * w) : acc[r][v];
                if (relu && whole) sum = simd::positive_part(sum);
                simd::store_unaligned(values + r * width + v * w, sum);
            }
        index_t r0 = 0;
        if (whole)
            for (; r0 + 8 <= rows; r0 += 8) nnmark::detail::transpose(values + r0 * width, width, 8, width, out + r0, plane);
        for (index_t o = 0; o < cols; ++o) {
            const T offset = bias && !whole ? bias[o] : T(0);
            const bool cut = relu && !whole;
            T* channel = out + o * plane;
            for (index_t r = r0; r < rows; ++r) {
                const T value = values[r * width + o] + offset;
                channel[r] = cut ? positive_part(value) : value;
            }
        }
    }
};

}  // namespace detail::packed_gemm

template <class T>
void conv_forward_nhwc(const T* in, index_t in_h, index_t in_w, index_t in_ch, index_t k, const T* packed,
                       index_t out_ch, const T* bias, T* out, bool relu, index_range rows) {
    namespace pg = detail::packed_gemm;
    constexpr index_t mr = pg::tile<T>::mr;
    constexpr index_t nr = pg::tile<T>::nr;
    const auto [out_h, out_w, plane, run, depth] = detail::window_geometry(in_h, in_w, in_ch, k);
    for (index_t oh = rows.first; oh < rows.last; ++oh)
        for (index_t ow0 = 0; ow0 < out_w; ow0 += mr) {
            const index_t pixels = std::min(mr, out_w - ow0);
            for (index_t o0 = 0; o0 < out_ch; o0 += nr) {
                const index_t cols = std::min(nr, out_ch - o0);
                const pg::tile_walk<T> walk{in + (oh * in_w + ow0) * in_ch, in_ch, packed + o0 * depth, 0, run, k,
                                            in_w * in_ch, run * nr};
                const pg::plane_store<T> sink{bias ? bias + o0 : nullptr, out + o0 * plane + oh * out_w + ow0, plane,
                                              relu};
                pg::kernel_for<T, pg::a_layout::in_place, pg::b_layout::packed, pg::plane_store<T>>(pixels, cols)(
                    walk, sink, cols);
            }
        }
}

template <class T>
void conv_forward_nhwc(const T* in, index_t in_h, index_t in_w, index_t in_ch, index_t k, const T* packed,
                       index_t out_ch, const T* bias, T* out, bool relu = false) {
    conv_forward_nhwc(in, in_h, in_w, in_ch, k, packed, out_ch, bias, out, relu, {0, in_h - k + 1});
}

template <class T>
void conv_weight_grad_nhwc(const T* in, index_t in_h, index_t in_w, index_t in_ch, index_t k, const T* grad,
                           index_t out_ch, T* dw) {
    namespace pg = detail::packed_gemm;
    constexpr index_t mr = pg::tile<T>::mr;
    constexpr index_t nr = pg::tile<T>::nr;
    const auto [out_h, out_w, plane, run, depth] = detail::window_geometry(in_h, in_w, in_ch, k);
    // Window row ki of every pixel: the walk's segments are the output rows, its steps
    // the pixels of a row (Cin apart in the image, 1 apart in the gradient plane).
    for (index_t ki = 0; ki < k; ++ki)
        for (index_t o0 = 0; o0 < out_ch; o0 += mr) {
            const index_t rows = std::min(mr, out_ch - o0);
            for (index_t n0 = 0; n0 < run; n0 += nr) {
                const index_t cols = std::min(nr, run - n0);
                const pg::tile_walk<T> walk{grad + o0 * plane, plane, in + ki * in_w * in_ch + n0, in_ch,
                                            out_w,             out_h, out_w,                       in_w * in_ch};
                const pg::scaled_store<T> sink{T(1), T(1), dw + o0 * depth + ki * run + n0, depth};
                pg::kernel_for<T, pg::a_layout::in_place, pg::b_layout::in_place, pg::scaled_store<T>>(rows, cols)(
                    walk, sink, cols);
            }
        }
}

template <class T>
void conv_forward_nhwc_reference(const T* in, index_t in_h, index_t in_w, index_t in_ch, index_t k, const T* weight,
                                 index_t out_ch, const T* bias, T* out) {
    const index_t out_h = in_h - k + 1, out_w = in_w - k + 1;
    for (index_t o = 0; o < out_ch; ++o)
        for (index_t oh = 0; oh < out_h; ++oh)
            for (index_t ow = 0; ow < out_w; ++ow) {
                T sum = bias ? bias[o] : T(0);
                for (index_t ki = 0; ki < k; ++ki)
                    for (index_t kj = 0; kj < k; ++kj)
                        for (index_t i = 0; i < in_ch; ++i)
                            sum += weight[((o * in_ch + i) * k + ki) * k + kj] *
                                   in[((oh + ki) * in_w + ow + kj) * in_ch + i];
                out[(o * out_h + oh) * out_w + ow] = sum;
            }
}

template <class T>
void conv_weight_grad_nhwc_reference(const T* in, index_t in_h, index_t in_w, index_t in_ch, index_t k,
                                     const T* grad, index_t out_ch, T* dw) {
    const index_t out_h = in_h - k + 1, out_w = in_w - k + 1;
    for (index_t o = 0; o < out_ch; ++o)
        for (index_t ki = 0; ki < k; ++ki)
            for (index_t kj = 0; kj < k; ++kj)
                for (index_t i = 0; i < in_ch; ++i) {
                    T sum = T(0);
                    for (index_t oh = 0; oh < out_h; ++oh)
                        for (index_t ow = 0; ow < out_w; ++ow)
                            sum += grad[(o * out_h + oh) * out_w + ow] * in[((oh + ki) * in_w + ow + kj) * in_ch + i];
                    dw[o * k * k * in_ch + (ki * k + kj) * in_ch + i] += sum;
                }
}

}  // namespace nnmark
