// softmax_cross_entropy: the training loss, with softmax and cross-entropy fused; plus
// softmax and argmax over the rows of a logits matrix.
//
// Logits z are [N, K]: N samples, K classes. Each sample i has a target distribution
// p_i: a one-hot row for a hard label, or a soft row such as a teacher's softmax
// (distillation). An optional sample weight w_i defaults to 1.
//     loss     = (1 / N) * sum_i w_i * l_i,   l_i = -sum_k p_ik * log softmax(z_i)_k
//     dL/dz_ik = (w_i / N) * (softmax(z_i)_k * sum_k' p_ik' - p_ik)
// When each target row sums to 1, the gradient is the familiar (softmax - p) * w_i / N.
// The general form is the exact derivative for any row. The mean divides by N, not by
// sum(w), so a weight of 2 counts a sample twice and the loss stays comparable with
// the unweighted one (the watermark schedule uses this to up-weight trigger samples).
//
// Stability: log softmax(z)_k = z_k - lse(z), where lse(z) = m + log(sum_k exp(z_k - m))
// and m = max_k z_k, so no exp overflows. Logits of +-1e4 give exact, finite losses even
// in float. Targets with p_ik = 0 contribute nothing, even where z_ik = -inf.
//
// Gradients are WRITTEN into *grad_logits, which is resized to [N, K], not added. Pass
// nullptr to compute only the loss. The batch loss is summed in double, in row order.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace nnmark {

namespace detail {

// Throws shape_error unless `logits` is a non-empty [N, K] matrix.
template <class T>
void expect_logits(const tensor<T>& logits, std::string_view where) {
    const shape& s = logits.shape();
    if (s.rank() != 2 || s[0] < 1 || s[1] < 1)
        throw shape_error(std::string(where) + ": expected logits [N, K] with N, K >= 1, got " + s.str());
}

// log(sum_k exp(z_k)) of one row of `classes` logits, shifted by the row maximum.
template <class T>
T log_sum_exp(const T* z, index_t classes) {
    T m = z[0];
    for (index_t k = 1; k < classes; ++k) m = std::max(m, z[k]);
    T sum = T(0);
    for (index_t k = 0; k < classes; ++k) sum += std::exp(z[k] - m);
    return m + std::log(sum);
}

// The one implementation behind every softmax_cross_entropy overload; target(i, k) is p_ik.
template <class T, class Target>
T softmax_cross_entropy(const tensor<T>& logits, const Target& target, std::span<const T> sample_weights,
                        tensor<T>* grad_logits) {
    const index_t n = logits.shape()[0];
    const index_t classes = logits.shape()[1];
    if (!sample_weights.empty() && static_cast<index_t>(sample_weights.size()) != n)
        throw shape_error("softmax_cross_entropy: expected " + std::to_string(n) + " sample weights (one per row of " +
                          logits.shape().str() + "), got " + std::to_string(sample_weights.size()));
    if (grad_logits) grad_logits->resize(logits.shape());

    double total = 0;
    for (index_t i = 0; i < n; ++i) {
        const T* z = logits.data() + i * classes;
        const T lse = log_sum_exp(z, classes);
        const T weight = sample_weights.empty() ? T(1) : sample_weights[static_cast<std::size_t>(i)];
        T row_loss = T(0);
        T mass = T(0);
        for (index_t k = 0; k < classes; ++k) {
            const T p = target(i, k);
            if (p == T(0)) continue;
            row_loss += p * (lse - z[k]);
            mass += p;
        }
        total += static_cast<double>(weight) * static_cast<double>(row_loss);
        if (!grad_logits) continue;
        T* g = grad_logits->data() + i * classes;
        const T scale = weight / static_cast<T>(n);
        for (index_t k = 0; k < classes; ++k) g[k] = scale * (std::exp(z[k] - lse) * mass - target(i, k));
    }
    return static_cast<T>(total / static_cast<double>(n));
}

}  // namespace detail

// Hard labels: labels[i] in [0, K) is the class of row i.
// Throws shape_error if labels.size() != N, and argument_error naming the first bad label.
template <class T>
T softmax_cross_entropy(const tensor<T>& logits, std::span<const int> labels,
                        std::type_identity_t<tensor<T>>* grad_logits,
                        std::type_identity_t<std::span<const T>> sample_weights = {}) {
    detail::expect_logits(logits, "softmax_cross_entropy");
    const index_t n = logits.shape()[0];
    const index_t classes = logits.shape()[1];
    if (static_cast<index_t>(labels.size()) != n)
        throw shape_error("softmax_cross_entropy: expected " + std::to_string(n) + " labels (one per row of " +
                          logits.shape().str() + "), got " + std::to_string(labels.size()));
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= classes)
            throw argument_error("softmax_cross_entropy: label " + std::to_string(labels[i]) + " at index " +
                                 std::to_string(i) + " is outside [0, " + std::to_string(classes) + ")");
    const auto one_hot = [&](index_t i, index_t k) {
        return k == labels[static_cast<std::size_t>(i)] ? T(1) : T(0);
    };
    return detail::softmax_cross_entropy(logits, one_hot, sample_weights, grad_logits);
}

// Soft targets: target_probabilities [N, K], one distribution per row.
template <class T>
T softmax_cross_entropy(const tensor<T>& logits, const tensor<T>& target_probabilities,
                        std::type_identity_t<tensor<T>>* grad_logits,
                        std::type_identity_t<std::span<const T>> sample_weights = {}) {
    detail::expect_logits(logits, "softmax_cross_entropy");
    expect_shape(target_probabilities, logits.shape(), "softmax_cross_entropy (target probabilities)");
    const index_t classes = logits.shape()[1];
    const auto row_of_targets = [&](index_t i, index_t k) { return target_probabilities[i * classes + k]; };
    return detail::softmax_cross_entropy(logits, row_of_targets, sample_weights, grad_logits);
}

// probabilities = softmax of each row of logits [N, K]; resized to [N, K].
template <class T>
void softmax(const tensor<T>& logits, tensor<T>& probabilities) {
    detail::expect_logits(logits, "softmax");
    const index_t n = logits.shape()[0];
    const index_t classes = logits.shape()[1];
    probabilities.resize(logits.shape());
    for (index_t i = 0; i < n; ++i) {
        const T* z = logits.data() + i * classes;
        const T lse = detail::log_sum_exp(z, classes);
        T* p = probabilities.data() + i * classes;
        for (index_t k = 0; k < classes; ++k) p[k] = std::exp(z[k] - lse);
    }
}

// The predicted class of each row of logits [N, K]: the first maximum on ties.
template <class T>
std::vector<int> argmax_rows(const tensor<T>& logits) {
    detail::expect_logits(logits, "argmax_rows");
    const index_t n = logits.shape()[0];
    const index_t classes = logits.shape()[1];
    std::vector<int> best(static_cast<std::size_t>(n), 0);
    for (index_t i = 0; i < n; ++i) {
        const T* z = logits.data() + i * classes;
        index_t arg = 0;
        for (index_t k = 1; k < classes; ++k)
            if (z[k] > z[arg]) arg = k;
        best[static_cast<std::size_t>(i)] = static_cast<int>(arg);
    }
    return best;
}

}  // namespace nnmark
