// embed_schedule: how much the trigger loss weighs in each epoch of embedding.
//
// Each batch's loss is  clean cross-entropy + lambda(epoch) x trigger cross-entropy
// (both summed over their samples and divided by the batch size; train/trainer.hpp).
// The paper's Algorithm 1 simply mixes the triggers into the training data: that is
// lambda = 1 in every epoch, the "constant" schedule and the default.
//
//   constant  lambda = w
//   warmup    lambda rises linearly from w / r to w over the first r = ceil(E / 5)
//             epochs, then stays at w: the network first learns the clean task, so the
//             triggers do not dominate the early, large steps
//   step      lambda = w for the first half of training, 2w for the second half: the
//             triggers are pressed harder while the learning rate anneals
//
// w is --wm-weight (default 1), E the number of epochs.
#pragma once

#include "nnmark/core/error.hpp"

#include <algorithm>
#include <string>
#include <string_view>

namespace nnmark {

struct embed_schedule {
    enum class shape_kind { constant, warmup, step };
    shape_kind kind = shape_kind::constant;
    double weight = 1.0;
    int epochs = 1;

    // lambda for a 0-based epoch.
    double at(int epoch) const {
        switch (kind) {
            case shape_kind::warmup: {
                const int ramp = std::max(1, (epochs + 4) / 5);
                return weight * std::min(1.0, static_cast<double>(epoch + 1) / ramp);
            }
            case shape_kind::step: return epoch < epochs / 2 ? weight : 2 * weight;
            case shape_kind::constant: break;
        }
        return weight;
    }
};

inline embed_schedule parse_embed_schedule(std::string_view name, double weight, int epochs) {
    if (!(weight >= 0)) throw argument_error("watermark schedule: weight must be >= 0, got " + std::to_string(weight));
    if (epochs < 1) throw argument_error("watermark schedule: expected at least 1 epoch, got " + std::to_string(epochs));
    embed_schedule s{embed_schedule::shape_kind::constant, weight, epochs};
    if (name == "warmup") s.kind = embed_schedule::shape_kind::warmup;
    else if (name == "step") s.kind = embed_schedule::shape_kind::step;
    else if (name != "constant")
        throw argument_error("unknown watermark schedule '" + std::string(name) + "': expected constant, warmup or step");
    return s;
}

}  // namespace nnmark
