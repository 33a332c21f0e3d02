// dense: fully connected layer, y = x W^T + b (PyTorch's nn.Linear).
//
// Shapes: input [N, in] (items of rank 1 only: images go through a flatten layer
// first) -> output [N, out]. Parameters, in this order: "weight" [out, in] (PyTorch's
// layout, weight-decayed) and "bias" [out] (not decayed).
//
// Whole-batch GEMMs, with G = dL/dy [N x out]:
//   forward   Y   = X W^T + b      (dot products of rows, kernels/dot_gemm.hpp)
//   backward  dX  = G W          WRITTEN into dx (when ctx.input_grad)
//             dW += G^T X,  db += column sums of G    ADDED (when ctx.param_grads)
// The column sums run over the batch in order, so gradients are deterministic; the
// threads of backward split dX by samples and dW by output units, so every element is
// the same sum whatever the thread count.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/kernels/dot_gemm.hpp"
#include "nnmark/kernels/gemm.hpp"
#include "nnmark/layers/initializers.hpp"
#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

template <class T>
class dense final : public layer<T> {
public:
    explicit dense(index_t out_features) : out_(out_features) {
        if (out_features < 1)
            throw argument_error("dense: expected out_features >= 1, got " + std::to_string(out_features));
    }

    std::string kind() const override { return "dense"; }
    layer_config config() const override { return {{"out_features", static_cast<std::int64_t>(out_)}}; }

    shape configure(const shape& input_item) override {
        if (input_item.rank() != 1 || input_item.count() == 0)
            throw shape_error("dense: expected a non-empty input item [features], got " + input_item.str() +
                              (input_item.rank() > 1 ? "; put a flatten layer before dense" : ""));
        in_ = input_item[0];
        return shape{out_};
    }

    std::vector<param_spec> param_specs() const override {
        return {{"weight", shape{out_, in_}, true, true}, {"bias", shape{out_}, true, false}};
    }

    void bind(std::span<T> params, std::span<T> grads) override {
        const index_t expected = out_ * in_ + out_;
        for (const auto& slice : {params, grads})
            if (static_cast<index_t>(slice.size()) != expected)
                throw shape_error("dense: bound slice has " + std::to_string(slice.size()) + " elements, expected " +
                                  std::to_string(expected) + " (weight " + shape{out_, in_}.str() + " + bias " +
                                  shape{out_}.str() + ")");
        const auto weights = static_cast<std::size_t>(out_ * in_);
        weight_ = params.first(weights);
        bias_ = params.subspan(weights);
        weight_grad_ = grads.first(weights);
        bias_grad_ = grads.subspan(weights);
    }

    // He normal weights because the dense layers of these networks feed ReLUs (see
    // initializers.hpp; for the last, logit layer it only sets the initial logit scale);
    // zero biases, as a ReLU net needs no offset to start.
    void initialize(rng& random) override {
        he_normal(weight_, in_, random);
        std::fill(bias_.begin(), bias_.end(), T(0));
    }

    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>&) const override {
        expect_input(x, shape{in_}, kind());
        const index_t batch = x.batch();
        y.resize(shape{batch, out_});
        for (index_t n = 0; n < batch; ++n) std::copy(bias_.begin(), bias_.end(), y.item(n).begin());
        // y += x W^T, each element a dot product of two rows read in place (dot_gemm.hpp):
        // no copy of W per call, and a sample alone gets bit-for-bit its row of a batch.
        dot_gemm(batch, out_, in_, T(1), x.data(), in_, weight_.data(), in_, T(1), y.data(), out_);
    }

    void backward(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>&,
                  backward_context<T>& ctx) override {
        expect_input(x, shape{in_}, kind());
        const index_t batch = x.batch();
        expect_shape(dy, shape{batch, out_}, "dense backward (gradient of the output)");
        if (ctx.input_grad) dx.resize(x.shape());
        // Each thread takes a strip of dX (samples) and a strip of dW (output units):
        // disjoint elements, each the sum gemm computes on one thread (gemm runs on the
        // calling thread inside a parallel region, and its tiling is aligned to the strip).
        const long long work = static_cast<long long>(batch) * in_ * out_;
        const int parts = static_cast<int>(std::min<index_t>(threads_for(work, parallel_grain), std::min(batch, out_)));
        for_each_chunk(parts, parts, [&](int part, index_t, index_t) {
            if (ctx.input_grad) {
                const index_t first = batch * part / parts, last = batch * (part + 1) / parts;
                gemm(false, false, last - first, in_, out_, T(1), dy.data() + first * out_, out_, weight_.data(), in_,
                     T(0), dx.data() + first * in_, in_);
            }
            if (ctx.param_grads) {
                const index_t first = out_ * part / parts, last = out_ * (part + 1) / parts;
                gemm(true, false, last - first, in_, batch, T(1), dy.data() + first, out_, x.data(), in_, T(1),
                     weight_grad_.data() + first * in_, in_);
            }
        });
        if (!ctx.param_grads) return;
        for (index_t n = 0; n < batch; ++n) {
            const auto g = dy.item(n);
            for (index_t o = 0; o < out_; ++o)
                bias_grad_[static_cast<std::size_t>(o)] += g[static_cast<std::size_t>(o)];
        }
    }

    // Multiply-adds of a backward pass below which one more thread costs more than it saves.
    // Public so that tests pick sizes that take the multi-part path.
    static constexpr long long parallel_grain = 1LL << 20;

private:
    index_t out_;
    index_t in_ = 0;
    std::span<T> weight_, bias_, weight_grad_, bias_grad_;
};

}  // namespace nnmark
