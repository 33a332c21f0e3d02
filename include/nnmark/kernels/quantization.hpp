// quantization: how float values become the 8-bit and 16-bit codes that the
// lower-precision products of kernels/lowp_gemm.hpp multiply.
//
// int8 follows Jacob et al., "Quantization and Training of Neural Networks for
// Efficient Integer-Arithmetic-Only Inference" (CVPR 2018), with per-channel weights as
// in Krishnamoorthi, "Quantizing deep convolutional networks for efficient inference"
// (2018):
// - Activations (a layer's input): affine u8, x ~ scale * (q - zero_point), q in
//   [0, 255], one scale and zero point per tensor, from the range [lo, hi] a calibration
//   pass observed. The range is widened to hold 0 so that 0 has an exact code (the
//   zero padding of a convolution, and every ReLU zero, are then exact; Jacob et al.
//   section 2.1). After a ReLU lo = 0 and the zero point is 0: all 256 codes cover
//   [0, hi].
// - Weights: symmetric s8, w ~ scale[o] * q, q in [-127, 127], one scale per output
//   channel (row of the weight matrix). Channels of one layer differ in range by an
//   order of magnitude; one scale for the layer would leave the small channels a few
//   codes (Krishnamoorthi, section 3.1: per-channel weights keep accuracy within a few
//   tenths of a point of float where per-layer ones lose points). -128 is not used, so
//   that the range is symmetric and a negated weight has a code.
// The s32 sum over k of w_q * x_q then gives the float output exactly up to the codes'
// rounding: y[o] = scale_x * scale[o] * (sum - zero_point * sum_k w_q[o, k]) + bias[o];
// the second term is a constant per channel (folded into the output's shift).
//
// bf16 needs no calibration: each value is rounded to its nearest bfloat16
// (core/half_float.hpp), keeping float's range and 8 of its 24 significant bits; with
// AVX512_BF16, 16 at a time by vcvtneps2bf16 (the same rounding and NaN kept a NaN;
// subnormal floats, far below any activation here, become zero).
#pragma once

#include "nnmark/core/half_float.hpp"
#include "nnmark/core/shape.hpp"

#include <xsimd/xsimd.hpp>

#if !defined(NNMARK_GEMM_NO_SIMD) && defined(__AVX512BF16__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>

namespace nnmark {

// The affine u8 code of a layer's input (see above).
struct affine_u8 {
    float scale = 1.0f;
    std::uint8_t zero_point = 0;

    // The code of the range [lo, hi], widened to hold 0; an empty range (all zeros)
    // gets scale 1, so that every value still has a code.
    static affine_u8 of_range(float lo, float hi) {
        lo = std::min(lo, 0.0f);
        hi = std::max(hi, 0.0f);
        const float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
        const float zero = std::clamp(std::nearbyint(-lo / scale), 0.0f, 255.0f);
        return {scale, static_cast<std::uint8_t>(zero)};
    }

    // Codes of `values`, rounded to nearest (ties to even) and saturating outside the
    // range; a NaN gets code 0. 16 values at a time through xsimd (as a plain loop the
    // compiler left it scalar, a branch per clamp, and it was then the slowest part of
    // an int8 layer); the rounding adds 1.5 * 2^23, after which a value in [0, 255] is
    // the low bits of the float (no float-to-int conversion, whose AVX-512 intrinsic
    // warns under GCC 12, as xsimd's min and max do: hence the selects).
    void encode(std::span<const float> values, std::uint8_t* codes) const {
        using batch = xsimd::batch<float>;
        using integers = xsimd::batch<std::int32_t>;
        constexpr std::size_t width = batch::size;
        constexpr float magic = 0x1.8p23f;
        const float inverse = 1.0f / scale, zero = static_cast<float>(zero_point);
        std::size_t i = 0;
        for (; i + width <= values.size(); i += width) {
            batch shifted = xsimd::fma(batch::load_unaligned(values.data() + i), batch(inverse), batch(zero));
            shifted = xsimd::select(shifted > batch(0.0f), shifted, batch(0.0f));
            shifted = xsimd::select(shifted < batch(255.0f), shifted, batch(255.0f));
            alignas(64) std::int32_t wide[width];
            (xsimd::bitwise_cast<integers>(shifted + batch(magic)) - integers(std::bit_cast<std::int32_t>(magic)))
                .store_aligned(wide);
            for (std::size_t l = 0; l < width; ++l) codes[i + l] = static_cast<std::uint8_t>(wide[l]);
        }
        for (; i < values.size(); ++i) {
            float shifted = std::fma(values[i], inverse, zero);
            shifted = shifted > 0.0f ? shifted : 0.0f;
            shifted = shifted < 255.0f ? shifted : 255.0f;
            codes[i] = static_cast<std::uint8_t>(std::bit_cast<std::int32_t>(shifted + magic) - std::bit_cast<std::int32_t>(magic));
        }
    }
    std::uint8_t zero_code() const { return zero_point; }
};

// The bf16 code of a layer's input: each value rounded to nearest.
struct bf16_code {
    void encode(std::span<const float> values, std::uint16_t* codes) const {
        std::size_t i = 0;
#if !defined(NNMARK_GEMM_NO_SIMD) && defined(__AVX512BF16__)
        for (; i + 16 <= values.size(); i += 16)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i),
                                std::bit_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(values.data() + i))));
#endif
        for (; i < values.size(); ++i) codes[i] = bf16_from_float(values[i]);
    }
    std::uint16_t zero_code() const { return 0; }
};

// The symmetric s8 scale of one weight row: its largest magnitude maps to 127 (an
// all-zero row gets scale 1).
inline float symmetric_s8_scale(std::span<const float> row) {
    float largest = 0.0f;
    for (float w : row) largest = std::max(largest, std::abs(w));
    return largest > 0.0f ? largest / 127.0f : 1.0f;
}

// The s8 code of w under `scale` (round to nearest, clamped to [-127, 127]).
inline std::int8_t encode_s8(float w, float scale) {
    return static_cast<std::int8_t>(std::clamp(std::nearbyint(w / scale), -127.0f, 127.0f));
}

}  // namespace nnmark
