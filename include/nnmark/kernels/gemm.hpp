// gemm: C = alpha * op(A) * op(B) + beta * C for row-major matrices.
//
// op(A) is A or its transpose (trans_a), [m x k]; op(B) is B or its transpose, [k x n];
// C is [m x n]. lda, ldb, ldc are the row strides (elements between rows) of the
// matrices as stored. beta == 0 means C is written, never read (it may hold NaN).
//
// gemm_reference is the definition: the plain triple loop, in the order a reader
// would write it. gemm is the fast path; tests/kernels/test_gemm.cpp compares the two
// on odd sizes.
//
// How gemm is fast (the BLIS scheme): op(B) is copied ("packed") block by block into
// contiguous panels of NR columns, zero-padded at the right edge, and a
// register-resident microkernel updates an MR x NR tile of C from one NR-wide B panel
// and MR broadcast values of op(A) per step of k. op(A) is packed into MR-row panels
// too when a panel is reused across many B panels; otherwise a row-major op(A) is
// read in place, which spares small and skinny products (conv layers: M = 32..128,
// N = 25..900) a transpose of A. Edge tiles use narrower microkernel instances
// rather than padding. The SIMD width is xsimd's default architecture, fixed at
// compile time (-march=native gives AVX-512 or AVX2+FMA); without any SIMD the same
// code runs on one lane.
//
// Determinism: every element of C is summed over k in the same order (KC blocks,
// then p within a block) whatever the thread count, and each element belongs to
// exactly one thread, so results are bit-identical for any number of threads.
// Called from inside an OpenMP parallel region, gemm runs on the calling thread only;
// outside one it splits C into tile-aligned strips when the work pays for waking
// threads. Packing buffers are thread_local and only grow, so a steady caller
// allocates nothing.
#pragma once

#include "nnmark/core/parallel.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/kernels/positive_part.hpp"
#include "nnmark/kernels/transpose.hpp"

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstring>
#include <utility>
#include <vector>

namespace nnmark {

template <class T>
void gemm_reference(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
                    const T* b, index_t ldb, T beta, T* c, index_t ldc) {
    for (index_t i = 0; i < m; ++i) {
        for (index_t j = 0; j < n; ++j) {
            T sum = T(0);
            for (index_t p = 0; p < k; ++p) {
                const T av = trans_a ? a[p * lda + i] : a[i * lda + p];
                const T bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                sum += av * bv;
            }
            T& out = c[i * ldc + j];
            out = beta == T(0) ? alpha * sum : alpha * sum + beta * out;
        }
    }
}

namespace detail::packed_gemm {

// The register type the microkernel computes with. NNMARK_GEMM_NO_SIMD forces the
// one-lane path, so that the fallback can be tested on a machine with SIMD.
#if defined(XSIMD_NO_SUPPORTED_ARCHITECTURE) || defined(NNMARK_GEMM_NO_SIMD)
template <class T>
struct lanes {
    using type = T;
    static constexpr index_t width = 1;
    static constexpr index_t registers = 16;
    static type load_unaligned(const T* p) { return *p; }
    static void store_unaligned(T* p, type v) { *p = v; }
    // Fused, as the SIMD lanes are on FMA hardware: a plain x * y + z would be fused
    // by the compiler in some instances and not others (-ffp-contract), and a row of
    // dot_gemm alone would no longer match its row of a batch bit for bit.
    static type fma(type x, type y, type z) { return std::fma(x, y, z); }
    static T sum(type v) { return v; }
    static type positive_part(type v) { return nnmark::positive_part(v); }
};
#else
template <class T>
struct lanes {
    using type = xsimd::batch<T>;
    static constexpr index_t width = static_cast<index_t>(type::size);
    // AVX-512 has 32 vector registers, AVX2 and SSE have 16.
    static constexpr index_t registers = width * static_cast<index_t>(sizeof(T)) >= 64 ? 32 : 16;
    static type load_unaligned(const T* p) { return type::load_unaligned(p); }
    static void store_unaligned(T* p, type v) { v.store_unaligned(p); }
    static type fma(type x, type y, type z) { return xsimd::fma(x, y, z); }
    // nnmark::positive_part lane by lane.
    static type positive_part(type v) { return xsimd::select(v > type(T(0)), v, type(T(0))); }
    static T sum(type v) {  // lane by lane, in order (xsimd's hadd warns under GCC 12 for AVX-512 doubles)
        alignas(64) T values[width];
        v.store_aligned(values);
        T total = T(0);
        for (index_t i = 0; i < width; ++i) total += values[i];
        return total;
    }
};
#endif

// Alignment of the packing buffers: one AVX-512 register, enough for any lane width.
inline constexpr std::size_t buffer_alignment = 64;

template <class T>
using buffer = std::vector<T, xsimd::aligned_allocator<T, buffer_alignment>>;

// The tile of C one microkernel call updates: NR = two registers wide, and as many
// rows as leave registers for the two B vectors and the broadcast A value
// (float: 14 x 32 with AVX-512, 6 x 16 with AVX2).
template <class T>
struct tile {
    static constexpr index_t vectors = 2;
    static constexpr index_t nr = vectors * lanes<T>::width;
    static constexpr index_t mr = (lanes<T>::registers - 4) / vectors;
};

// Cache blocking: a KC x NR panel of B streams from L2 while an MR x KC panel of A
// stays in L1; the KC x NC block of B fits in half of a 1 MiB L2, the MC x KC block
// of A in L3.
template <class T>
struct blocking {
    static constexpr index_t kc = 384;
    static constexpr index_t nc = (512 * 1024 / static_cast<index_t>(sizeof(T)) / kc) / tile<T>::nr * tile<T>::nr;
    static constexpr index_t mc = 4096 / tile<T>::mr * tile<T>::mr;
};

// op(X) of the caller as element (row, col) -> data[row * row_step + col * col_step].
template <class T>
struct operand {
    const T* data;
    index_t row_step;
    index_t col_step;

    static operand of(const T* data, index_t ld, bool transposed) {
        return transposed ? operand{data, 1, ld} : operand{data, ld, 1};
    }
    const T* at(index_t row, index_t col) const { return data + row * row_step + col * col_step; }
    operand shifted(index_t row, index_t col) const { return {at(row, col), row_step, col_step}; }
};

// The transposing part of pack_panel below for a source with p contiguous
// (src(p, w) = src[p + w * w_step]), in blocks of n x n (n = lanes) through registers:
// the first kc / n * n values of p, which it returns. Rows of the block at w >= valid
// are zeros, so the padding lanes come out zero. Measured on a 1024^3 product with a
// row-major A: packing A took 6% of the time element by element, 3% this way (the
// rest is waiting for A to arrive from memory).
template <index_t width, class T>
index_t pack_transposed_blocks(const T* src, index_t w_step, index_t kc, index_t valid, T* out) {
    constexpr index_t n = lanes<T>::width;
    if constexpr (n == 1) {
        return 0;  // no SIMD: nothing to gain from registers
    } else {
        using row = typename vector_of<T, static_cast<std::size_t>(n)>::type;
        constexpr index_t last_group_width = width % n == 0 ? n : width % n;
        index_t p = 0;
        for (; p + n <= kc; p += n)
            for (index_t w0 = 0; w0 < width; w0 += n) {
                row rows[n];
                for (index_t i = 0; i < n; ++i) {
                    if (w0 + i < valid)
                        std::memcpy(&rows[i], src + p + (w0 + i) * w_step, sizeof(row));
                    else
                        rows[i] = row{};
                }
                transpose_registers(rows);
                // Sizes fixed at compile time, so each copy is a store or two.
                T* to = out + p * width + w0;
                if (w0 + n <= width)
                    for (index_t q = 0; q < n; ++q) std::memcpy(to + q * width, &rows[q], n * sizeof(T));
                else
                    for (index_t q = 0; q < n; ++q)
                        std::memcpy(to + q * width, &rows[q], last_group_width * sizeof(T));
            }
        return p;
    }
}

// Copies the kc x valid block src(p, w) = src[p * p_step + w * w_step] into
// out[p * width + w]. Columns valid..width-1 are zero-filled: the microkernel loads
// whole B registers, and zeros there (rather than stale values that may be NaN or
// denormal) keep the discarded lanes cheap. The contiguous direction of the source
// is the inner loop in both layouts.
template <index_t width, class T>
void pack_panel(const T* src, index_t p_step, index_t w_step, index_t kc, index_t valid, T* out) {
    if (w_step == 1) {
        // Fixed-width inner loops: the compiler turns them into a few vector moves
        // where a library call per row would cost more than the copy.
        for (index_t p = 0; p < kc; ++p) {
            T* row = out + p * width;
            const T* from = src + p * p_step;
            if (valid == width) {
                for (index_t w = 0; w < width; ++w) row[w] = from[w];
            } else {
                for (index_t w = 0; w < width; ++w) row[w] = w < valid ? from[w] : T(0);
            }
        }
        return;
    }
    // Transposing: blocks through registers where p is contiguous in the source, then
    // chunks of a few p per source row, so each source cache line is read once while
    // its values are spread over a few destination rows.
    index_t p = p_step == 1 ? pack_transposed_blocks<width>(src, w_step, kc, valid, out) : 0;
    constexpr index_t chunk = 8;
    for (; p + chunk <= kc; p += chunk) {
        for (index_t w = 0; w < valid; ++w) {
            const T* from = src + p * p_step + w * w_step;
#pragma GCC unroll 8
            for (index_t q = 0; q < chunk; ++q) out[(p + q) * width + w] = from[q * p_step];
        }
        for (index_t w = valid; w < width; ++w)
#pragma GCC unroll 8
            for (index_t q = 0; q < chunk; ++q) out[(p + q) * width + w] = T(0);
    }
    for (; p < kc; ++p)
        for (index_t w = 0; w < width; ++w) out[p * width + w] = w < valid ? src[p * p_step + w * w_step] : T(0);
}

// Rows [0, rows) x columns [0, kc) of op(A) as panels of MR rows, each [kc][MR].
template <class T>
void pack_a(const operand<T>& a, index_t rows, index_t kc, T* out) {
    constexpr index_t mr = tile<T>::mr;
    for (index_t i = 0; i < rows; i += mr)
        pack_panel<mr>(a.at(i, 0), a.col_step, a.row_step, kc, std::min(mr, rows - i), out + i * kc);
}

// Rows [0, kc) x columns [0, cols) of op(B) as panels of NR columns, each [kc][NR].
template <class T>
void pack_b(const operand<T>& b, index_t kc, index_t cols, T* out) {
    constexpr index_t nr = tile<T>::nr;
    for (index_t j = 0; j < cols; j += nr)
        pack_panel<nr>(b.at(0, j), b.row_step, b.col_step, kc, std::min(nr, cols - j), out + j * kc);
}

// Where the microkernel reads an operand: from a packed panel (A: element (r, p) at
// a[p * MR + r]; B: element (p, v) at b[p * NR + v]), or in place from the caller's
// memory (A: a[r * lda + p]; B: b[p * ldb + v]), or, for A, in place from its
// transpose (a[p * lda + r]). In place saves packing a panel that would be used only
// a few times: a row-major op(A) in skinny products, the channel-last images that
// kernels/conv_nhwc.hpp multiplies without unrolling, and the transformed tiles of
// kernels/winograd.hpp's weight gradient, summed over tiles (the rows of both).
enum class a_layout { packed, in_place, transposed_in_place };
enum class b_layout { packed, in_place };

// The operands of one tile product: acc[r][v] = sum over p of A(r, p) * B(p, v), with
// p running over `segments` runs of `length` steps. Run s starts at
// a + s * a_segment_step and b + s * b_segment_step, so a sum that is not one
// contiguous walk (a convolution window: k image rows) still stays in registers.
// A plain GEMM tile is one run.
template <class T>
struct tile_walk {
    const T* a;
    index_t lda;  // in-place A: elements between rows (transposed: between steps of p)
    const T* b;
    index_t ldb;  // in-place B: elements between steps of p
    index_t length;
    index_t segments = 1;
    index_t a_segment_step = 0;
    index_t b_segment_step = 0;
};

// The register tile itself: `rows` rows of A times `vectors` registers of B, summed
// over the walk. Full tiles use rows = MR, vectors = 2; narrower instances serve the
// edges, so a 128-row or 200-column C does not pay for the zero padding of its last
// tile. The finished accumulators go to `sink.store`, which decides where they land
// (scaled into row-major C here; transposed into image planes for convolutions).
template <class T, a_layout a_at, b_layout b_at, index_t rows, index_t vectors, class Sink>
void tile_kernel(const tile_walk<T>& walk, const Sink& sink, index_t cols) {
    using simd = lanes<T>;
    using vec = typename simd::type;
    constexpr index_t w = simd::width;
    const index_t a_row_step = a_at == a_layout::in_place ? walk.lda : 1;
    const index_t a_p_step = a_at == a_layout::packed ? tile<T>::mr : a_at == a_layout::in_place ? 1 : walk.lda;
    const index_t b_p_step = b_at == b_layout::packed ? tile<T>::nr : walk.ldb;
    vec acc[rows][vectors];
#pragma GCC unroll 32
    for (index_t r = 0; r < rows; ++r)
#pragma GCC unroll 4
        for (index_t v = 0; v < vectors; ++v) acc[r][v] = vec(T(0));
    for (index_t s = 0; s < walk.segments; ++s) {
        const T* a = walk.a + s * walk.a_segment_step;
        const T* b_row = walk.b + s * walk.b_segment_step;
        for (index_t p = 0; p < walk.length; ++p, a += a_p_step, b_row += b_p_step) {
            vec b[vectors];
#pragma GCC unroll 4
            for (index_t v = 0; v < vectors; ++v)
                b[v] = simd::load_unaligned(b_row + v * w);  // as fast as an aligned load on aligned data
#pragma GCC unroll 32
            for (index_t r = 0; r < rows; ++r) {
                const vec a_r(a[r * a_row_step]);
#pragma GCC unroll 4
                for (index_t v = 0; v < vectors; ++v) acc[r][v] = simd::fma(a_r, b[v], acc[r][v]);
            }
        }
    }
    sink.template store<rows, vectors>(acc, cols);
}

// Where a GEMM tile lands: c[rows x cols] = alpha * acc + beta * c, beta == 0 never
// reading c.
template <class T>
struct scaled_store {
    T alpha, beta;
    T* c;
    index_t ldc;

    template <index_t rows, index_t vectors>
    void store(const typename lanes<T>::type (&acc)[rows][vectors], index_t cols) const {
        constexpr index_t width = vectors * lanes<T>::width;
        if (cols == width) return write<rows, vectors>(acc, c, ldc);
        // A tile cut by the right edge of C goes through a full-width copy, so its
        // elements are computed by the same instructions as in a full tile.
        alignas(buffer_alignment) T edge[rows * width] = {};
        if (beta != T(0))
            for (index_t r = 0; r < rows; ++r) std::copy_n(c + r * ldc, cols, edge + r * width);
        write<rows, vectors>(acc, edge, width);
        for (index_t r = 0; r < rows; ++r) std::copy_n(edge + r * width, cols, c + r * ldc);
    }

    template <index_t rows, index_t vectors>
    void write(const typename lanes<T>::type (&acc)[rows][vectors], T* out_c, index_t out_ldc) const {
        using simd = lanes<T>;
        using vec = typename simd::type;
        const vec alpha_v(alpha), beta_v(beta);
#pragma GCC unroll 32
        for (index_t r = 0; r < rows; ++r)
#pragma GCC unroll 4
            for (index_t v = 0; v < vectors; ++v) {
                T* out = out_c + r * out_ldc + v * simd::width;
                const vec scaled = acc[r][v] * alpha_v;
                simd::store_unaligned(out, beta == T(0) ? scaled : simd::fma(beta_v, simd::load_unaligned(out), scaled));
            }
    }
};

template <class T, class Sink>
using kernel_fn = void (*)(const tile_walk<T>& walk, const Sink& sink, index_t cols);

// Every (rows, vectors) instance, one vector wide first: table[(vectors - 1) * MR + rows - 1].
template <class T, a_layout a_at, b_layout b_at, class Sink, index_t... r>
constexpr auto kernel_table(std::integer_sequence<index_t, r...>) {
    static_assert(tile<T>::vectors == 2, "the table lists one- and two-register instances");
    return std::array<kernel_fn<T, Sink>, 2 * sizeof...(r)>{tile_kernel<T, a_at, b_at, r + 1, 1, Sink>...,
                                                             tile_kernel<T, a_at, b_at, r + 1, 2, Sink>...};
}

// The tile kernel for `rows` x `cols` elements (rows <= MR, cols <= NR).
template <class T, a_layout a_at, b_layout b_at, class Sink>
kernel_fn<T, Sink> kernel_for(index_t rows, index_t cols) {
    static constexpr auto table =
        kernel_table<T, a_at, b_at, Sink>(std::make_integer_sequence<index_t, tile<T>::mr>{});
    const index_t vectors = cols > lanes<T>::width ? 2 : 1;
    return table[static_cast<std::size_t>((vectors - 1) * tile<T>::mr + rows - 1)];
}

// C[mc x nc] += the product of an A block (packed or in place) and a packed B block.
template <class T, a_layout layout>
void multiply_block(index_t mc, index_t nc, index_t kc, const T* a, index_t lda, const T* b_packed, T alpha, T beta,
                    T* c, index_t ldc) {
    constexpr index_t mr = tile<T>::mr;
    constexpr index_t nr = tile<T>::nr;
    for (index_t i = 0; i < mc; i += mr) {
        const index_t rows = std::min(mr, mc - i);
        const T* a_rows = layout == a_layout::packed ? a + i * kc : a + i * lda;
        for (index_t j = 0; j < nc; j += nr) {
            const index_t cols = std::min(nr, nc - j);
            const tile_walk<T> walk{a_rows, lda, b_packed + j * kc, 0, kc};
            const scaled_store<T> sink{alpha, beta, c + i * ldc + j, ldc};
            kernel_for<T, layout, b_layout::packed, scaled_store<T>>(rows, cols)(walk, sink, cols);
        }
    }
}

// From this many B panels per A panel on, packing A costs less than reading it in place.
inline constexpr index_t col_tiles_to_pack_a = 16;

// One thread's whole product, op(A) [m x k] times op(B) [k x n] into C.
template <class T>
void run_blocked(const operand<T>& a, const operand<T>& b, index_t m, index_t n, index_t k, T alpha, T beta, T* c,
                 index_t ldc) {
    using block = blocking<T>;
    constexpr index_t mr = tile<T>::mr;
    constexpr index_t nr = tile<T>::nr;
    thread_local buffer<T> a_packed, b_packed;
    // Equal K blocks rather than full ones plus a remainder: no block is short.
    const index_t k_blocks = (k + block::kc - 1) / block::kc;
    const index_t kc_max = (k + k_blocks - 1) / k_blocks;
    const index_t mc_max = std::min(block::mc, (m + mr - 1) / mr * mr);
    const index_t nc_max = std::min(block::nc, (n + nr - 1) / nr * nr);
    // A row-major op(A) is read in place unless each A panel meets many B panels:
    // there packing pays for itself, and in place the MR rows, often a power of two
    // apart, would compete for the same L1 sets. A transposed op(A) packs by plain
    // copies, so it is always packed.
    const bool a_in_place = a.col_step == 1 && (n + nr - 1) / nr < col_tiles_to_pack_a;
    if (!a_in_place) a_packed.resize(std::max(a_packed.size(), static_cast<std::size_t>(mc_max * kc_max)));
    b_packed.resize(std::max(b_packed.size(), static_cast<std::size_t>(nc_max * kc_max)));

    for (index_t p0 = 0; p0 < k; p0 += kc_max) {
        const index_t kc = std::min(kc_max, k - p0);
        // The first K block applies the caller's beta; later ones add to it.
        const T block_beta = p0 == 0 ? beta : T(1);
        for (index_t i0 = 0; i0 < m; i0 += block::mc) {
            const index_t mc = std::min(block::mc, m - i0);
            const operand<T> a_block = a.shifted(i0, p0);
            if (!a_in_place) pack_a(a_block, mc, kc, a_packed.data());
            for (index_t j0 = 0; j0 < n; j0 += block::nc) {
                const index_t nc = std::min(block::nc, n - j0);
                pack_b(b.shifted(p0, j0), kc, nc, b_packed.data());
                T* c_block = c + i0 * ldc + j0;
                if (a_in_place)
                    multiply_block<T, a_layout::in_place>(mc, nc, kc, a_block.data, a.row_step, b_packed.data(),
                                                          alpha, block_beta, c_block, ldc);
                else
                    multiply_block<T, a_layout::packed>(mc, nc, kc, a_packed.data(), 0, b_packed.data(), alpha,
                                                        block_beta, c_block, ldc);
            }
        }
    }
}

// C = beta * C, for k == 0, where there is no product to add.
template <class T>
void scale(index_t m, index_t n, T beta, T* c, index_t ldc) {
    for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
}

// Below this many multiply-adds per thread (a third of a millisecond of one core),
// waking a thread costs more than it saves: on a machine shared with other work the
// second thread may wait for a core, and batch-1 inference, a chain of small
// products, then waits at every product. Measured: paper-cifar10 at batch 1 on two
// busy cores ran 5x slower with 1 << 21 than on one thread, and as fast with this.
// The price: a product below 2 x this (256^3, a dense layer at batch 128) uses one
// thread even on an idle machine.
inline constexpr long long fmas_per_thread = 1LL << 25;

// Part `part` of `parts` of the product: a strip of whole tiles along the dimension
// with more tiles, so that the tile grid, and with it every element's arithmetic, is
// the one a single thread would use.
template <class T>
void run_part(int part, int parts, const operand<T>& a, const operand<T>& b, index_t m, index_t n, index_t k,
              T alpha, T beta, T* c, index_t ldc) {
    constexpr index_t mr = tile<T>::mr;
    constexpr index_t nr = tile<T>::nr;
    const index_t row_tiles = (m + mr - 1) / mr;
    const index_t col_tiles = (n + nr - 1) / nr;
    const bool split_rows = row_tiles > col_tiles;
    const index_t tiles = split_rows ? row_tiles : col_tiles;
    const index_t step = split_rows ? mr : nr;
    const index_t extent = split_rows ? m : n;
    const index_t begin = std::min(extent, tiles * part / parts * step);
    const index_t end = std::min(extent, tiles * (part + 1) / parts * step);
    if (begin >= end) return;
    if (split_rows)
        run_blocked(a.shifted(begin, 0), b, end - begin, n, k, alpha, beta, c + begin * ldc, ldc);
    else
        run_blocked(a, b.shifted(0, begin), m, end - begin, k, alpha, beta, c + begin, ldc);
}

}  // namespace detail::packed_gemm

template <class T>
    requires std::same_as<T, float> || std::same_as<T, double>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
          const T* b, index_t ldb, T beta, T* c, index_t ldc) {
    namespace pg = detail::packed_gemm;
    if (m <= 0 || n <= 0) return;
    if (k <= 0) return pg::scale(m, n, beta, c, ldc);
    const auto op_a = pg::operand<T>::of(a, lda, trans_a);
    const auto op_b = pg::operand<T>::of(b, ldb, trans_b);
    const long long work = static_cast<long long>(m) * n * k;
    const int threads = threads_for(work, pg::fmas_per_thread);  // 1 inside a parallel region
    if (threads == 1) return pg::run_blocked(op_a, op_b, m, n, k, alpha, beta, c, ldc);
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
    pg::run_part(omp_get_thread_num(), omp_get_num_threads(), op_a, op_b, m, n, k, alpha, beta, c, ldc);
#endif
}

}  // namespace nnmark
