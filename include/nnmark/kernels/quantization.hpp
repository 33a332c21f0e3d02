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
// (core/half_float.hpp), keeping float's range and 8 of its 24 significant bits.
#pragma once

#include "nnmark/core/half_float.hpp"
#include "nnmark/core/shape.hpp"

#include <algorithm>
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

    // Codes of `values`, saturating outside the range. Rounds half up (values are
    // offset to [0, 255] first, so truncation after + 0.5 rounds): a form the compiler
    // vectorizes, where a call to nearbyint per value would not be.
    void encode(std::span<const float> values, std::uint8_t* codes) const {
        const float inverse = 1.0f / scale, zero = static_cast<float>(zero_point);
        for (std::size_t i = 0; i < values.size(); ++i) {
            const float shifted = std::clamp(values[i] * inverse + zero, 0.0f, 255.0f);
            codes[i] = static_cast<std::uint8_t>(shifted + 0.5f);
        }
    }
    std::uint8_t zero_code() const { return zero_point; }
};

// The bf16 code of a layer's input: each value rounded to nearest.
struct bf16_code {
    void encode(std::span<const float> values, std::uint16_t* codes) const {
        for (std::size_t i = 0; i < values.size(); ++i) codes[i] = bf16_from_float(values[i]);
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
