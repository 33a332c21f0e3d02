// half_float: the two 16-bit floating-point formats model files arrive in, widened to
// float exactly, and float rounded to bfloat16 (lower-precision inference,
// kernels/lowp_gemm.hpp).
//
// - F16 (IEEE 754 binary16): 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits.
//   Exponent 0 holds zero and the subnormals (fraction * 2^-24); exponent 31 holds
//   infinity (fraction 0) and NaN.
// - BF16 (bfloat16): the upper half of an IEEE binary32, 1 + 8 + 7 bits; widening
//   appends 16 zero bits.
// Every value of either format is a float (binary32 has more exponent and fraction
// bits than both), so widening is exact and needs no rounding mode. PyTorch saves
// `model.half()` and `model.bfloat16()` state dicts in these formats; nnmark computes in
// float or double and converts when it reads them (model/safetensors.hpp).
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace nnmark {

// The float of the binary16 bit pattern `bits`.
inline float float_from_f16(std::uint16_t bits) {
    const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
    const std::uint32_t exponent = (bits >> 10) & 0x1fu;
    const std::uint32_t fraction = bits & 0x3ffu;
    if (exponent == 0x1f) {  // infinity or NaN: all exponent bits set in binary32 too
        return std::bit_cast<float>(sign | 0x7f800000u | (fraction << 13));
    }
    if (exponent == 0) {  // zero or subnormal: fraction * 2^-24, exact in float
        const float magnitude = static_cast<float>(fraction) * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    // Normal: rebias the exponent from 15 to 127 and widen the fraction from 10 to 23 bits.
    return std::bit_cast<float>(sign | ((exponent + 127 - 15) << 23) | (fraction << 13));
}

// The float of the bfloat16 bit pattern `bits`.
inline float float_from_bf16(std::uint16_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }

// The bfloat16 nearest to `value`, ties to even (what vcvtneps2bf16 and PyTorch's
// .bfloat16() do); a NaN stays a NaN (its payload's top bit set, so rounding cannot
// carry it into infinity).
inline std::uint16_t bf16_from_float(float value) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
    const std::uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

}  // namespace nnmark
