// removal_attack: the removal attacks an auditor tries on a watermarked model, each
// described by value, and run_removal, which turns a model into the service a thief who
// ran that attack would deploy (attacked_service.hpp scores it).
//
// - prune: the smallest weights zeroed, no retraining (Zhang et al. 2018, Tables 3-4; prune.hpp)
// - finetune: FTLL, FTAL, RTLL, RTAL on the attacker's images (Adi et al. 2018; finetune.hpp)
// - fineprune: dormant channels of the last convolution pruned, then fine-tuning (Liu et
//   al. 2018; fineprune.hpp)
// - distill: a fresh model trained on the model's answers to the attacker's images, which
//   go in without their labels (Hinton et al. 2015; distill.hpp)
// - transform: the model kept, every query transformed on its way (JPEG, blur, noise, bit
//   depth; transform.hpp)
// - quantize: the model run in bf16 or int8 (model/low_precision.hpp), int8 calibrated
//   on the attacker's images; the Watermark Robustness Toolbox (Lukas et al., IEEE S&P
//   2022) counts weight quantization among the removal attacks: it needs no training and
//   makes the copy cheaper to serve
// The three that train use `attacker` (the images the thief holds, attacker_data.hpp),
// and int8 quantization calibrates on it; prune and transform ignore it.
#pragma once

#include "nnmark/attacks/attacked_service.hpp"
#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/attacks/distill.hpp"
#include "nnmark/attacks/fineprune.hpp"
#include "nnmark/attacks/finetune.hpp"
#include "nnmark/attacks/prune.hpp"
#include "nnmark/attacks/transform.hpp"
#include "nnmark/model/low_precision.hpp"
#include "nnmark/train/progress.hpp"

#include <optional>
#include <type_traits>
#include <variant>

namespace nnmark {

struct prune_attack {
    double rate = 0.5;
    prune_scope scope = prune_scope::layer;
};
struct finetune_attack {
    finetune_mode mode = finetune_mode::ftal;
    training_recipe recipe = finetune_recipe();
};
struct fineprune_attack {
    double rate = 0.5;
    training_recipe recipe = finetune_recipe();
};
struct distill_attack {
    distill_options options;
};
struct transform_attack {
    input_transform transform;
};
struct quantize_attack {
    precision arithmetic = precision::int8;
    index_t calibration_images = 1000;  // int8: of the attacker's, evenly spaced
};
using removal_attack =
    std::variant<prune_attack, finetune_attack, fineprune_attack, distill_attack, transform_attack, quantize_attack>;

// True for the attacks that train on the attacker's images.
inline bool trains_on_attacker_data(const removal_attack& attack) {
    return std::holds_alternative<finetune_attack>(attack) || std::holds_alternative<fineprune_attack>(attack) ||
           std::holds_alternative<distill_attack>(attack);
}

// True for the attacks that read the attacker's images: those that train, and int8
// quantization (its calibration).
inline bool uses_attacker_data(const removal_attack& attack) {
    const auto* quantize = std::get_if<quantize_attack>(&attack);
    return trains_on_attacker_data(attack) || (quantize && quantize->arithmetic == precision::int8);
}

// The service after the attack, and what the attack found (for reports).
struct removal_outcome {
    attacked_service service;
    std::optional<prune_result> pruned;          // prune
    std::optional<fineprune_result> fine_pruned;  // fineprune
};

// `attack` applied to `model`, with `attacker` the thief's labelled images.
inline removal_outcome run_removal(const removal_attack& attack, sequential<float> model, const dataset& attacker,
                                   progress_line& progress) {
    return std::visit(
        [&](const auto& a) -> removal_outcome {
            using kind = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<kind, prune_attack>) {
                const prune_result r = prune_by_magnitude(model, a.rate, a.scope);
                return {{std::move(model), std::nullopt}, r, std::nullopt};
            } else if constexpr (std::is_same_v<kind, finetune_attack>) {
                finetune(model, attacker, a.mode, a.recipe, progress);
                return {{std::move(model), std::nullopt}, std::nullopt, std::nullopt};
            } else if constexpr (std::is_same_v<kind, fineprune_attack>) {
                fineprune_result r = fine_prune(model, attacker, a.rate, a.recipe, progress);
                return {{std::move(model), std::nullopt}, std::nullopt, std::move(r)};
            } else if constexpr (std::is_same_v<kind, distill_attack>) {
                // The student learns the victim's answers only: the images go in without labels.
                return {{distill(model, strip_labels(attacker), a.options, progress), std::nullopt}, std::nullopt,
                        std::nullopt};
            } else if constexpr (std::is_same_v<kind, quantize_attack>) {
                tensor<float> calibration;
                if (a.arithmetic == precision::int8)
                    to_float(attacker, evenly_spaced_indices(attacker.size(), a.calibration_images), calibration);
                return {{at_precision(model, a.arithmetic, calibration), std::nullopt}, std::nullopt, std::nullopt};
            } else {
                return {{std::move(model), a.transform}, std::nullopt, std::nullopt};
            }
        },
        attack);
}

}  // namespace nnmark
