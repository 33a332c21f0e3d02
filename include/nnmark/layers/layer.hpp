// layer<T>: the contract every layer of a sequential model follows.
//
// A layer is configured once with the shape of one input item (no batch axis) and
// then computes y = f(x) on batches. Its parameters are not owned by the layer: the
// model owns one flat buffer for all parameters and one for their gradients, and binds
// each layer to its slice (in the order of param_specs()). That makes saving, pruning
// and optimizing one loop over one buffer.
//
// The rules every layer obeys (tests/support/gradient_check.hpp checks them all):
// - infer() is const and uses only the workspace it is given: many threads may run
//   inference on one model at once, each with its own workspace.
// - forward_train() may keep what backward needs in `cache` (a dropout mask, say) and
//   may update non-trainable state (batch-norm running statistics).
// - backward() ADDS dL/dparams into the bound gradient slice (the trainer zeroes it
//   between steps) and, when asked, WRITES dL/dx.
// Two optional fusions: infer_then_relu() lets a layer apply the ReLU layer that follows
// it while storing its output (conv2d does), and backward_through_relu() the backward of
// the ReLU layer before it while its input gradient is in cache (conv2d and maxpool2d
// do); tests/model/test_sequential_fusion.cpp checks that the model's outputs and
// gradients stay bit-identical.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/core/workspace.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace nnmark {

// One parameter tensor of a layer, as it is named in model files.
struct param_spec {
    std::string name;        // "weight", "bias", "running_mean", ...
    nnmark::shape shape;     // PyTorch's layout: conv OIHW, dense [out, in]
    bool trainable = true;   // false for statistics such as running_mean
    bool decayed = true;     // weight decay applies (weights yes, biases and BN no)
};

// A layer's hyper-parameters, in the order they are written to the architecture JSON.
// A value is a number, a string, or a list of layers (kind and config each), for a
// layer that holds other layers (layers/residual.hpp).
struct layer_description;
using config_value = std::variant<std::int64_t, double, std::string, std::vector<layer_description>>;
using layer_config = std::vector<std::pair<std::string, config_value>>;

// What layer::kind() and layer::config() return: enough to build the layer again
// (model/layer_factory.hpp's make_layer).
struct layer_description {
    std::string kind;
    layer_config config;
    friend bool operator==(const layer_description&, const layer_description&) = default;
};

// What a training pass gives each layer.
template <class T>
struct train_context {
    workspace<T>& scratch;
    rng& random;  // dropout masks; a derived stream per layer and step
    // Position of x's first item in the whole training batch, which data-parallel
    // training splits into shards: a layer that draws per item draws item i of x from
    // random.derive(first_item + i), so its draws do not depend on the split.
    index_t first_item = 0;
};

// What backward is asked to compute.
template <class T>
struct backward_context {
    workspace<T>& scratch;
    bool input_grad = true;   // write dL/dx (false for the first layer)
    bool param_grads = true;  // add dL/dparams (false for frozen layers)
};

template <class T>
class layer {
public:
    virtual ~layer() = default;

    // Name used in the architecture JSON ("conv2d", "dense", ...).
    virtual std::string kind() const = 0;
    virtual layer_config config() const = 0;

    // Learn the shape of one input item; return the shape of one output item.
    // Throws shape_error when the layer cannot take that input.
    virtual shape configure(const shape& input_item) = 0;

    virtual std::vector<param_spec> param_specs() const { return {}; }
    // Point the layer at its parameters and gradients, laid out in param_specs() order.
    virtual void bind(std::span<T> /*params*/, std::span<T> /*grads*/) {}
    // Fill the bound parameters with their initial values (He, Glorot, ones, zeros).
    virtual void initialize(rng& /*random*/) {}

    // Whether an item's output depends on the other items of the batch in training
    // (batch normalization's statistics). Such a model is not split into shards for
    // data-parallel training: shards would change what it computes.
    virtual bool couples_batch_items() const { return false; }

    // Evaluation-mode forward pass.
    virtual void infer(const tensor<T>& x, tensor<T>& y, workspace<T>& scratch) const = 0;

    // Forward pass followed by a ReLU, in one pass over the output: y = max(0, f(x)).
    // The model calls it for a layer followed by a ReLU layer, in evaluation and in
    // training, so a layer may return true only if its training forward pass is its
    // evaluation one and its backward pass does not read its own output (the ReLU's
    // output then stands in for it). The default returns false without touching y, and
    // the model runs the ReLU layer itself.
    virtual bool infer_then_relu(const tensor<T>& /*x*/, tensor<T>& /*y*/, workspace<T>& /*scratch*/) const {
        return false;
    }

    // Training-mode forward pass; by default the same as infer().
    virtual void forward_train(const tensor<T>& x, tensor<T>& y, tensor<T>& /*cache*/, train_context<T>& ctx) {
        infer(x, y, ctx.scratch);
    }

    // Given x, y and dL/dy from the training forward pass, write dL/dx into dx (when
    // ctx.input_grad) and add dL/dparams into the bound gradients (when ctx.param_grads).
    virtual void backward(const tensor<T>& x, const tensor<T>& y, const tensor<T>& dy, tensor<T>& dx,
                          const tensor<T>& cache, backward_context<T>& ctx) = 0;

    // backward(), then the backward of the ReLU layer whose output x is: dx becomes
    // dL/d(the ReLU's input), relu_gradient(x, dL/dx) elementwise. The model calls it,
    // with ctx.input_grad, for a layer that follows a ReLU layer; a layer that returns
    // true saves the ReLU layer a pass over memory. The default returns false without
    // doing anything, and the model runs backward() and the ReLU layer's backward.
    virtual bool backward_through_relu(const tensor<T>& /*x*/, const tensor<T>& /*y*/, const tensor<T>& /*dy*/,
                                       tensor<T>& /*dx*/, const tensor<T>& /*cache*/, backward_context<T>& /*ctx*/) {
        return false;
    }
};

// Throws shape_error unless a batch matches the shape the layer was configured with.
template <class T>
void expect_input(const tensor<T>& x, const shape& item, const std::string& layer_kind) {
    if (!(x.shape().drop_front() == item) || x.shape().rank() != item.rank() + 1)
        throw shape_error(layer_kind + ": expected input of shape [N, ...] with items " + item.str() +
                          ", got " + x.shape().str());
}

}  // namespace nnmark
