// embed: watermark embedding (Zhang et al., ASIACCS 2018, Sec. 4, Algorithm 1): where
// the trigger images come from, the recipe as it is written into the key, the key and
// the training data of an embedding, and how well a model took it.
//
// Embedding itself is ordinary training with the trigger set mixed into every epoch
// (train/trainer.hpp, extra_training_set; its weight per epoch: embed_schedule.hpp).
// The steps, for callers that train their own way (nnmark embed checkpoints and
// resumes): prepare_embedding (the key; the clean data, without natural triggers and
// with the extraction region relabelled), train with embedding_triggers mixed in, then
// measure_embedding. embed_watermark does all three with a plain trainer.
#pragma once

#include "nnmark/core/json.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/train/progress.hpp"
#include "nnmark/train/trainer.hpp"
#include "nnmark/watermark/embed_schedule.hpp"
#include "nnmark/watermark/extraction_region.hpp"
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
    if (recipe.kind == trigger_kind::natural) return {train, test, {}};
    if (recipe.kind != trigger_kind::unrelated) return {train.filter_by_label(recipe.source), test.filter_by_label(recipe.source), {}};
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
    if (recipe.kind != trigger_kind::natural) return std::nullopt;
    return detail::without_key_images(recipe, train);
}

// The recipe as the key stores it: everything needed to make the same triggers again,
// and the SHA-256 of every dataset file that went into the model and the triggers.
inline json recipe_json(const trigger_recipe& recipe, std::string_view model_dataset, const shape& item_shape,
                        const std::vector<std::filesystem::path>& dataset_files_used) {
    json j = json::object();
    j["dataset"] = std::string(model_dataset);
    j["kind"] = to_string(recipe.kind);
    j["source"] = recipe.source;
    j["target"] = recipe.target;
    j["seed"] = static_cast<std::int64_t>(recipe.seed);
    j["count"] = recipe.count;
    j["label_mode"] = to_string(recipe.label_mode);
    j["classes"] = recipe.classes;
    j["source_dataset"] = recipe.source_dataset;
    json parameters = json::object();
    set_config_members(parameters, make_generator(recipe, item_shape)->parameters());
    j["generator"] = std::move(parameters);
    j["datasets"] = dataset_file_digests(dataset_files_used);
    return j;
}

// Fraction of `triggers` the model labels with their trigger label.
template <class T>
double trigger_accuracy(const sequential<T>& model, const dataset& triggers) {
    return evaluate(model, triggers).accuracy();
}

// How the triggers are mixed into training, and the extraction region (--survive-extraction).
struct embedding_options {
    index_t repeat = 10;              // times each trigger is seen per epoch
    std::string schedule = "constant";  // the trigger loss weight per epoch (embed_schedule.hpp)
    double weight = 1.0;
    std::optional<double> extraction_share;  // set: relabel a secret region of the task's images
};

// The key and the data an embedding trains on.
struct embedding_setup {
    trigger_recipe recipe;
    watermark_key key;
    // The clean training data when training must see other data than the split given
    // (natural triggers withheld, the extraction region relabelled); none: the split as it is.
    std::optional<dataset> changed_train;
    std::optional<extraction_region> region;

    // What training runs on, given the training split `train`.
    const dataset& training_set(const dataset& train) const { return changed_train ? *changed_train : train; }
};

// The key of `region`: its test images, labelled with its label (a target-label key to
// calibrate and verify like any other), tied to the main key by that key's commitment.
inline watermark_key extraction_region_key(const extraction_region& region, const dataset& test, index_t count,
                                           const watermark_key& main_key) {
    watermark_key key;
    key.triggers = region.triggers(test, count);
    json recipe = json::object();
    for (const char* field : {"dataset", "classes", "datasets"}) recipe[field] = main_key.recipe.at(field);
    recipe["kind"] = "extraction-region";
    recipe["source"] = region.source;
    recipe["target"] = region.label;
    recipe["seed"] = static_cast<std::int64_t>(region.seed);
    recipe["count"] = key.triggers.size();
    recipe["label_mode"] = to_string(trigger_labeling::target);
    recipe["region"] = region.to_json();
    recipe["watermark_key"] = main_key.commitment();
    key.recipe = std::move(recipe);
    return key;
}

// Algorithm 1's first step: the key made from `pools` by `recipe` (its recipe naming
// `dataset_name` and the SHA-256 of `files`, the data read), and the clean data to train
// on: `train` without the key's images for natural triggers (they are training images),
// and with the extraction region relabelled, recorded in the key's recipe (so in its
// commitment), when options.extraction_share is set.
inline embedding_setup prepare_embedding(const trigger_recipe& recipe, const embedding_options& options,
                                         const dataset& train, const trigger_pools& pools, std::string_view dataset_name,
                                         const std::vector<std::filesystem::path>& files) {
    const shape item = train.item_shape();
    embedding_setup setup{recipe, {}, training_set_without_triggers(recipe, train), std::nullopt};
    setup.key.triggers = make_trigger_set(recipe, pools.key_pool, item);
    setup.key.recipe = recipe_json(recipe, dataset_name, item, files);
    setup.key.recipe["repeat"] = options.repeat;
    setup.key.recipe["wm_schedule"] = options.schedule;
    setup.key.recipe["wm_weight"] = options.weight;
    if (options.extraction_share) {
        const dataset& base = setup.training_set(train);
        setup.region = extraction_region::draw(rng(recipe.seed).derive(detail::extraction_stream).next_u64(),
                                               recipe.classes, *options.extraction_share, base);
        setup.changed_train = setup.region->relabelled(base);
        setup.key.recipe["survive_extraction"] = setup.region->to_json();
    }
    return setup;
}

// The key's triggers as training mixes them into each of `epochs` epochs. Refers to
// setup.key: the setup must outlive the training.
inline extra_training_set embedding_triggers(const embedding_setup& setup, const embedding_options& options, int epochs) {
    const embed_schedule lambda = parse_embed_schedule(options.schedule, options.weight, epochs);
    return {&setup.key.triggers, options.repeat, [lambda](int epoch) { return lambda.at(epoch); }};
}

// How well a trained model took the watermark, and the extraction region's key.
struct embedding_quality {
    double trigger_accuracy = 0;      // on the key's triggers
    double trigger_accuracy_new = 0;  // on new triggers made the same way from test images
    index_t new_triggers = 0;
    std::optional<watermark_key> extraction_key;  // with an extraction region
    double extraction_trigger_accuracy = 0;       // on its triggers (test images of the region)
};

// Random labels on unrelated images leave no label a new image could carry
// (trigger_set.hpp): such a key has no new triggers, and trigger_accuracy_new stays 0.
template <class T>
embedding_quality measure_embedding(const sequential<T>& model, const embedding_setup& setup, const trigger_pools& pools,
                                    const dataset& test) {
    const trigger_recipe& recipe = setup.recipe;
    embedding_quality q;
    q.trigger_accuracy = trigger_accuracy(model, setup.key.triggers);
    if (setup.region) {
        q.extraction_key = extraction_region_key(*setup.region, test, recipe.count, setup.key);
        q.extraction_trigger_accuracy = trigger_accuracy(model, q.extraction_key->triggers);
    }
    if (recipe.label_mode == trigger_labeling::random && recipe.kind == trigger_kind::unrelated) return q;
    const index_t fresh_count = std::min<index_t>(pools.fresh_pool.size() - recipe.count, 1000);
    const dataset fresh = make_fresh_triggers(recipe, pools.fresh_pool, test.item_shape(), std::max<index_t>(fresh_count, 1));
    q.trigger_accuracy_new = trigger_accuracy(model, fresh);
    q.new_triggers = fresh.size();
    return q;
}

struct embedded_watermark {
    embedding_setup setup;  // setup.key is the key to keep secret
    std::vector<epoch_summary> history;
    embedding_quality quality;
};

// Algorithm 1 in one call: `network` (initialized by the caller) trained from scratch by
// `training` on the clean data with the key's triggers mixed in. The caller saves the
// model and the key (save_model, save_key) together.
template <class T>
embedded_watermark embed_watermark(sequential<T>& network, const trigger_recipe& recipe, const embedding_options& options,
                                   const training_recipe& training, const dataset& train, const dataset& test,
                                   const trigger_pools& pools, std::string_view dataset_name,
                                   const std::vector<std::filesystem::path>& files, progress_line& progress) {
    embedded_watermark e{prepare_embedding(recipe, options, train, pools, dataset_name, files), {}, {}};
    trainer<T> t(network, training);
    t.set_extra_set(embedding_triggers(e.setup, options, training.epochs));
    e.history = t.fit(e.setup.training_set(train), &test, progress);
    e.quality = measure_embedding(network, e.setup, pools, test);
    return e;
}

}  // namespace nnmark
