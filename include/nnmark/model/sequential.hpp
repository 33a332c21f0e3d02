// sequential<T>: a chain of layers, the parameter buffer they share, and the
// forward/backward passes over a batch.
//
// Parameters are named "<layer index>.<param name>" ("0.weight", "12.bias"), which is
// exactly how PyTorch's nn.Sequential names its state_dict, so weights move between
// the two by name.
//
// Inference (infer/predict) is const: it touches only the caller's buffers, so one
// trained model can serve many threads, each with its own inference_buffers.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/memory_budget.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/core/workspace.hpp"
#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace nnmark {

// One named parameter tensor of the model with views of its values and gradients.
template <class T>
struct named_parameter {
    std::string name;  // "3.weight"
    int layer = 0;     // index of the owning layer
    param_spec spec;
    std::span<T> value;
    std::span<T> grad;
    bool frozen = false;
};

// Per-thread buffers for inference: reused from call to call, never shared.
template <class T>
struct inference_buffers {
    tensor<T> ping, pong;
    workspace<T> scratch;
};

// Everything a training step keeps between forward and backward.
template <class T>
struct training_trace {
    std::vector<tensor<T>> activations;  // activations[0] is the input, [i+1] the output of layer i
    std::vector<tensor<T>> caches;       // per layer, what forward_train kept for backward
    tensor<T> grad_in, grad_out;         // dL/d(activation), ping-ponged through backward
    workspace<T> scratch;
};

template <class T>
class sequential {
public:
    explicit sequential(shape input_item) : input_item_(input_item), output_item_(input_item) {
        expect_affordable(input_item, 0, "the input");
    }

    sequential(const sequential&) = delete;
    sequential& operator=(const sequential&) = delete;
    sequential(sequential&&) = default;
    sequential& operator=(sequential&&) = default;

    // Append a layer; it is configured with the current output shape.
    // Refused (shape_error) before anything grows when the model would not fit in the
    // memory available (core/memory_budget.hpp): an architecture of 10^12 units is an
    // error message, not an allocation.
    layer<T>& add(std::unique_ptr<layer<T>> l) {
        const std::string where = "layer " + std::to_string(layers_.size()) + " (" + l->kind() + ")";
        shape out;
        try {
            out = l->configure(output_item_);
        } catch (const shape_error& e) {
            throw shape_error(where + ": " + e.what());
        }
        std::optional<std::uint64_t> params = params_.size();
        for (const auto& spec : l->param_specs()) {
            const auto n = element_count(spec.shape);
            params = params && n ? checked_sum(*params, *n) : std::nullopt;
        }
        expect_affordable(out, params, where);
        output_item_ = out;
        layers_.push_back(std::move(l));
        frozen_.push_back(false);
        allocate_parameters();
        return *layers_.back();
    }

    template <template <class> class Layer, class... Args>
    Layer<T>& emplace(Args&&... args) {
        return static_cast<Layer<T>&>(add(std::make_unique<Layer<T>>(std::forward<Args>(args)...)));
    }

    const shape& input_item() const { return input_item_; }
    const shape& output_item() const { return output_item_; }
    int size() const { return static_cast<int>(layers_.size()); }
    const layer<T>& at(int i) const { return *layers_.at(static_cast<std::size_t>(i)); }
    layer<T>& at(int i) { return *layers_.at(static_cast<std::size_t>(i)); }

    // Fresh initial values for every parameter, from `seed` only. Each layer draws
    // from its own derived stream, so adding a layer does not change the others.
    void initialize(std::uint64_t seed) {
        const rng root(seed);
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            rng stream = root.derive(i);
            layers_[i]->initialize(stream);
        }
    }

    // All parameter values / gradients as one flat buffer each.
    std::span<T> parameters() { return {params_.data(), params_.size()}; }
    std::span<const T> parameters() const { return {params_.data(), params_.size()}; }
    std::span<T> gradients() { return {grads_.data(), grads_.size()}; }
    void zero_gradients() { std::fill(grads_.begin(), grads_.end(), T(0)); }

    std::vector<named_parameter<T>> named_parameters() { return list_parameters<T>(params_.data(), grads_.data()); }
    // Read-only views, for saving and inspecting a const model.
    std::vector<named_parameter<const T>> named_parameters() const {
        return list_parameters<const T>(params_.data(), grads_.data());
    }

    // A frozen layer keeps its parameters: backward adds no gradient to them and
    // optimizers skip them (fine-tuning attacks freeze all but the last layers).
    void set_frozen(int layer_index, bool frozen) { frozen_.at(static_cast<std::size_t>(layer_index)) = frozen; }
    bool is_frozen(int layer_index) const { return frozen_.at(static_cast<std::size_t>(layer_index)); }

    // Whether an item's training output depends on the other items of its batch
    // (layer::couples_batch_items), so that the batch may not be split.
    bool couples_batch_items() const {
        return std::ranges::any_of(layers_, [](const auto& l) { return l->couples_batch_items(); });
    }

    // Evaluation-mode forward pass of a batch [N, input_item...] into logits.
    void infer(const tensor<T>& x, tensor<T>& out, inference_buffers<T>& buffers) const {
        expect_batch(x);
        if (layers_.empty()) {
            out.assign(x);
            return;
        }
        const tensor<T>* current = &x;
        // Outputs alternate between the two buffers; the last layer writes `out`.
        auto output_of = [&](std::size_t layer) -> tensor<T>& {
            if (layer + 1 == layers_.size()) return out;
            return current == &buffers.ping ? buffers.pong : buffers.ping;
        };
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            if (relu_follows(i)) {  // the layer may apply the ReLU itself, writing its output
                tensor<T>& relu_out = output_of(i + 1);
                if (layers_[i]->infer_then_relu(*current, relu_out, buffers.scratch)) {
                    current = &relu_out;
                    ++i;
                    continue;
                }
            }
            tensor<T>& next = output_of(i);
            layers_[i]->infer(*current, next, buffers.scratch);
            current = &next;
        }
    }

    tensor<T> predict(const tensor<T>& x) const {
        inference_buffers<T> buffers;
        tensor<T> out;
        infer(x, out, buffers);
        return out;
    }

    // Training-mode forward pass; keeps every activation in `trace` for backward.
    // Returns the logits (the last activation). `first_item` is x's position in a
    // larger batch that data-parallel training split (see train_context).
    const tensor<T>& forward_train(const tensor<T>& x, training_trace<T>& trace, rng& random,
                                   index_t first_item = 0) {
        expect_batch(x);
        trace.activations.resize(layers_.size() + 1);
        trace.caches.resize(layers_.size());
        trace.activations[0].assign(x);
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            // A layer that applies the following ReLU itself writes the ReLU's output
            // directly; its own output is then never stored (nothing reads it: see
            // layer::infer_then_relu and relu's backward, which reads its output).
            if (relu_follows(i) && layers_[i]->infer_then_relu(trace.activations[i], trace.activations[i + 2],
                                                                trace.scratch)) {
                ++i;
                continue;
            }
            rng layer_random = random.derive(i);
            train_context<T> ctx{trace.scratch, layer_random, first_item};
            layers_[i]->forward_train(trace.activations[i], trace.activations[i + 1], trace.caches[i], ctx);
        }
        random.next_u64();  // the next step gets different dropout masks
        return trace.activations.back();
    }

    // Backward pass from dL/dlogits; adds parameter gradients of unfrozen layers.
    void backward(training_trace<T>& trace, const tensor<T>& grad_logits) {
        if (trace.activations.size() != layers_.size() + 1)
            throw error("sequential::backward: called without a matching forward_train");
        expect_shape(grad_logits, trace.activations.back().shape(), "sequential::backward (gradient of the logits)");
        trace.grad_out.assign(grad_logits);
        for (std::size_t j = layers_.size(); j-- > 0;) {
            backward_context<T> ctx{trace.scratch, needs_input_grad(j), !frozen_[j]};
            // A layer after a ReLU may do the ReLU's backward too (layer::backward_through_relu);
            // its input is the ReLU's output, stored whether or not the ReLU ran fused.
            const bool through_relu = ctx.input_grad && relu_precedes(j) &&
                                      layers_[j]->backward_through_relu(trace.activations[j], trace.activations[j + 1],
                                                                        trace.grad_out, trace.grad_in, trace.caches[j],
                                                                        ctx);
            if (!through_relu)
                layers_[j]->backward(trace.activations[j], trace.activations[j + 1], trace.grad_out, trace.grad_in,
                                     trace.caches[j], ctx);
            if (!ctx.input_grad) break;  // no earlier layer takes gradients (all frozen or parameter-free)
            std::swap(trace.grad_in, trace.grad_out);
            if (through_relu) --j;  // the ReLU's backward is done
        }
    }

    // Throws shape_error unless x is a batch of this model's input items.
    void expect_batch(const tensor<T>& x) const {
        if (x.shape().rank() != input_item_.rank() + 1 || !(x.shape().drop_front() == input_item_))
            throw shape_error("model input: expected [N] + " + input_item_.str() + ", got " + x.shape().str());
    }

private:
    static std::optional<std::uint64_t> element_count(const shape& s) {
        std::int64_t dims[shape::max_rank] = {};
        for (int a = 0; a < s.rank(); ++a) dims[a] = static_cast<std::int64_t>(s[a]);
        return checked_product(std::span<const std::int64_t>(dims, static_cast<std::size_t>(s.rank())));
    }

    // shape_error unless `params` parameters with their gradients and one item of shape
    // `item` (an activation) fit in the memory available now.
    static void expect_affordable(const shape& item, std::optional<std::uint64_t> params, const std::string& where) {
        const std::optional<std::uint64_t> activation = element_count(item);
        std::optional<std::uint64_t> elements;
        if (params && activation && *params <= UINT64_MAX / 2) elements = checked_sum(2 * *params, *activation);
        const std::uint64_t available = available_memory_bytes();
        if (elements && *elements <= available / sizeof(T)) return;
        const std::string count = params ? std::to_string(*params) : "more than 2^64";
        throw shape_error(where + ": " + count + " parameters with their gradients and an item of shape " +
                          item.str() + " need " +
                          (elements ? bytes_text(static_cast<double>(*elements) * sizeof(T)) : "more than 2^64 bytes") +
                          ", more than the " + bytes_text(static_cast<double>(available)) + " of memory available");
    }

    // Whether layer i is followed by a ReLU layer that it may apply itself.
    bool relu_follows(std::size_t i) const { return i + 1 < layers_.size() && layers_[i + 1]->kind() == "relu"; }
    // Whether layer j's input is the output of a ReLU layer.
    bool relu_precedes(std::size_t j) const { return j > 0 && layers_[j - 1]->kind() == "relu"; }

    // Layer j needs to produce dL/dx only when some earlier layer has gradients to take.
    bool needs_input_grad(std::size_t j) const {
        for (std::size_t i = 0; i < j; ++i)
            if (!frozen_[i] && !layers_[i]->param_specs().empty()) return true;
        return false;
    }

    template <class U>
    std::vector<named_parameter<U>> list_parameters(U* params, U* grads) const {
        std::vector<named_parameter<U>> out;
        std::size_t offset = 0;
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            for (const auto& spec : layers_[i]->param_specs()) {
                const auto n = static_cast<std::size_t>(spec.shape.count());
                out.push_back({std::to_string(i) + "." + spec.name, static_cast<int>(i), spec,
                               std::span<U>(params + offset, n), std::span<U>(grads + offset, n), frozen_[i]});
                offset += n;
            }
        }
        return out;
    }

    // One buffer for all parameters, one for all gradients; each layer gets its slice.
    void allocate_parameters() {
        std::size_t total = 0;
        for (const auto& l : layers_)
            for (const auto& spec : l->param_specs()) total += static_cast<std::size_t>(spec.shape.count());
        aligned_vector<T> params(total, T(0));
        std::copy(params_.begin(), params_.end(), params.begin());  // keep what earlier layers had
        params_ = std::move(params);
        grads_.assign(total, T(0));
        std::size_t offset = 0;
        for (const auto& l : layers_) {
            std::size_t n = 0;
            for (const auto& spec : l->param_specs()) n += static_cast<std::size_t>(spec.shape.count());
            l->bind(std::span<T>(params_.data() + offset, n), std::span<T>(grads_.data() + offset, n));
            offset += n;
        }
    }

    shape input_item_;
    shape output_item_;
    std::vector<std::unique_ptr<layer<T>>> layers_;
    std::vector<bool> frozen_;
    aligned_vector<T> params_;
    aligned_vector<T> grads_;
};

}  // namespace nnmark
