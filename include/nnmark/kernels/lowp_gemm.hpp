// lowp_gemm: lower-precision products for inference, C = A * B^T with A the weights
// [m x k] and B the inputs [n x k] (each column of the product's right factor, one
// output pixel's window or one sample, a row of B):
// - int8_dot: A int8 (weights), B uint8 (activations), C int32, exact;
// - bf16_dot: A and B bfloat16 bit patterns, C float (each product of two bfloat16 is
//   exact in float; only the sums round).
// What the codes mean is kernels/quantization.hpp's business; this header multiplies.
//
// lowp_gemm_reference is the definition, the plain loops; lowp_gemm is the fast path,
// tests/kernels/test_lowp_gemm.cpp compares the two on odd sizes.
//
// How lowp_gemm is fast: the structure of kernels/gemm.hpp (a register tile of MR rows
// by a few 16-lane vectors, B packed into NR-wide panels, A into MR-row panels), with
// the product step of the hardware's dot-product instructions, which multiply `group`
// consecutive k at once: 4 u8 x s8 pairs summed into each s32 lane (AVX512_VNNI
// vpdpbusd, 64 multiply-adds per instruction where float FMA does 16), or 2 bf16 pairs
// into each float lane (AVX512_BF16 vdpbf16ps, 32). So panels hold k in groups:
// A panel [k/group][MR][group], B panel [k/group][NR][group], zero-padded; one
// 32-bit broadcast of A (a row's group) times one B vector (16 columns' groups) is one
// instruction. The weights are packed once (lowp_weights), the inputs per call.
// lowp_product packs B through a gather (column_offset(j) + group_offset[q]: the start
// of column j's q-th group in the caller's memory; one AVX-512 gather per 16 columns),
// so that a strided convolution packs its windows straight from its encoded image (no
// im2col matrix) and a dense layer its samples, by the same code. Where the caller's
// layout already puts the same group of consecutive columns side by side (a stride-1
// convolution's image in layers/lowp_linear.hpp), lowp_product_in_place loads the B
// vectors where they lie and packs nothing.
//
// Dispatch is at compile time, as gemm's SIMD width is: the int8 instruction needs
// __AVX512VNNI__, the bf16 one __AVX512BF16__ (both set by -march=native on a CPU
// that has them); without them, or with NNMARK_GEMM_NO_SIMD, the same tiles run with
// the instruction written out lane by lane (portable, slower, the same results for
// int8; bf16 sums may round differently, as the hardware adds a pair's two products
// in its own order).
#pragma once

#include "nnmark/core/half_float.hpp"
#include "nnmark/core/shape.hpp"

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#if !defined(NNMARK_GEMM_NO_SIMD) && (defined(__AVX512VNNI__) || defined(__AVX512BF16__))
#include <immintrin.h>
#endif

namespace nnmark {

struct int8_dot {
    using weight = std::int8_t;
    using input = std::uint8_t;
    using accumulator = std::int32_t;
    static constexpr index_t group = 4;
    static accumulator product(weight w, input x) { return static_cast<accumulator>(w) * x; }
};

struct bf16_dot {
    using weight = std::uint16_t;  // bfloat16 bit patterns (core/half_float.hpp)
    using input = std::uint16_t;
    using accumulator = float;
    static constexpr index_t group = 2;
    static accumulator product(weight w, input x) { return float_from_bf16(w) * float_from_bf16(x); }
};

// c[i * ldc + j] = sum over p of a[i * lda + p] * b[j * ldb + p], summed in order of p.
template <class Dot>
void lowp_gemm_reference(index_t m, index_t n, index_t k, const typename Dot::weight* a, index_t lda,
                         const typename Dot::input* b, index_t ldb, typename Dot::accumulator* c, index_t ldc) {
    for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) {
            typename Dot::accumulator sum = 0;
            for (index_t p = 0; p < k; ++p) sum += Dot::product(a[i * lda + p], b[j * ldb + p]);
            c[i * ldc + j] = sum;
        }
}

namespace detail::lowp {

inline constexpr index_t lanes = 16;                 // 32-bit accumulators per 512-bit vector
inline constexpr index_t mr = 8;                     // rows of the register tile
inline constexpr index_t max_vectors = 3;            // 8 x 3 accumulators + 3 B vectors + 1 broadcast <= 32 registers
inline constexpr index_t nr = max_vectors * lanes;   // columns of a B panel

// One vector of accumulators and the dot-product step: acc[l] += sum over e < group of
// a_group[e] * b_vector[l * group + e]. The portable form is the definition of the
// instructions' arithmetic.
template <class Dot>
struct portable_lanes {
    using type = std::array<typename Dot::accumulator, lanes>;  // the accumulators
    using inputs = std::array<typename Dot::input, lanes * Dot::group>;  // one B vector: 16 columns' groups
    static type zero() { return {}; }
    static inputs load(const typename Dot::input* b) {
        inputs v;
        std::memcpy(v.data(), b, sizeof v);
        return v;
    }
    static type dot(type acc, const inputs& b, const typename Dot::weight* a) {
        for (index_t l = 0; l < lanes; ++l)
            for (index_t e = 0; e < Dot::group; ++e) acc[l] += Dot::product(a[e], b[l * Dot::group + e]);
        return acc;
    }
    static void store(typename Dot::accumulator* out, const type& v) { std::memcpy(out, v.data(), sizeof v); }
};

template <class Dot>
struct simd_lanes : portable_lanes<Dot> {};

// The broadcast of one row's group of A (4 s8 or 2 bf16: 32 bits) to every lane.
#if !defined(NNMARK_GEMM_NO_SIMD) && (defined(__AVX512VNNI__) || defined(__AVX512BF16__))
template <class W>
__m512i broadcast_group(const W* a) {
    std::int32_t group;
    std::memcpy(&group, a, sizeof group);
    return _mm512_set1_epi32(group);
}
#endif

#if !defined(NNMARK_GEMM_NO_SIMD) && defined(__AVX512VNNI__)
template <>
struct simd_lanes<int8_dot> {
    using type = __m512i;
    using inputs = __m512i;
    static type zero() { return _mm512_setzero_si512(); }
    static inputs load(const std::uint8_t* b) { return _mm512_loadu_si512(b); }
    // vpdpbusd: unsigned bytes (the inputs) times signed bytes (the weights), four
    // products per lane summed into the lane's s32 without saturation.
    static type dot(type acc, inputs b, const std::int8_t* a) { return _mm512_dpbusd_epi32(acc, b, broadcast_group(a)); }
    static void store(std::int32_t* out, type v) { _mm512_storeu_si512(out, v); }
};
#endif

#if !defined(NNMARK_GEMM_NO_SIMD) && defined(__AVX512BF16__)
template <>
struct simd_lanes<bf16_dot> {
    using type = __m512;
    using inputs = __m512i;
    static type zero() { return _mm512_setzero_ps(); }
    static inputs load(const std::uint16_t* b) { return _mm512_loadu_si512(b); }
    // vdpbf16ps: two bf16 products per lane added to the lane's float.
    static type dot(type acc, inputs b, const std::uint16_t* a) {
        return _mm512_dpbf16_ps(acc, std::bit_cast<__m512bh>(b), std::bit_cast<__m512bh>(broadcast_group(a)));
    }
    static void store(float* out, type v) { _mm512_storeu_ps(out, v); }
};
#endif

template <class T>
using buffer = std::vector<T, xsimd::aligned_allocator<T, 64>>;

inline index_t groups_of(index_t k, index_t group) { return (k + group - 1) / group; }

}  // namespace detail::lowp

// The weights of a lower-precision product, packed once into MR-row panels.
template <class Dot>
class lowp_weights {
public:
    lowp_weights() = default;

    // a is [rows x k], row-major with row stride lda.
    lowp_weights(index_t rows, index_t k, const typename Dot::weight* a, index_t lda)
        : rows_(rows), k_(k), groups_(detail::lowp::groups_of(k, Dot::group)) {
        namespace lp = detail::lowp;
        const index_t panels = (rows + lp::mr - 1) / lp::mr;
        packed_.assign(static_cast<std::size_t>(panels * panel_size()), typename Dot::weight(0));
        for (index_t i = 0; i < rows; ++i) {
            typename Dot::weight* panel = packed_.data() + i / lp::mr * panel_size();
            for (index_t p = 0; p < k; ++p)
                panel[(p / Dot::group * lp::mr + i % lp::mr) * Dot::group + p % Dot::group] = a[i * lda + p];
        }
    }

    index_t rows() const { return rows_; }
    index_t k() const { return k_; }
    index_t groups() const { return groups_; }
    // Panel i covers rows [i * MR, i * MR + MR): [groups][MR][group] elements.
    const typename Dot::weight* panel(index_t i) const { return packed_.data() + i * panel_size(); }
    index_t panel_size() const { return groups_ * detail::lowp::mr * Dot::group; }

private:
    index_t rows_ = 0, k_ = 0, groups_ = 0;
    detail::lowp::buffer<typename Dot::weight> packed_;
};

namespace detail::lowp {

// Every group is 32 bits (4 u8, 2 bf16): one lane of a vector, one gather element.
static_assert(int8_dot::group * sizeof(int8_dot::input) == 4 && bf16_dot::group * sizeof(bf16_dot::input) == 4);

// to[jj] = the 32-bit group at from + start[jj] bytes, for jj < cols (cols <= NR), and
// zeros up to the next multiple of 16: one gather per 16 columns where AVX-512 has it
// (a convolution's windows step through a channel-last image, so the columns of one
// group are evenly spaced but not contiguous).
inline void gather_groups(const std::uint8_t* from, const std::int32_t* start, index_t cols, std::uint32_t* to) {
#if !defined(NNMARK_GEMM_NO_SIMD) && defined(__AVX512F__)
    for (index_t jj = 0; jj < cols; jj += lanes) {
        const __mmask16 valid = static_cast<__mmask16>(cols - jj >= lanes ? 0xffff : (1u << (cols - jj)) - 1);
        const __m512i offsets = _mm512_maskz_loadu_epi32(valid, start + jj);
        _mm512_storeu_si512(to + jj, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, offsets, from, 1));
    }
#else
    const index_t padded = (cols + lanes - 1) / lanes * lanes;
    for (index_t jj = 0; jj < padded; ++jj) {
        to[jj] = 0;
        if (jj < cols) std::memcpy(to + jj, from + start[jj], sizeof(std::uint32_t));
    }
#endif
}

// Columns [j0, j0 + cols) of B (cols <= NR) into one panel [groups][NR][group]: column
// j's q-th group starts at src + column_offset(j) + group_offsets[q] (its elements
// contiguous); the last group holds k - q * group elements when k is not a multiple of
// the group, and missing elements are zeros, as are the columns up to the next multiple
// of 16 (the tile kernel reads whole vectors). Offsets must stay below 2^31 bytes (the
// gather's indices), far beyond any image or batch a layer encodes.
template <class Dot, class ColumnOffset>
void pack_columns(const typename Dot::input* src, const ColumnOffset& column_offset,
                  std::span<const index_t> group_offsets, index_t k, index_t j0, index_t cols,
                  typename Dot::input* out) {
    using input = typename Dot::input;
    constexpr index_t g = Dot::group;
    const index_t groups = static_cast<index_t>(group_offsets.size());
    const index_t full = k / g;
    std::int32_t start[nr];
    for (index_t jj = 0; jj < cols; ++jj)
        start[jj] = static_cast<std::int32_t>(column_offset(j0 + jj) * static_cast<index_t>(sizeof(input)));
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(src);
    for (index_t q = 0; q < full; ++q)
        gather_groups(bytes + group_offsets[q] * static_cast<index_t>(sizeof(input)), start, cols,
                      reinterpret_cast<std::uint32_t*>(out + q * nr * g));
    if (full < groups) {
        input* last = out + full * nr * g;
        std::fill_n(last, nr * g, input(0));
        for (index_t jj = 0; jj < cols; ++jj)
            for (index_t e = 0; full * g + e < k; ++e) last[jj * g + e] = src[column_offset(j0 + jj) + group_offsets[full] + e];
    }
}

// The register tile: MR rows of A's panel times `vectors` vectors of B over all groups,
// written to tile[MR][NR]. B's q-th group row starts at b + b_offsets[q] (a packed
// panel: q * NR * group; columns read in place: wherever the caller's layout puts it).
template <class Dot, index_t vectors>
void tile_kernel(const typename Dot::weight* a, const typename Dot::input* b, const index_t* b_offsets,
                 index_t groups, typename Dot::accumulator* tile) {
    using simd = simd_lanes<Dot>;
    constexpr index_t g = Dot::group;
    typename simd::type acc[mr][vectors];
#pragma GCC unroll 8
    for (index_t r = 0; r < mr; ++r)
#pragma GCC unroll 3
        for (index_t v = 0; v < vectors; ++v) acc[r][v] = simd::zero();
    for (index_t q = 0; q < groups; ++q, a += mr * g) {
        const typename Dot::input* b_row = b + b_offsets[q];
        typename simd::inputs bv[vectors];
#pragma GCC unroll 3
        for (index_t v = 0; v < vectors; ++v) bv[v] = simd::load(b_row + v * lanes * g);
#pragma GCC unroll 8
        for (index_t r = 0; r < mr; ++r)
#pragma GCC unroll 3
            for (index_t v = 0; v < vectors; ++v) acc[r][v] = simd::dot(acc[r][v], bv[v], a + r * g);
    }
#pragma GCC unroll 8
    for (index_t r = 0; r < mr; ++r)
#pragma GCC unroll 3
        for (index_t v = 0; v < vectors; ++v) simd::store(tile + r * nr + v * lanes, acc[r][v]);
}

// Every row panel of the weights times `cols` (<= NR) columns of B, each tile to the sink
// as lowp_product describes.
template <class Dot, class Sink>
void multiply_columns(const lowp_weights<Dot>& w, const typename Dot::input* b, const index_t* b_offsets,
                      index_t col0, index_t cols, const Sink& sink) {
    alignas(64) typename Dot::accumulator tile[mr * nr];
    const auto kernel = cols > 2 * lanes ? tile_kernel<Dot, 3> : cols > lanes ? tile_kernel<Dot, 2> : tile_kernel<Dot, 1>;
    for (index_t i0 = 0; i0 < w.rows(); i0 += mr) {
        kernel(w.panel(i0 / mr), b, b_offsets, w.groups(), tile);
        sink(i0, col0, std::min(mr, w.rows() - i0), cols, static_cast<const typename Dot::accumulator*>(tile));
    }
}

}  // namespace detail::lowp

// The product of the weights and columns [0, n) of B given by the gather (see
// pack_columns above), one tile at a time to
//   sink(row0, col0, rows, cols, tile)
// where tile[r * NR + c] (r < rows, c < cols) is C's element (row0 + r, col0 + c).
// Runs on the calling thread (callers split their work: images, samples); the
// packing buffer is thread_local and only grows.
template <class Dot, class ColumnOffset, class Sink>
void lowp_product(const lowp_weights<Dot>& w, const typename Dot::input* src, const ColumnOffset& column_offset,
                  std::span<const index_t> group_offsets, index_t n, const Sink& sink) {
    namespace lp = detail::lowp;
    thread_local lp::buffer<typename Dot::input> panel;
    thread_local std::vector<index_t> panel_offsets;
    panel.resize(std::max(panel.size(), static_cast<std::size_t>(w.groups() * lp::nr * Dot::group)));
    panel_offsets.resize(static_cast<std::size_t>(w.groups()));
    for (index_t q = 0; q < w.groups(); ++q) panel_offsets[static_cast<std::size_t>(q)] = q * lp::nr * Dot::group;
    for (index_t j0 = 0; j0 < n; j0 += lp::nr) {
        const index_t cols = std::min(lp::nr, n - j0);
        lp::pack_columns<Dot>(src, column_offset, group_offsets, w.k(), j0, cols, panel.data());
        lp::multiply_columns(w, panel.data(), panel_offsets.data(), j0, cols, sink);
    }
}

// The product for `n` columns whose groups already lie side by side in the caller's
// memory, as a stride-1 convolution's windows along an output row do in a
// [row][channel group][column][group] image (layers/lowp_linear.hpp): column c's q-th
// group at first + c * group + group_offsets[q]. Nothing is packed; the tiles go to the
// sink as in lowp_product, column c as col0 + c. Whole vectors are read: up to 15
// columns past the n-th must be readable (their lanes are discarded).
template <class Dot, class Sink>
void lowp_product_in_place(const lowp_weights<Dot>& w, const typename Dot::input* first,
                           std::span<const index_t> group_offsets, index_t n, index_t col0, const Sink& sink) {
    namespace lp = detail::lowp;
    for (index_t j0 = 0; j0 < n; j0 += lp::nr)
        lp::multiply_columns(w, first + j0 * Dot::group, group_offsets.data(), col0 + j0, std::min(lp::nr, n - j0), sink);
}

// lowp_gemm_reference's product the fast way, with A packed: c[i * ldc + j] for
// columns j of b (row j of b at b + j * ldb).
template <class Dot>
void lowp_gemm(const lowp_weights<Dot>& a, index_t n, const typename Dot::input* b, index_t ldb,
               typename Dot::accumulator* c, index_t ldc) {
    std::vector<index_t> group_offsets(static_cast<std::size_t>(a.groups()));
    for (index_t q = 0; q < a.groups(); ++q) group_offsets[static_cast<std::size_t>(q)] = q * Dot::group;
    lowp_product(a, b, [ldb](index_t j) { return j * ldb; }, group_offsets, n,
                 [&](index_t row0, index_t col0, index_t rows, index_t cols, const typename Dot::accumulator* tile) {
                     for (index_t r = 0; r < rows; ++r)
                         std::copy_n(tile + r * detail::lowp::nr, cols, c + (row0 + r) * ldc + col0);
                 });
}

}  // namespace nnmark
