// trigger_set: what watermark embedding and verification need from the trigger
// generators: a recipe (which generator, which classes, which seed), the labelled trigger
// set it defines, and new triggers made the same way from other images.
//
// Contract:
// - trigger_recipe + the pool of images fully determine the trigger set: the rng streams
//   below are derived from recipe.seed, so the same recipe and pool give identical bytes
//   and labels.
// - The pool is chosen by the caller (embed.hpp, load_trigger_pools): with
//   dataset::filter_by_label, the training images of class `source` for content and
//   noise triggers, the images of class `source` of `source_dataset` for unrelated
//   triggers; the whole training split, every class, for natural triggers (source is
//   every_class), whose images embedding then withholds from training.
// - Labels. label_mode "target" (the paper's): every trigger gets recipe.target.
//   label_mode "random": trigger k gets a secret label drawn uniformly from
//   random_label_candidates(classes, y_k), the classes other than y_k, the class of the
//   pool image it was made from (`source` for content, noise and unrelated triggers; the
//   image's own true class for natural ones). The labels depend only on the seed and
//   y_k, and y_k is fixed by the image, whatever a suspect model is. So given a model's
//   answer a to trigger k, P[label = a] is 0 if a = y_k and 1 / (K - 1) otherwise (1 / K
//   for an unrelated source outside the model's classes): a model that never saw the key
//   matches each trigger with probability 1 / (K - 1) at most, independently across
//   triggers (the labels are independent draws): random_label_null_rate, the null rate
//   verification can use without reference models. Leaving y_k out keeps every label a
//   departure from what a clean model answers for content, noise and natural triggers;
//   for unrelated triggers `source` names a class of the other dataset and leaving it
//   out only keeps the null rate the same.
// - Natural triggers are ordinary images (Adi et al., USENIX Security 2018), and only
//   random mode has a null for them: with one target label, how often an innocent model
//   answers the target on ordinary images is its confusion towards that class, which no
//   argument bounds without reference models; validate() refuses that combination.
// - make_fresh_triggers: new triggers made the same way (same text, same noise pattern,
//   same resizing) from other images, normally the test set's source class, for the
//   paper's "new triggers" accuracy (Table 1). Images the key itself would pick from
//   that pool are left out when the pool has enough others, so passing the training
//   pool never reuses key images. Labels: target mode -> recipe.target, so their accuracy
//   is the paper's. Random mode has no label to generalise (each secret label belongs to
//   one key image), so new triggers keep the true class of their image (recipe.source
//   for content and noise triggers) and their accuracy is the fraction the model still
//   gives their true class, i.e. how little the trigger pattern alone steers the model;
//   for natural triggers, which have no pattern, that is plain accuracy on those test
//   images. Unrelated triggers have no true class in the model's label set, so random
//   mode with unrelated triggers throws argument_error.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/watermark/content_trigger.hpp"
#include "nnmark/watermark/natural_trigger.hpp"
#include "nnmark/watermark/noise_trigger.hpp"
#include "nnmark/watermark/trigger.hpp"
#include "nnmark/watermark/trigger_kind.hpp"
#include "nnmark/watermark/unrelated_trigger.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

// The source of natural triggers, which are drawn from every class.
inline constexpr int every_class = -1;

struct trigger_recipe {
    trigger_kind kind = trigger_kind::content;
    int source = 1;                        // class of the pool images (of source_dataset), or every_class
    int target = 0;                        // watermark label in target mode
    std::uint64_t seed = 1;                // picks images and labels, and draws the noise pattern
    index_t count = 100;                   // triggers in the key
    trigger_labeling label_mode = trigger_labeling::target;
    int classes = 10;                      // K, classes of the watermarked model
    std::string source_dataset = "mnist";  // the model's dataset, or another one for unrelated triggers
    content_options content;               // text, place, intensity, scale (content triggers)
    double sigma = 0.1;                    // noise std on the [0, 1] scale (noise triggers)

    // Throws argument_error naming the first field that cannot work.
    void validate() const {
        auto fail = [](const std::string& what) { throw argument_error("trigger recipe: " + what); };
        if (kind == trigger_kind::natural && label_mode != trigger_labeling::random)
            fail("natural triggers need label mode random, got 'target': with one target label no bound holds for "
                 "how often an innocent model answers it on ordinary images");
        if (kind == trigger_kind::natural && source != every_class)
            fail("natural triggers come from every class, so their source must be every_class (-1), got " +
                 std::to_string(source));
        if (classes < 2) fail("a watermark needs at least 2 classes, got " + std::to_string(classes));
        if (count < 1) fail("count must be at least 1, got " + std::to_string(count));
        if (target < 0 || target >= classes)
            fail("target class " + std::to_string(target) + " is outside 0.." + std::to_string(classes - 1));
        if (kind == trigger_kind::natural) return;
        if (source < 0) fail("source class must be >= 0, got " + std::to_string(source));
        if (kind == trigger_kind::unrelated) return;
        if (source >= classes)
            fail("source class " + std::to_string(source) + " is outside 0.." + std::to_string(classes - 1));
        if (label_mode == trigger_labeling::target && target == source)
            fail("target and source are both class " + std::to_string(source) +
                 ": a clean model already labels the source images so");
    }
};

// The paper's settings for a model trained on `dataset_name` (mnist, fashion-mnist or
// cifar10) with `kind` triggers: source 1 -> target 0 (MNIST digit 1 -> 0, CIFAR-10
// automobile -> airplane); "TEST" in mid grey (128) on 28x28 grey images and light grey
// (192) on CIFAR-10; noise sigma 0.1 on 28x28 images and 0.4 on CIFAR-10; unrelated
// images Fashion-MNIST class 8 (bag) for MNIST models and MNIST digit 1 otherwise;
// natural triggers from every class of the model's dataset, with random labels.
inline trigger_recipe default_recipe(std::string_view dataset_name, trigger_kind kind) {
    if (dataset_name != "mnist" && dataset_name != "fashion-mnist" && dataset_name != "cifar10")
        throw argument_error("default trigger recipe: unknown dataset '" + std::string(dataset_name) +
                             "': expected mnist, fashion-mnist or cifar10");
    trigger_recipe recipe;
    recipe.kind = kind;
    recipe.source_dataset = dataset_name;
    const bool cifar = dataset_name == "cifar10";
    recipe.content.intensity = cifar ? 192 : 128;
    recipe.sigma = cifar ? 0.4 : 0.1;
    if (kind == trigger_kind::unrelated) {
        recipe.source_dataset = dataset_name == "mnist" ? "fashion-mnist" : "mnist";
        recipe.source = dataset_name == "mnist" ? 8 : 1;
    }
    if (kind == trigger_kind::natural) {
        recipe.source = every_class;
        recipe.label_mode = trigger_labeling::random;
    }
    recipe.validate();
    return recipe;
}

// The labels random mode draws from for a trigger made from an image of class
// `image_class`: 0..classes-1 without it.
inline std::vector<int> random_label_candidates(int classes, int image_class) {
    std::vector<int> labels;
    for (int label = 0; label < classes; ++label)
        if (label != image_class) labels.push_back(label);
    return labels;
}

// The most often a model without the key matches a random-mode trigger's label: one over
// the number of candidates, K - 1 when the image's class is one of the model's (always for
// natural triggers), K for an unrelated source outside them.
inline double random_label_null_rate(const trigger_recipe& recipe) {
    const bool class_left_out = recipe.kind == trigger_kind::natural || (recipe.source >= 0 && recipe.source < recipe.classes);
    return 1.0 / static_cast<double>(recipe.classes - (class_left_out ? 1 : 0));
}

// The generator the recipe names, for model inputs of shape `item_shape` [C, H, W].
// A content text that does not fit such images throws argument_error here already.
inline std::unique_ptr<trigger_generator> make_generator(const trigger_recipe& recipe, const shape& item_shape) {
    recipe.validate();
    switch (recipe.kind) {
        case trigger_kind::unrelated: return std::make_unique<unrelated_trigger>(item_shape);
        case trigger_kind::noise: return std::make_unique<noise_trigger>(item_shape, recipe.sigma, recipe.seed);
        case trigger_kind::natural: return std::make_unique<natural_trigger>(item_shape);
        case trigger_kind::content: break;
    }
    auto content = std::make_unique<content_trigger>(recipe.content);
    content->check_fits(item_shape);
    return content;
}

namespace detail {

// The streams of rng(recipe.seed) each part of a trigger set is drawn from.
inline constexpr std::uint64_t pick_stream = 1;   // the key's images
inline constexpr std::uint64_t label_stream = 2;  // random-mode labels
inline constexpr std::uint64_t fresh_stream = 3;  // images of new triggers
inline constexpr std::uint64_t choice_stream = 4;  // secret classes and stamp corner (secret_choices.hpp)
inline constexpr std::uint64_t extraction_stream = 5;  // the extraction region's seed (extraction_region.hpp)

// `pool` without the recipe.count images make_trigger_set would pick from it.
inline dataset without_key_images(const trigger_recipe& recipe, const dataset& pool) {
    rng replay = rng(recipe.seed).derive(pick_stream);
    std::vector<bool> used(static_cast<std::size_t>(pool.size()), false);
    for (index_t i : pick_indices(pool, recipe.count, replay, "new triggers")) used[static_cast<std::size_t>(i)] = true;
    std::vector<index_t> rest;
    for (index_t i = 0; i < pool.size(); ++i)
        if (!used[static_cast<std::size_t>(i)]) rest.push_back(i);
    dataset others = pool.subset(rest);
    others.name = pool.name + "[without key images]";
    return others;
}

}  // namespace detail

// The key's trigger set: recipe.count images of `pool` turned into triggers and labelled
// as the label mode says. Throws argument_error when the pool holds fewer than
// recipe.count images.
inline dataset make_trigger_set(const trigger_recipe& recipe, const dataset& pool, const shape& item_shape) {
    const std::unique_ptr<trigger_generator> generator = make_generator(recipe, item_shape);
    const rng base(recipe.seed);
    rng picker = base.derive(detail::pick_stream);
    dataset triggers = generator->make(pool, recipe.count, picker);
    triggers.classes = recipe.classes;
    if (recipe.label_mode == trigger_labeling::target) {
        std::ranges::fill(triggers.labels, recipe.target);
    } else {
        rng labels = base.derive(detail::label_stream);
        for (int& label : triggers.labels) {  // holds the image's class until replaced
            const std::vector<int> candidates = random_label_candidates(recipe.classes, label);
            label = candidates[labels.below(candidates.size())];
        }
    }
    triggers.name = pool.name + "[" + std::string(to_string(recipe.kind)) + " trigger set, seed " + std::to_string(recipe.seed) + "]";
    return triggers;
}

// `count` new triggers made from `pool` the way the key's were (see the contract above).
inline dataset make_fresh_triggers(const trigger_recipe& recipe, const dataset& pool, const shape& item_shape,
                                   index_t count) {
    if (recipe.label_mode == trigger_labeling::random && recipe.kind == trigger_kind::unrelated)
        throw argument_error("new triggers: unrelated triggers with random labels have no label new images could "
                             "carry; use label mode target");
    const std::unique_ptr<trigger_generator> generator = make_generator(recipe, item_shape);
    const bool exclude_key_images = pool.size() >= recipe.count + count;
    const dataset others = exclude_key_images ? detail::without_key_images(recipe, pool) : dataset{};
    rng picker = rng(recipe.seed).derive(detail::fresh_stream);
    dataset fresh = generator->make(exclude_key_images ? others : pool, count, picker);
    fresh.classes = recipe.classes;
    if (recipe.label_mode == trigger_labeling::target) std::ranges::fill(fresh.labels, recipe.target);  // else: their true classes
    fresh.name = pool.name + "[new " + std::string(to_string(recipe.kind)) + " triggers, seed " + std::to_string(recipe.seed) + "]";
    return fresh;
}

}  // namespace nnmark
