// relu: y = max(x, 0), elementwise, any shape.
//
// Backward writes dx = dy where y > 0 (exactly where x > 0) and 0 elsewhere (the
// subgradient 0 at x = 0, as PyTorch). No parameters, no cache.
//
// Large tensors are split into one contiguous chunk per thread; each element is
// computed alone, so the split cannot change a result.
#pragma once

#include "nnmark/core/parallel.hpp"
#include "nnmark/kernels/positive_part.hpp"
#include "nnmark/layers/layer.hpp"

namespace nnmark {

template <class T>
class relu final : public layer<T> {
public:
    std::string kind() const override { return "relu"; }
    layer_config config() const override { return {}; }
    shape configure(const shape& input_item) override {
        item_ = input_item;
        return input_item;
    }

    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>&) const override {
        expect_input(x, item_, kind());
        y.resize(x.shape());
        for_each_element_chunk(x.size(), [&](index_t first, index_t last) {
            // Pointers as locals of the chunk: read through the closure, they would be
            // reloaded after every store, and the loop would not vectorize.
            const T* in = x.data();
            T* out = y.data();
#pragma omp simd
            for (index_t i = first; i < last; ++i) out[i] = positive_part(in[i]);
        });
    }

    // Reads the output, not the input: y > 0 exactly where x > 0, and a layer that
    // applies the ReLU itself (layer::infer_then_relu) leaves no x to read.
    void backward(const tensor<T>&, const tensor<T>& y, const tensor<T>& dy, tensor<T>& dx, const tensor<T>&,
                  backward_context<T>& ctx) override {
        if (!ctx.input_grad) return;
        dx.resize(y.shape());
        for_each_element_chunk(y.size(), [&](index_t first, index_t last) {
            const T* out_y = y.data();
            const T* g = dy.data();
            T* out = dx.data();
#pragma omp simd
            for (index_t i = first; i < last; ++i) out[i] = relu_gradient(out_y[i], g[i]);
        });
    }

private:
    // Elements per thread below which one more thread costs more than it saves (some
    // tens of microseconds; batch-1 inference stays on one thread).
    static constexpr long long parallel_grain = 1 << 17;

    template <class Body>
    static void for_each_element_chunk(index_t count, Body&& body) {
        for_each_chunk(count, threads_for(count, parallel_grain),
                       [&](int, index_t first, index_t last) { body(first, last); });
    }

    shape item_;
};

}  // namespace nnmark
