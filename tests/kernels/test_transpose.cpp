#include "nnmark/kernels/transpose.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

using namespace nnmark;

namespace transpose_tests {

// Distinct values, so a transpose that lands any element in the wrong place shows.
template <class T>
T value_at(index_t row, index_t col) {
    return static_cast<T>(row * 1000 + col);
}

// transpose_registers on an n x n block of vector_of<T, n> rows, against its definition.
template <class T, std::size_t n>
bool registers_transpose() {
    using row = typename detail::vector_of<T, n>::type;
    row rows[n];
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) rows[i][j] = value_at<T>(static_cast<index_t>(i), static_cast<index_t>(j));
    detail::transpose_registers(rows);
    bool same = true;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            same = same && rows[i][j] == value_at<T>(static_cast<index_t>(j), static_cast<index_t>(i));
    return same;
}

}  // namespace transpose_tests

TEST_CASE_TEMPLATE("transpose_registers: an n x n block of vectors becomes its transpose, up to one AVX-512 register",
                   T, float, double) {
    using transpose_tests::registers_transpose;
    CHECK(registers_transpose<T, 2>());
    CHECK(registers_transpose<T, 4>());
    CHECK(registers_transpose<T, 8>());
    // 16 lanes only where they fit one 64-byte register, as the GEMM's blocks do
    // (wider vectors are passed in memory, which GCC notes as an ABI change).
    if constexpr (sizeof(T) * 16 <= 64) CHECK(registers_transpose<T, 16>());
}

TEST_CASE_TEMPLATE("transpose: matches its definition on odd sizes, with strides, leaving the rest of dst alone", T,
                   float, double) {
    using transpose_tests::value_at;
    for (index_t rows : {1, 3, 7, 8, 9, 17, 33})
        for (index_t cols : {1, 3, 7, 8, 9, 17, 33}) {
            CAPTURE(rows);
            CAPTURE(cols);
            const index_t src_step = cols + 2, dst_step = rows + 3;  // both wider than the matrix
            std::vector<T> src(static_cast<std::size_t>(rows * src_step));
            for (index_t i = 0; i < rows; ++i)
                for (index_t j = 0; j < cols; ++j) src[static_cast<std::size_t>(i * src_step + j)] = value_at<T>(i, j);
            const T untouched = T(-1);
            std::vector<T> dst(static_cast<std::size_t>(cols * dst_step), untouched);
            detail::transpose(src.data(), src_step, rows, cols, dst.data(), dst_step);
            bool same = true;
            for (index_t j = 0; j < cols; ++j)
                for (index_t i = 0; i < dst_step; ++i)
                    same = same && dst[static_cast<std::size_t>(j * dst_step + i)] == (i < rows ? value_at<T>(i, j) : untouched);
            CHECK(same);
        }
}
