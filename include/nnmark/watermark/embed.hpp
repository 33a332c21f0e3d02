// embed: the pieces of watermark embedding around the training loop (Zhang et al.,
// ASIACCS 2018, Sec. 4, Algorithm 1): where the trigger images come from, the recipe
// as it is written into the key, and how well a model answers a trigger set.
//
// Embedding itself is ordinary training with the trigger set mixed into every epoch
// (train/trainer.hpp, extra_training_set; its weight per epoch: embed_schedule.hpp).
#pragma once

#include "nnmark/core/json.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/trigger_set.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace nnmark {

// The images triggers are made from: the key's (training split) and those for "new
// triggers" (test split), both already restricted to the recipe's source class (every
// class for natural triggers).
struct trigger_pools {
    dataset key_pool;
    dataset fresh_pool;
    std::vector<std::filesystem::path> files;  // the dataset files read, for the recipe
};

// Content, noise and natural triggers come from the model's own data (`train`, `test`);
// unrelated triggers from recipe.source_dataset stored in `unrelated_dir`.
inline trigger_pools load_trigger_pools(const trigger_recipe& recipe, const dataset& train, const dataset& test,
                                        const std::filesystem::path& unrelated_dir) {
    if (recipe.kind == "natural") return {train, test, {}};
    if (recipe.kind != "unrelated") return {train.filter_by_label(recipe.source), test.filter_by_label(recipe.source), {}};
    const dataset other_train = load_dataset(recipe.source_dataset, unrelated_dir, true);
    const dataset other_test = load_dataset(recipe.source_dataset, unrelated_dir, false);
    std::vector<std::filesystem::path> files = dataset_files(recipe.source_dataset, unrelated_dir, true);
    for (auto& f : dataset_files(recipe.source_dataset, unrelated_dir, false)) files.push_back(f);
    return {other_train.filter_by_label(recipe.source), other_test.filter_by_label(recipe.source), std::move(files)};
}

// The clean training data embedding trains on: `train` without the key's images for
// natural triggers, which are training images (the model must learn them with their
// secret labels only, not with their true ones as well; Adi et al. 2018 hold them out
// too); std::nullopt for the other kinds, whose triggers are not training images (train
// on `train` as it is).
// `train` must be the pool make_trigger_set drew the natural key from.
inline std::optional<dataset> training_set_without_triggers(const trigger_recipe& recipe, const dataset& train) {
    if (recipe.kind != "natural") return std::nullopt;
    return detail::without_key_images(recipe, train);
}

// The recipe as the key stores it: everything needed to make the same triggers again,
// and the SHA-256 of every dataset file that went into the model and the triggers.
inline json recipe_json(const trigger_recipe& recipe, std::string_view model_dataset, const shape& item_shape,
                        const std::vector<std::filesystem::path>& dataset_files_used) {
    json j = json::object();
    j.set("dataset", std::string(model_dataset));
    j.set("kind", recipe.kind);
    j.set("source", recipe.source);
    j.set("target", recipe.target);
    j.set("seed", static_cast<std::int64_t>(recipe.seed));
    j.set("count", recipe.count);
    j.set("label_mode", recipe.label_mode);
    j.set("classes", recipe.classes);
    j.set("source_dataset", recipe.source_dataset);
    json parameters = json::object();
    set_config_members(parameters, make_generator(recipe, item_shape)->parameters());
    j.set("generator", std::move(parameters));
    j.set("datasets", dataset_file_digests(dataset_files_used));
    return j;
}

// Fraction of `triggers` the model labels with their trigger label.
template <class T>
double trigger_accuracy(const sequential<T>& model, const dataset& triggers) {
    return evaluate(model, triggers).accuracy();
}

}  // namespace nnmark
