// fineprune: fine-pruning, Liu, Dolan-Gavitt and Garg, "Fine-Pruning: Defending Against
// Backdooring Attacks on Deep Neural Networks" (RAID 2018), Sec. 5.
//
// A backdoor (and a trigger-set watermark is one) tends to live in neurons that clean
// inputs leave dormant. Fine-pruning
//   1. runs the attacker's clean images through the model and measures each channel of
//      the last convolutional layer by its mean activation (after its ReLU, over images
//      and positions);
//   2. prunes the `rate` most dormant channels, lowest mean first (ties: lower channel
//      index first), by zeroing their filters and biases, so they output 0 for every
//      input: the same function as removing them;
//   3. fine-tunes all layers on the attacker's labelled data, re-zeroing the pruned
//      filters after every optimizer step, so the pruned channels stay removed (the other
//      weights learn without them, exactly as in a network built without them).
// Liu et al. grow the pruned fraction until clean accuracy drops by a threshold; here
// the fraction is the budget, given directly, with the fine-tuning recipe
// (attacks/finetune.hpp, finetune_recipe()).
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/workspace.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/progress.hpp"
#include "nnmark/train/recipe.hpp"
#include "nnmark/train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace nnmark {

// Index of the last conv2d layer; argument_error when there is none.
template <class T>
int last_conv_layer(const sequential<T>& model) {
    for (int i = model.size() - 1; i >= 0; --i)
        if (model.at(i).kind() == "conv2d") return i;
    throw argument_error("fine-pruning: the model has no conv2d layer to prune");
}

// The layer whose output is conv layer `conv`'s activation: its ReLU when one follows.
template <class T>
int activation_of(const sequential<T>& model, int conv) {
    return conv + 1 < model.size() && model.at(conv + 1).kind() == "relu" ? conv + 1 : conv;
}

// Mean of each channel of layer `layer`'s output [N, C, H, W] over the images of `data`
// (labels unused), in evaluation mode.
template <class T>
std::vector<double> mean_channel_activation(const sequential<T>& model, int layer, const dataset& data,
                                            index_t batch = 256) {
    if (data.size() < 1) throw argument_error("fine-pruning: dataset '" + data.name + "' has no images to measure with");
    tensor<T> ping, pong;
    workspace<T> scratch;
    std::vector<index_t> indices;
    std::vector<double> sums;
    double positions = 0;
    for (index_t first = 0; first < data.size(); first += batch) {
        indices.resize(static_cast<std::size_t>(std::min(batch, data.size() - first)));
        std::iota(indices.begin(), indices.end(), first);
        to_float(data, indices, ping);
        for (int i = 0; i <= layer; ++i) {
            model.at(i).infer(ping, pong, scratch);
            std::swap(ping, pong);
        }
        const shape& s = ping.shape();
        if (s.rank() != 4) throw shape_error("fine-pruning: layer " + std::to_string(layer) + " outputs " + s.str() +
                                             ", expected channels [N, C, H, W]");
        const index_t plane = s[2] * s[3];
        sums.resize(static_cast<std::size_t>(s[1]), 0.0);
        for (index_t n = 0; n < s[0]; ++n)
            for (index_t c = 0; c < s[1]; ++c) {
                const T* x = ping.data() + (n * s[1] + c) * plane;
                sums[static_cast<std::size_t>(c)] += std::accumulate(x, x + plane, 0.0);
            }
        positions += static_cast<double>(s[0] * plane);
    }
    for (double& sum : sums) sum /= positions;
    return sums;
}

// The round(rate x C) channels with the lowest mean activation, most dormant first.
inline std::vector<int> most_dormant(const std::vector<double>& mean_activation, double rate) {
    if (!(rate >= 0.0 && rate <= 1.0))
        throw argument_error("fine-pruning: rate must be in [0, 1], got " + std::to_string(rate));
    std::vector<int> order(mean_activation.size());
    std::iota(order.begin(), order.end(), 0);
    std::ranges::stable_sort(order, [&](int a, int b) { return mean_activation[static_cast<std::size_t>(a)] <
                                                               mean_activation[static_cast<std::size_t>(b)]; });
    order.resize(static_cast<std::size_t>(std::llround(rate * static_cast<double>(order.size()))));
    return order;
}

// Zero the filters (weights and bias) of `channels` of conv layer `conv`.
template <class T>
void zero_channels(sequential<T>& model, int conv, const std::vector<int>& channels) {
    for (const auto& p : model.named_parameters()) {
        if (p.layer != conv) continue;
        const auto per_channel = p.value.size() / static_cast<std::size_t>(p.spec.shape[0]);  // OIHW or [O]
        for (int c : channels)
            std::fill_n(p.value.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(c) * per_channel),
                        per_channel, T(0));
    }
}

struct fineprune_result {
    int layer = 0;               // the conv layer pruned
    std::vector<int> channels;   // its pruned channels, most dormant first
    std::vector<epoch_summary> epochs;
};

// Fine-pruning of `model` with the attacker's data: prune `rate` of the last conv
// layer's channels, then fine-tune all layers with `recipe`.
template <class T>
fineprune_result fine_prune(sequential<T>& model, const dataset& attacker, double rate, const training_recipe& recipe,
                            progress_line& progress, const dataset* evaluation = nullptr) {
    fineprune_result result;
    result.layer = last_conv_layer(model);
    result.channels = most_dormant(mean_channel_activation(model, activation_of(model, result.layer), attacker), rate);
    zero_channels(model, result.layer, result.channels);
    trainer<T> t(model, recipe);
    t.on_step([&] { zero_channels(model, result.layer, result.channels); });
    result.epochs = t.fit(attacker, evaluation, progress);
    return result;
}

}  // namespace nnmark
