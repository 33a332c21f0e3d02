// flatten: [N, d1, ..., dk] -> [N, d1 * ... * dk], keeping the row-major (NCHW)
// element order. PyTorch's nn.Flatten keeps the same order, so a dense layer after it
// sees features in the same order as in PyTorch and weights transfer unchanged.
//
// Backward WRITES dx = dy with x's shape. No parameters, no cache.
#pragma once

#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <string>

namespace nnmark {

template <class T>
class flatten final : public layer<T> {
public:
    std::string kind() const override { return "flatten"; }
    layer_config config() const override { return {}; }
    shape configure(const shape& input_item) override {
        item_ = input_item;
        return shape{input_item.count()};
    }

    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>&) const override {
        expect_input(x, item_, kind());
        y.resize(shape{x.batch(), item_.count()});
        std::copy(x.data(), x.data() + x.size(), y.data());
    }

    void backward(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>&,
                  backward_context<T>& ctx) override {
        if (!ctx.input_grad) return;
        expect_shape(dy, shape{x.batch(), item_.count()}, "flatten backward (dL/dy)");
        dx.resize(x.shape());
        std::copy(dy.data(), dy.data() + dy.size(), dx.data());
    }

private:
    shape item_;
};

}  // namespace nnmark
