// prune: magnitude pruning, the removal attack of Zhang et al. (ASIACCS 2018, Sec. 5.2.3,
// Tables 3-4), after the compression method of Han et al. (NIPS 2015).
//
// The smallest `rate` of the weights, by absolute value, are set to zero; nothing is
// retrained. Only weights are pruned: the conv and dense kernels, i.e. the parameters
// weight decay applies to (param_spec::decayed). Biases and batch-norm parameters and
// statistics are left alone: there are few of them and zeroing them shifts whole
// activations rather than removing connections.
//
// Scope:
//   layer   every weight tensor loses round(rate x its size) weights (the paper's
//           "p% of the parameters with the smallest absolute values", layer by layer as
//           in Han et al.);
//   global  round(rate x all weights) weights go, wherever they are: layers with small
//           weights (large fan-in) lose more.
// Ties: among equal magnitudes the weight earlier in the model's parameter buffer is
// pruned first, so the result is deterministic. Weights that are already zero count as
// the smallest.
//
// Budget: the rate in [0, 1]. Cost: one sort of |w| per tensor (or of all weights).
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/model/sequential.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

enum class prune_scope { layer, global };

inline prune_scope parse_prune_scope(std::string_view name) {
    if (name == "layer") return prune_scope::layer;
    if (name == "global") return prune_scope::global;
    throw argument_error("prune: expected scope layer or global, got '" + std::string(name) + "'");
}

struct prune_result {
    index_t weights = 0;  // weights considered (biases and normalisation excluded)
    index_t pruned = 0;   // weights set to zero by this call
};

namespace detail {

// The spans of `model` magnitude pruning acts on: the decayed (weight) tensors.
template <class T>
std::vector<std::span<T>> prunable_weights(sequential<T>& model) {
    std::vector<std::span<T>> out;
    for (const auto& p : model.named_parameters())
        if (p.spec.trainable && p.spec.decayed) out.push_back(p.value);
    return out;
}

// Zero the round(rate x total) smallest-magnitude elements of `tensors`, taken together.
// An element is identified by (tensor, offset), which orders ties by buffer position.
template <class T>
index_t zero_smallest(std::span<const std::span<T>> tensors, double rate) {
    struct element {
        T magnitude;
        std::size_t tensor, offset;
    };
    std::vector<element> all;
    for (std::size_t t = 0; t < tensors.size(); ++t)
        for (std::size_t i = 0; i < tensors[t].size(); ++i) all.push_back({std::abs(tensors[t][i]), t, i});
    const auto count = static_cast<std::size_t>(std::llround(rate * static_cast<double>(all.size())));
    const auto before = [](const element& a, const element& b) {
        if (a.magnitude != b.magnitude) return a.magnitude < b.magnitude;
        return a.tensor != b.tensor ? a.tensor < b.tensor : a.offset < b.offset;
    };
    std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(count), all.end(), before);
    for (std::size_t k = 0; k < count; ++k) tensors[all[k].tensor][all[k].offset] = T(0);
    return static_cast<index_t>(count);
}

}  // namespace detail

// Zero the smallest `rate` of the model's weights (per tensor or over all of them).
template <class T>
prune_result prune_by_magnitude(sequential<T>& model, double rate, prune_scope scope) {
    if (!(rate >= 0.0 && rate <= 1.0)) throw argument_error("prune: rate must be in [0, 1], got " + std::to_string(rate));
    const std::vector<std::span<T>> weights = detail::prunable_weights(model);
    prune_result result;
    for (const auto& w : weights) result.weights += static_cast<index_t>(w.size());
    if (scope == prune_scope::global) {
        result.pruned = detail::zero_smallest<T>(weights, rate);
        return result;
    }
    for (const auto& w : weights) result.pruned += detail::zero_smallest<T>(std::span(&w, 1), rate);
    return result;
}

}  // namespace nnmark
