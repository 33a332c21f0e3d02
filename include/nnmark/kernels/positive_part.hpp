// positive_part: max(v, 0) as every ReLU in the engine computes it, v > 0 ? v : 0, which
// gives +0 for -0 and for NaN. The relu layer and a convolution that applies the
// following ReLU itself (conv2d, kernels/conv_nhwc.hpp) share this one definition, so the
// fused and unfused models agree bit for bit.
#pragma once

namespace nnmark {

template <class T>
constexpr T positive_part(T v) {
    return v > T(0) ? v : T(0);
}

}  // namespace nnmark
