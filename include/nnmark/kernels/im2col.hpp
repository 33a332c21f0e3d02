// im2col / col2im: the unrolling that turns a convolution into one GEMM per image.
//
// Contract (one image, NCHW, square kernel, same stride on both axes):
// - image is [channels, height, width], row-major.
// - columns is [channels * kernel * kernel, out_h * out_w], row-major. Row
//   (c * kernel + ki) * kernel + kj, column oh * out_w + ow holds
//       image[c, oh * stride + ki - pad_top, ow * stride + kj - pad_left]
//   or 0 where that position lies in the padding.
// - im2col WRITES every element of columns.
// - col2im is its adjoint: it ADDS every column element back into the image position
//   it was read from (padding positions are dropped), so the caller zeroes the image
//   gradient first. Positions read by several patches receive the sum.
// The bottom/right padding is implied by out_h/out_w: positions past the image read 0.
//
// im2col_reference / col2im_reference are the definition, element by element with a
// bounds test; im2col / col2im are the fast path, which works out once per kernel row
// which run of outputs reads inside the image, so the inner loop has no bounds test and,
// for stride 1, is a plain contiguous copy. tests/kernels/test_im2col.cpp compares them.
#pragma once

#include "nnmark/core/shape.hpp"

#include <algorithm>

namespace nnmark {

template <class T>
void im2col_reference(const T* image, index_t channels, index_t height, index_t width, index_t kernel,
                      index_t stride, index_t pad_top, index_t pad_left, index_t out_h, index_t out_w,
                      T* columns) {
    for (index_t c = 0; c < channels; ++c)
        for (index_t ki = 0; ki < kernel; ++ki)
            for (index_t kj = 0; kj < kernel; ++kj) {
                T* row = columns + ((c * kernel + ki) * kernel + kj) * out_h * out_w;
                for (index_t oh = 0; oh < out_h; ++oh)
                    for (index_t ow = 0; ow < out_w; ++ow) {
                        const index_t ih = oh * stride + ki - pad_top;
                        const index_t iw = ow * stride + kj - pad_left;
                        const bool inside = ih >= 0 && ih < height && iw >= 0 && iw < width;
                        row[oh * out_w + ow] = inside ? image[(c * height + ih) * width + iw] : T(0);
                    }
            }
}

template <class T>
void col2im_reference(const T* columns, index_t channels, index_t height, index_t width, index_t kernel,
                      index_t stride, index_t pad_top, index_t pad_left, index_t out_h, index_t out_w,
                      T* image) {
    for (index_t c = 0; c < channels; ++c)
        for (index_t ki = 0; ki < kernel; ++ki)
            for (index_t kj = 0; kj < kernel; ++kj) {
                const T* row = columns + ((c * kernel + ki) * kernel + kj) * out_h * out_w;
                for (index_t oh = 0; oh < out_h; ++oh)
                    for (index_t ow = 0; ow < out_w; ++ow) {
                        const index_t ih = oh * stride + ki - pad_top;
                        const index_t iw = ow * stride + kj - pad_left;
                        if (ih >= 0 && ih < height && iw >= 0 && iw < width)
                            image[(c * height + ih) * width + iw] += row[oh * out_w + ow];
                    }
            }
}

namespace detail {

// Outputs o in [0, count) whose input position o * stride + offset lies in [0, extent),
// as the half-open range [first, last); first == last when there are none.
struct output_range {
    index_t first;
    index_t last;
};

inline output_range inside_outputs(index_t offset, index_t stride, index_t extent, index_t count) {
    auto ceil_div = [](index_t a, index_t b) { return (a + b - 1) / b; };  // a >= 0, b > 0
    const index_t first = offset >= 0 ? 0 : ceil_div(-offset, stride);
    const index_t last = extent > offset ? ceil_div(extent - offset, stride) : 0;
    const index_t clamped_first = std::min(first, count);
    return {clamped_first, std::clamp(last, clamped_first, count)};
}

// One block of visit_patch_rows (below) between the image and the columns:
// column[r * out_w + i] and image[r * stride * width + i * stride] for r < rows,
// i < count. Stride 1 is tested once per block, not per element: its contiguous loops
// vectorize, where a strided loop gathers or scatters.
struct patch_block {
    index_t count, rows, stride, width, out_w;

    // columns = image over the block. The loop is written out rather than a call to
    // memmove, which would cost more than copying a few dozen elements.
    template <class T>
    void copy(const T* image, T* columns) const {
        if (stride != 1) {
            for (index_t r = 0; r < rows; ++r)
                for (index_t i = 0; i < count; ++i) columns[r * out_w + i] = image[r * width * stride + i * stride];
            return;
        }
        for (index_t r = 0; r < rows; ++r) {
            const T* from = image + r * width;
            T* to = columns + r * out_w;
#pragma omp simd
            for (index_t i = 0; i < count; ++i) to[i] = from[i];
        }
    }

    // image += columns over the block.
    template <class T>
    void add(const T* columns, T* image) const {
        if (stride != 1) {
            for (index_t r = 0; r < rows; ++r)
                for (index_t i = 0; i < count; ++i) image[r * width * stride + i * stride] += columns[r * out_w + i];
            return;
        }
        for (index_t r = 0; r < rows; ++r) {
            const T* from = columns + r * out_w;
            T* to = image + r * width;
#pragma omp simd
            for (index_t i = 0; i < count; ++i) to[i] += from[i];
        }
    }
};

// The traversal shared by im2col and col2im. For every kernel position it reports the
// runs of column elements that read padding, as outside(column_offset, count), and the
// block that reads the image, as inside(column_offset, image_offset, block), a
// patch_block of output rows. One call per block rather than per output row keeps the
// loops tight: the runs are short (out_w elements at most), so per-run bookkeeping
// would cost as much as the copy.
template <class Outside, class Inside>
void visit_patch_rows(index_t channels, index_t height, index_t width, index_t kernel, index_t stride,
                      index_t pad_top, index_t pad_left, index_t out_h, index_t out_w, Outside&& outside,
                      Inside&& inside) {
    index_t column = 0;
    for (index_t c = 0; c < channels; ++c)
        for (index_t ki = 0; ki < kernel; ++ki) {
            const output_range rows = inside_outputs(ki - pad_top, stride, height, out_h);
            for (index_t kj = 0; kj < kernel; ++kj) {
                const output_range cols = inside_outputs(kj - pad_left, stride, width, out_w);
                outside(column, rows.first * out_w);
                column += rows.first * out_w;
                const index_t inside_rows = rows.last - rows.first;
                if (cols.first > 0 || cols.last < out_w)
                    for (index_t r = 0; r < inside_rows; ++r) {
                        outside(column + r * out_w, cols.first);
                        outside(column + r * out_w + cols.last, out_w - cols.last);
                    }
                if (cols.last > cols.first && inside_rows > 0) {  // else the first pixel would lie outside the image
                    const index_t ih = rows.first * stride + ki - pad_top;
                    const index_t iw = cols.first * stride + kj - pad_left;
                    inside(column + cols.first, (c * height + ih) * width + iw,
                           patch_block{cols.last - cols.first, inside_rows, stride, width, out_w});
                }
                column += inside_rows * out_w;
                outside(column, (out_h - rows.last) * out_w);
                column += (out_h - rows.last) * out_w;
            }
        }
}

}  // namespace detail

template <class T>
void im2col(const T* image, index_t channels, index_t height, index_t width, index_t kernel, index_t stride,
            index_t pad_top, index_t pad_left, index_t out_h, index_t out_w, T* columns) {
    detail::visit_patch_rows(
        channels, height, width, kernel, stride, pad_top, pad_left, out_h, out_w,
        [columns](index_t column, index_t count) { std::fill_n(columns + column, count, T(0)); },
        [columns, image](index_t column, index_t pixel, const detail::patch_block& block) {
            block.copy(image + pixel, columns + column);
        });
}

template <class T>
void col2im(const T* columns, index_t channels, index_t height, index_t width, index_t kernel, index_t stride,
            index_t pad_top, index_t pad_left, index_t out_h, index_t out_w, T* image) {
    detail::visit_patch_rows(
        channels, height, width, kernel, stride, pad_top, pad_left, out_h, out_w, [](index_t, index_t) {},
        [columns, image](index_t column, index_t pixel, const detail::patch_block& block) {
            block.add(columns + column, image + pixel);
        });
}

}  // namespace nnmark
