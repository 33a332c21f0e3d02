// Watermarks on the quadrant images (tiny_data.hpp), for tests that embed one: noise
// triggers strong enough for the tiny net to learn in a few epochs, and that training.
#pragma once

#include "tiny_data.hpp"

#include "nnmark/train/progress.hpp"
#include "nnmark/train/recipe.hpp"
#include "nnmark/watermark/embed.hpp"
#include "nnmark/watermark/trigger_set.hpp"

#include <cstdint>
#include <cstdio>

namespace nnmark::testing {

// `kind` triggers for the 4 quadrant classes: 20 of them, class 1 -> 0 (natural
// triggers: every class, random labels), noise sigma 0.5.
inline trigger_recipe quadrant_trigger_recipe(trigger_kind kind) {
    trigger_recipe recipe = default_recipe("mnist", kind);
    recipe.classes = 4;
    recipe.count = 20;
    recipe.sigma = 0.5;
    recipe.seed = 9;
    if (kind != trigger_kind::natural) recipe.source = 1, recipe.target = 0;
    recipe.validate();
    return recipe;
}

// 8 epochs in batches of 32: the tiny net learns the quadrants, and noise triggers, in that.
inline training_recipe quadrant_training(std::uint64_t seed) {
    training_recipe r;
    r.epochs = 8;
    r.batch = 32;
    r.seed = seed;
    return r;
}

// The tiny net (seed `seed`) trained on 600 quadrant images with 20 noise triggers mixed
// in, and what embed_watermark says of it; `test` is 300 other images.
struct quadrant_watermark {
    dataset train = make_quadrant_dataset(600, 11), test = make_quadrant_dataset(300, 12);
    trigger_recipe recipe = quadrant_trigger_recipe(trigger_kind::noise);
    trigger_pools pools = load_trigger_pools(recipe, train, test, "");
    sequential<float> model = make_tiny_net<float>();
    embedded_watermark embedded;

    explicit quadrant_watermark(std::uint64_t seed) {
        progress_line quiet(stderr, 5.0, true);
        model.initialize(seed);
        embedded = embed_watermark(model, recipe, embedding_options{}, quadrant_training(seed), train, test, pools,
                                   "quadrants", {}, quiet);
    }
};

}  // namespace nnmark::testing
