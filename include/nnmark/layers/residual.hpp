// residual: a skip connection around a chain of layers, y = x + f(x), where f applies
// the inner layers in order (the basic block of a ResNet, He et al. 2016, with an
// identity shortcut). The inner layers must give items of x's shape; configure() throws
// shape_error otherwise (there is no projection shortcut).
//
// Parameters: the inner layers', in order, named "<inner index>.<name>". A block at
// index 3 of a model thus holds "3.0.weight", "3.2.bias", ...: the state_dict names of a
// PyTorch block written as `class Residual(nn.Sequential)` whose forward returns
// `x + super().forward(x)`. initialize() draws inner layer i from random.derive(i), as
// sequential does for its layers.
//
// Architecture JSON: {"kind":"residual","layers":[...]}, the inner layers as objects of
// the same form as the model's own (model/layer_factory.hpp); config() gives "layers" as
// a list of layer_description.
//
// Inference runs the inner layers on the workspace's nested() level; their outputs
// alternate between its buffer and y, so that the last one lands in y, and x is added.
// Training keeps every inner output and cache in the block itself, because the layer
// contract's one cache tensor cannot hold them. So a block runs one training pass at a
// time (forward_train, then its backward), which is how sequential, data_parallel (one
// replica per shard) and the trainer use layers; backward refuses any input but the one
// of the last forward_train.
// Backward runs the inner layers' backward from dy (the gradient reaches f(x) as it
// reaches y), each ADDING its parameter gradients, and WRITES dx = dy + (df/dx)^T dy.
// The block couples the items of a batch if an inner layer does (batch norm).
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/parallel.hpp"
#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace nnmark {

template <class T>
class residual final : public layer<T> {
public:
    residual() = default;
    explicit residual(std::vector<std::unique_ptr<layer<T>>> inner) : inner_(std::move(inner)) {}

    // Append an inner layer: only before the block joins a model (is configured).
    layer<T>& add(std::unique_ptr<layer<T>> l) {
        if (configured_) throw argument_error("residual: inner layers are added before the block joins a model");
        inner_.push_back(std::move(l));
        return *inner_.back();
    }

    template <template <class> class Layer, class... Args>
    Layer<T>& emplace(Args&&... args) {
        return static_cast<Layer<T>&>(add(std::make_unique<Layer<T>>(std::forward<Args>(args)...)));
    }

    int size() const { return static_cast<int>(inner_.size()); }
    const layer<T>& at(int i) const { return *inner_.at(static_cast<std::size_t>(i)); }

    std::string kind() const override { return "residual"; }
    layer_config config() const override {
        std::vector<layer_description> layers;
        for (const auto& l : inner_) layers.push_back({l->kind(), l->config()});
        return {{"layers", std::move(layers)}};
    }

    shape configure(const shape& input_item) override {
        if (inner_.empty()) throw argument_error("residual: expected at least one inner layer, got none");
        shape item = input_item;
        for (std::size_t i = 0; i < inner_.size(); ++i) {
            try {
                item = inner_[i]->configure(item);
            } catch (const shape_error& e) {
                throw shape_error("residual: inner layer " + std::to_string(i) + " (" + inner_[i]->kind() +
                                  "): " + e.what());
            }
        }
        if (!(item == input_item))
            throw shape_error("residual: the inner layers turn items " + input_item.str() + " into " + item.str() +
                              "; the skip connection adds the input, so they must keep its shape");
        item_ = input_item;
        configured_ = true;
        return input_item;
    }

    std::vector<param_spec> param_specs() const override {
        std::vector<param_spec> out;
        for (std::size_t i = 0; i < inner_.size(); ++i)
            for (param_spec spec : inner_[i]->param_specs()) {
                spec.name = std::to_string(i) + "." + spec.name;
                out.push_back(std::move(spec));
            }
        return out;
    }

    // Each inner layer gets its run of the block's slice, in param_specs() order.
    void bind(std::span<T> params, std::span<T> grads) override {
        std::size_t expected = 0;
        for (const auto& spec : param_specs()) expected += static_cast<std::size_t>(spec.shape.count());
        if (params.size() != expected || grads.size() != expected)
            throw shape_error("residual: expected parameter and gradient slices of " + std::to_string(expected) +
                              " values, got " + std::to_string(params.size()) + " and " + std::to_string(grads.size()));
        std::size_t offset = 0;
        for (const auto& l : inner_) {
            std::size_t n = 0;
            for (const auto& spec : l->param_specs()) n += static_cast<std::size_t>(spec.shape.count());
            l->bind(params.subspan(offset, n), grads.subspan(offset, n));
            offset += n;
        }
    }

    void initialize(rng& random) override {
        for (std::size_t i = 0; i < inner_.size(); ++i) {
            rng stream = random.derive(i);
            inner_[i]->initialize(stream);
        }
    }

    bool couples_batch_items() const override {
        return std::ranges::any_of(inner_, [](const auto& l) { return l->couples_batch_items(); });
    }

    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>& scratch) const override {
        expect_input(x, item_, kind());
        nested_workspace<T>& inner = scratch.nested();
        const tensor<T>* current = &x;
        for (std::size_t i = 0; i < inner_.size(); ++i) {
            tensor<T>& out = (inner_.size() - 1 - i) % 2 == 0 ? y : inner.buffer;
            inner_[i]->infer(*current, out, inner.scratch);
            current = &out;
        }
        add(y, x, y);
    }

    void forward_train(const tensor<T>& x, tensor<T>& y, tensor<T>&, train_context<T>& ctx) override {
        expect_input(x, item_, kind());
        trace_.input = &x;
        trace_.outputs.resize(inner_.size());
        trace_.caches.resize(inner_.size());
        for (std::size_t i = 0; i < inner_.size(); ++i) {
            rng layer_random = ctx.random.derive(i);
            train_context<T> inner{ctx.scratch, layer_random, ctx.first_item};
            inner_[i]->forward_train(input_of(i, x), trace_.outputs[i], trace_.caches[i], inner);
        }
        add(trace_.outputs.back(), x, y);
    }

    void backward(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>&,
                  backward_context<T>& ctx) override {
        expect_input(x, item_, kind());
        expect_shape(dy, x.shape(), "residual backward (dL/dy)");
        if (trace_.input != &x || trace_.outputs.empty() || !(trace_.outputs.back().shape() == x.shape()))
            throw error("residual: backward of another input than the last forward_train's (a block runs one "
                        "training pass at a time)");
        const tensor<T>* grad = &dy;  // dL/d(the output of inner layer j)
        for (std::size_t j = inner_.size(); j-- > 0;) {
            backward_context<T> inner{ctx.scratch, j > 0 || ctx.input_grad, ctx.param_grads};
            tensor<T>& next = grad == &trace_.grad_a ? trace_.grad_b : trace_.grad_a;
            inner_[j]->backward(input_of(j, x), trace_.outputs[j], *grad, next, trace_.caches[j], inner);
            if (!inner.input_grad) return;  // the first inner layer, and no dx wanted
            grad = &next;
        }
        add(dy, *grad, dx);
    }

private:
    // What training keeps between forward_train and backward.
    struct trace {
        const tensor<T>* input = nullptr;  // x of the last forward_train
        std::vector<tensor<T>> outputs;    // outputs[i]: inner layer i's
        std::vector<tensor<T>> caches;     // caches[i]: what inner layer i kept
        tensor<T> grad_a, grad_b;          // dL/d(inner outputs), ping-ponged through backward
    };

    const tensor<T>& input_of(std::size_t i, const tensor<T>& x) const { return i == 0 ? x : trace_.outputs[i - 1]; }

    // out = a + b elementwise (out may be a); each element alone, so threads cannot
    // change a result.
    static void add(const tensor<T>& a, const tensor<T>& b, tensor<T>& out) {
        out.resize(a.shape());
        for_each_chunk(a.size(), threads_for(a.size(), parallel_grain), [&](int, index_t first, index_t last) {
            const T* pa = a.data();
            const T* pb = b.data();
            T* po = out.data();
#pragma omp simd
            for (index_t i = first; i < last; ++i) po[i] = pa[i] + pb[i];
        });
    }

    // Elements per thread below which one more thread costs more than it saves.
    static constexpr long long parallel_grain = 1 << 17;

    std::vector<std::unique_ptr<layer<T>>> inner_;
    shape item_;
    bool configured_ = false;
    trace trace_;
};

}  // namespace nnmark
