// dropout: inverted dropout. In training, each element is kept with probability
// 1 - rate and scaled by 1 / (1 - rate), or else set to 0. The expected output then
// equals the input, so inference is the identity and needs no rescaling.
//
// Shapes: any item shape; output shape = input shape.
// forward_train draws the mask from ctx.random. The model gives each layer its own
// stream for each step, and the layer each item of the batch its own stream derived
// from that (train_context::first_item), so the same seed gives the same masks however
// data-parallel training splits the batch. The mask (0 or 1 / (1 - rate) per element)
// is stored in the cache tensor.
// Backward WRITES dx = dy * mask. No parameters.
#pragma once

#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <string>

namespace nnmark {

template <class T>
class dropout final : public layer<T> {
public:
    explicit dropout(double rate) : rate_(rate) {
        // Written so that NaN fails too. rate 1 would drop everything and divide by 0.
        if (!(rate >= 0.0 && rate < 1.0))
            throw argument_error("dropout: rate must be in [0, 1), got " + std::to_string(rate));
    }

    std::string kind() const override { return "dropout"; }
    layer_config config() const override { return {{"rate", rate_}}; }
    shape configure(const shape& input_item) override {
        item_ = input_item;
        return input_item;
    }

    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>&) const override {
        expect_input(x, item_, kind());
        y.resize(x.shape());
        std::copy(x.data(), x.data() + x.size(), y.data());
    }

    void forward_train(const tensor<T>& x, tensor<T>& y, tensor<T>& cache, train_context<T>& ctx) override {
        expect_input(x, item_, kind());
        y.resize(x.shape());
        cache.resize(x.shape());
        const T keep_scale = static_cast<T>(1.0 / (1.0 - rate_));
        for (index_t n = 0; n < x.batch(); ++n) {
            rng item_random = ctx.random.derive(static_cast<std::uint64_t>(ctx.first_item + n));
            for (T& m : cache.item(n)) m = item_random.uniform() < rate_ ? T(0) : keep_scale;
        }
        multiply(x, cache, y);
    }

    void backward(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>& cache,
                  backward_context<T>& ctx) override {
        if (!ctx.input_grad) return;
        expect_shape(dy, x.shape(), "dropout backward (dL/dy)");
        expect_shape(cache, x.shape(), "dropout backward (mask from forward_train)");
        dx.resize(x.shape());
        multiply(dy, cache, dx);
    }

private:
    static void multiply(const tensor<T>& a, const tensor<T>& mask, tensor<T>& out) {
        const T* pa = a.data();
        const T* pm = mask.data();
        T* po = out.data();
        const index_t n = a.size();
#pragma omp simd
        for (index_t i = 0; i < n; ++i) po[i] = pa[i] * pm[i];
    }

    double rate_;
    shape item_;
};

}  // namespace nnmark
