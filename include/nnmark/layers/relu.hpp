// relu: y = max(x, 0), elementwise, any shape.
//
// Backward writes dx = dy where x > 0 and 0 elsewhere (the subgradient 0 at x = 0,
// as PyTorch). No parameters, no cache.
#pragma once

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
        const T* in = x.data();
        T* out = y.data();
        const index_t n = x.size();
#pragma omp simd
        for (index_t i = 0; i < n; ++i) out[i] = in[i] > T(0) ? in[i] : T(0);
    }

    void backward(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>&,
                  backward_context<T>& ctx) override {
        if (!ctx.input_grad) return;
        dx.resize(x.shape());
        const T* in = x.data();
        const T* g = dy.data();
        T* out = dx.data();
        const index_t n = x.size();
#pragma omp simd
        for (index_t i = 0; i < n; ++i) out[i] = in[i] > T(0) ? g[i] : T(0);
    }

private:
    shape item_;
};

}  // namespace nnmark
