// positive_part: max(v, 0) as every ReLU in the engine computes it, v > 0 ? v : 0, which
// gives +0 for -0 and for NaN; relu_gradient: the ReLU's backward for one element. The
// relu layer and the layers that apply a neighbouring ReLU themselves (conv2d,
// kernels/conv_nhwc.hpp and kernels/winograd.hpp forward; conv2d and maxpool2d backward)
// share these definitions, so the fused and unfused models agree bit for bit.
#pragma once

namespace nnmark {

template <class T>
constexpr T positive_part(T v) {
    return v > T(0) ? v : T(0);
}

// dL/dx of y = relu(x) from its output y and dL/dy: dL/dy where y > 0 (exactly where
// x > 0), 0 elsewhere (the subgradient 0 at x = 0, as PyTorch).
template <class T>
constexpr T relu_gradient(T y, T dy) {
    return y > T(0) ? dy : T(0);
}

}  // namespace nnmark
