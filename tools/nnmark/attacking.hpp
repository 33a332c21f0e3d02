// Running one removal attack and scoring it, shared by `nnmark attack` (one attack from
// the command line) and `nnmark reproduce` (every attack on every watermarked model).
#pragma once

#include "cli.hpp"
#include "verify_remote.hpp"

#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/attacks/finetune.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/recipe.hpp"
#include "nnmark/watermark/key.hpp"

#include <optional>
#include <string>

namespace nnmark::cli {

// The thief's second opinion for `attack evade --detector ensemble`: nnmark's recipe
// cut to a few epochs, a model good enough to disagree with the stolen one on triggers.
inline training_recipe second_opinion_recipe() {
    training_recipe r;
    r.epochs = 5;
    return r;
}

// The flags of `nnmark attack KIND`.
struct attack_options {
    std::string model, model_arch, out, key;  // model_arch: --arch of a weights-only --model
    dataset_options data;
    std::string attacker_data = "test-half";
    double train_fraction = 0.1;
    double alpha = 1e-6;
    bool json = false, quiet = false;
    // prune, fineprune
    double rate = 0.5;
    std::string scope = "layer";
    // finetune, fineprune
    std::string mode = "ftal";
    training_recipe finetuning = finetune_recipe();
    // distill
    bool soft = false;
    double temperature = 1.0;
    training_recipe distillation;
    // transform: exactly one of these is given
    std::optional<double> jpeg, blur, noise, bits;
    std::optional<std::string> quantize;  // bf16 or int8: the model, not the queries
    std::uint64_t noise_seed = 1;
    index_t calibration_images = 1000;
    // evade: which detectors, fitted to flag this share of the attacker's images, and
    // the training of the ensemble's second opinion
    std::string detector = "all";
    double false_positive_rate = 0.05;
    training_recipe second_opinion = second_opinion_recipe();
    // extract: the service and how it is asked (--query-batch for its --batch), the
    // number of queries, the extra pool, and the surrogate's network and training
    remote_verify_options service;
    long long queries = 0;
    std::string extra_pool, extra_data;
    std::string arch;  // empty: the paper's network for the dataset
    training_recipe extraction;
};

// The attacker's data and the evaluation half of --dataset under --attacker-data; the
// training set is read only for train-fraction, whose images are drawn with `seed`.
attack_data load_attack_data(const attack_options& o, std::uint64_t seed);

// --attacker-data, --train-fraction, and the training budget in `recipe` (--epochs,
// --lr, --batch, --seed) on a kind that trains.
void add_training_flags(CLI::App& app, attack_options& o, training_recipe& recipe);

// `attack extract` (extract.cpp): model extraction through a prediction API.
void add_extract_kind(CLI::App& attack, attack_options& o);
int run_extract(const attack_options& o);

// The decoys a verification of a model in memory asks beside the triggers, as `verify
// --model` does: up to 1,000 of `images` (test images of the key's task), always the same
// ones, so an attacked or broken copy is checked as a classifier like any suspect.
dataset verification_decoys(const dataset& images);

// Attack `model` with `kind` ("prune", "finetune", "fineprune", "distill", "transform"),
// writing the attacked model to `out` unless it is empty, and score it: the JSON of
// `nnmark attack --json` without the run's own fields (model path, dataset, seconds).
// Accuracy is measured on data.evaluation before and after; with a key, the attacked
// model (behind the transformation, for "transform") is verified at o.alpha and judged.
// A caller attacking the same model many times passes its accuracy on data.evaluation
// as `original_accuracy`, so it is measured once.
nlohmann::json attack_and_score(const std::string& kind, sequential<float> model, const attack_data& data,
                                const attack_options& o, const watermark_key* key, const std::string& out = {},
                                std::optional<double> original_accuracy = std::nullopt);

// `attack evade`'s result without the run's own fields: each detector of o.detector (or
// all) in front of `model`, fitted on data.attacker, and the key verified through it
// (the triggers among the decoys of data.evaluation), with the service's accuracy on
// data.evaluation; `detectors` and `watermark_found_behind_every_detector` among others.
nlohmann::json evade_and_score(const sequential<float>& model, const watermark_key& key, const attack_data& data,
                               const attack_options& o, std::optional<double> original_accuracy = std::nullopt);

}  // namespace nnmark::cli
