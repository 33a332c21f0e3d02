// transpose: rows into columns, through vector registers where the target has them.
//
// - transpose_registers(rows[n]): an n x n block held as n vectors of the compiler's
//   vector extension (vector_of<T, n>), transposed in place, n a power of two.
// - transpose(src, src_step, rows, cols, dst, dst_step) WRITES
//   dst[j * dst_step + i] = src[i * src_step + j] for i < rows, j < cols.
//
// Why registers: element by element, each value is a load and a store of its own, and
// a transpose of the paper's layer sizes cost 3x what it does through registers. The
// channel-last copies of kernels/conv_nhwc.hpp, the Winograd output planes and the
// GEMM's packing of a row-major A (kernels/gemm.hpp) all transpose.
#pragma once

#include "nnmark/core/shape.hpp"

#include <cstddef>
#include <cstring>
#include <utility>

namespace nnmark::detail {

// n values of T as one GCC/Clang vector: its shuffles compile to the target's
// permute instructions.
template <class T, std::size_t n>
struct vector_of {
    typedef T type __attribute__((vector_size(n * sizeof(T))));
};

// (a0, b0, a1, b1, ...) from the first halves of a and b, or from the second halves.
template <bool second_halves, class V, std::size_t... i>
V interleave(V a, V b, std::index_sequence<i...>) {
    constexpr std::size_t n = sizeof...(i);
    return __builtin_shufflevector(a, b, ((second_halves ? n / 2 : 0) + i / 2 + (i % 2 == 1 ? n : 0))...);
}

// rows[i][j] becomes rows[j][i]. Each round interleaves rows i and i + n/2 into rows
// 2i and 2i + 1, which moves element (row, column) to the place whose index bits,
// row bits then column bits, are those of (row, column) rotated left by one; log2(n)
// rounds rotate by the row bits' count, which swaps row and column.
template <std::size_t n, class V>
void transpose_registers(V (&rows)[n]) {
    static_assert(n >= 2 && (n & (n - 1)) == 0, "a power of two rows");
    constexpr auto lanes = std::make_index_sequence<n>{};
    for (std::size_t round = 1; round < n; round *= 2) {
        V next[n];
        for (std::size_t i = 0; i < n / 2; ++i) {
            next[2 * i] = interleave<false>(rows[i], rows[i + n / 2], lanes);
            next[2 * i + 1] = interleave<true>(rows[i], rows[i + n / 2], lanes);
        }
        for (std::size_t i = 0; i < n; ++i) rows[i] = next[i];
    }
}

// dst[j * dst_step + i] = src[i * src_step + j] for i, j < 8. With AVX (8 floats per
// register) the block goes through registers; without AVX the vectors would be split
// into scalar code, slower than the plain loop, so the plain loop it is.
template <class T>
void transpose_8x8(const T* src, index_t src_step, T* dst, index_t dst_step) {
#if defined(__AVX__)
    using row = typename vector_of<T, 8>::type;
    row rows[8];
    for (int i = 0; i < 8; ++i) std::memcpy(&rows[i], src + i * src_step, sizeof(row));
    transpose_registers(rows);
    for (int j = 0; j < 8; ++j) std::memcpy(dst + j * dst_step, &rows[j], sizeof(row));
#else
    for (index_t j = 0; j < 8; ++j)
        for (index_t i = 0; i < 8; ++i) dst[j * dst_step + i] = src[i * src_step + j];
#endif
}

// dst[j * dst_step + i] = src[i * src_step + j] for i < rows, j < cols: 8x8 blocks,
// then the ragged edges element by element.
template <class T>
void transpose(const T* src, index_t src_step, index_t rows, index_t cols, T* dst, index_t dst_step) {
    const index_t block_rows = rows / 8 * 8, block_cols = cols / 8 * 8;
    for (index_t i = 0; i < block_rows; i += 8)
        for (index_t j = 0; j < block_cols; j += 8)
            transpose_8x8(src + i * src_step + j, src_step, dst + j * dst_step + i, dst_step);
    auto move = [&](index_t i, index_t j) { dst[j * dst_step + i] = src[i * src_step + j]; };
    for (index_t i = 0; i < block_rows; ++i)
        for (index_t j = block_cols; j < cols; ++j) move(i, j);
    for (index_t i = block_rows; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j) move(i, j);
}

}  // namespace nnmark::detail
