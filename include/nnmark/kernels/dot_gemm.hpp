// dot_gemm: C = alpha * A * B^T + beta * C where A [m x k] and B [n x k] are both
// row-major, so that every element of C is the dot product of two contiguous rows.
//
// A dense layer's forward pass is this product (x [batch x in] times W^T, W stored
// [out x in] as PyTorch stores it). gemm (gemm.hpp) would pack W^T, a copy of all of W
// on every call; here both operands are read in place. And every element is summed
// the same way whatever the other dimensions are: lane j of a register accumulates
// the products p = j, j + lanes, ... in order, the lanes are then added in order, then
// the products past the last whole register. So a sample alone gets bit-for-bit the
// result it gets inside a batch, which a served model needs (the same query answers
// the same, however the server groups queries), and a batch of one costs what a
// matrix-vector product costs instead of a register tile with one useful lane.
//
// beta == 0 means C is written, never read. Determinism: each element is computed by
// one thread in the order above, whichever strip of C (rows or columns) the thread
// has, so results are bit-identical for any thread count.
// dot_gemm_reference is gemm_reference(false, true, ...); tests/kernels/test_dot_gemm.cpp
// compares them on odd sizes.
#pragma once

#include "nnmark/kernels/gemm.hpp"

#include <algorithm>

namespace nnmark {

namespace detail::dot_products {

using packed_gemm::lanes;

// Columns of C per tile: four rows of B, each load of an A register serving four.
inline constexpr index_t tile_cols = 4;
inline constexpr index_t max_tile_rows = 4;

// Multiply-adds per thread below which a second thread costs more than it saves: some
// microseconds, about what batch-1 inference's dense layers take (paper-mnist's first
// has 2^17.6, read from a weight matrix of 800 KiB, so each core's cache holds half).
inline constexpr long long fmas_per_thread = 1LL << 16;

// C[rows x cols] of the tile at a (rows of A) and b (rows of B), rows <= 4, cols <= 4.
// The last tile of a row repeats B's last row where it runs out of rows rather than
// varying the loop in the hot path; the repeats are not stored.
template <class T, index_t rows>
void dot_tile(index_t k, const T* a, index_t lda, const T* b, index_t ldb, index_t cols, T alpha, T beta, T* c,
              index_t ldc) {
    using simd = lanes<T>;
    using vec = typename simd::type;
    constexpr index_t w = simd::width;
    const T* b_row[tile_cols];
    for (index_t j = 0; j < tile_cols; ++j) b_row[j] = b + std::min(j, cols - 1) * ldb;
    vec acc[rows][tile_cols];
#pragma GCC unroll 4
    for (index_t r = 0; r < rows; ++r)
#pragma GCC unroll 4
        for (index_t j = 0; j < tile_cols; ++j) acc[r][j] = vec(T(0));
    const index_t whole = k / w * w;
    for (index_t p = 0; p < whole; p += w) {
        vec bv[tile_cols];
#pragma GCC unroll 4
        for (index_t j = 0; j < tile_cols; ++j) bv[j] = simd::load_unaligned(b_row[j] + p);
#pragma GCC unroll 4
        for (index_t r = 0; r < rows; ++r) {
            const vec av = simd::load_unaligned(a + r * lda + p);
#pragma GCC unroll 4
            for (index_t j = 0; j < tile_cols; ++j) acc[r][j] = simd::fma(av, bv[j], acc[r][j]);
        }
    }
    for (index_t r = 0; r < rows; ++r)
        for (index_t j = 0; j < cols; ++j) {
            T dot = simd::sum(acc[r][j]);
            for (index_t p = whole; p < k; ++p) dot += a[r * lda + p] * b_row[j][p];
            T& out = c[r * ldc + j];
            out = beta == T(0) ? alpha * dot : alpha * dot + beta * out;
        }
}

// The elements of C in rows row_range and columns column_range.
template <class T>
void multiply_part(index_range row_range, index_range column_range, index_t k, T alpha, const T* a, index_t lda,
                   const T* b, index_t ldb, T beta, T* c, index_t ldc) {
    for (index_t i = row_range.first; i < row_range.last; i += max_tile_rows) {
        const index_t rows = std::min(max_tile_rows, row_range.last - i);
        for (index_t j = column_range.first; j < column_range.last; j += tile_cols) {
            const index_t cols = std::min(tile_cols, column_range.last - j);
            const T* a_rows = a + i * lda;
            const T* b_rows = b + j * ldb;
            T* c_tile = c + i * ldc + j;
            switch (rows) {
                case 1: dot_tile<T, 1>(k, a_rows, lda, b_rows, ldb, cols, alpha, beta, c_tile, ldc); break;
                case 2: dot_tile<T, 2>(k, a_rows, lda, b_rows, ldb, cols, alpha, beta, c_tile, ldc); break;
                case 3: dot_tile<T, 3>(k, a_rows, lda, b_rows, ldb, cols, alpha, beta, c_tile, ldc); break;
                default: dot_tile<T, 4>(k, a_rows, lda, b_rows, ldb, cols, alpha, beta, c_tile, ldc); break;
            }
        }
    }
}

}  // namespace detail::dot_products

template <class T>
void dot_gemm_reference(index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda, const T* b, index_t ldb,
                        T beta, T* c, index_t ldc) {
    gemm_reference(false, true, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <class T>
    requires std::same_as<T, float> || std::same_as<T, double>
void dot_gemm(index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c,
              index_t ldc) {
    namespace dp = detail::dot_products;
    if (m <= 0 || n <= 0) return;
    const long long work = static_cast<long long>(m) * n * k;
    // C in strips of whole tiles, taken by the threads as they come (share_chunks):
    // strips of rows while there are as many row tiles as threads (a dense layer at
    // batch 128), else strips of columns (a batch of one: each thread reads its part of
    // B, the layer's weights). The tiles are those of one thread either way.
    const index_t row_tiles = (m + dp::max_tile_rows - 1) / dp::max_tile_rows;
    const index_t col_tiles = (n + dp::tile_cols - 1) / dp::tile_cols;
    const int wanted = threads_for(work, dp::fmas_per_thread);
    const bool by_rows = row_tiles >= wanted;
    const index_t tiles = by_rows ? row_tiles : col_tiles;
    const int threads = static_cast<int>(std::min<index_t>(wanted, tiles));
    share_chunks(tiles, std::min<index_t>(tiles, index_t(threads) * 4), threads, [&](int, index_t first, index_t last) {
        const index_range rows = by_rows ? index_range{first * dp::max_tile_rows, std::min(m, last * dp::max_tile_rows)}
                                         : index_range{0, m};
        const index_range columns =
            by_rows ? index_range{0, n} : index_range{first * dp::tile_cols, std::min(n, last * dp::tile_cols)};
        dp::multiply_part(rows, columns, k, alpha, a, lda, b, ldb, beta, c, ldc);
    });
}

}  // namespace nnmark
