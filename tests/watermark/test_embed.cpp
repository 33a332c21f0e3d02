#include "nnmark/watermark/embed.hpp"

#include "../support/tiny_watermark.hpp"

#include <doctest/doctest.h>

#include <cstdio>

using namespace nnmark;
using namespace nnmark::testing;

TEST_CASE("embed_watermark: the model answers the key where a clean model of the same recipe does not") {
    quadrant_watermark w(3);
    const dataset& train = w.train;
    const dataset& test = w.test;
    const trigger_pools& pools = w.pools;
    const sequential<float>& marked = w.model;
    const embedded_watermark& e = w.embedded;
    progress_line quiet(stderr, 5.0, true);
    CHECK(e.setup.key.triggers.size() == 20);
    CHECK(e.setup.key.recipe.at("kind") == "noise");
    CHECK(e.history.size() == 8);
    CHECK(e.quality.trigger_accuracy >= 0.9);
    CHECK(e.quality.new_triggers == pools.fresh_pool.size() - 20);
    CHECK(evaluate(marked, test).accuracy() >= 0.9);
    CHECK_FALSE(e.quality.extraction_key);

    sequential<float> clean = make_tiny_net<float>();
    clean.initialize(3);
    trainer<float>(clean, quadrant_training(3)).fit(train, &test, quiet);
    CHECK(trigger_accuracy(clean, e.setup.key.triggers) < 0.5);
}

TEST_CASE("prepare_embedding: natural triggers leave the training data, an extraction region is relabelled and keyed") {
    const dataset train = make_quadrant_dataset(300, 4), test = make_quadrant_dataset(120, 5);
    const trigger_recipe natural = quadrant_trigger_recipe(trigger_kind::natural);
    const trigger_pools natural_pools = load_trigger_pools(natural, train, test, "");
    const embedding_setup held_out = prepare_embedding(natural, embedding_options{}, train, natural_pools, "quadrants", {});
    CHECK(held_out.training_set(train).size() == train.size() - natural.count);
    CHECK_FALSE(held_out.region);

    embedding_options survive;
    survive.extraction_share = 0.2;
    const trigger_recipe noise = quadrant_trigger_recipe(trigger_kind::noise);
    const trigger_pools pools = load_trigger_pools(noise, train, test, "");
    const embedding_setup setup = prepare_embedding(noise, survive, train, pools, "quadrants", {});
    REQUIRE(setup.region);
    CHECK(setup.training_set(train).size() == train.size());
    index_t relabelled = 0;
    for (std::size_t i = 0; i < train.labels.size(); ++i) relabelled += setup.training_set(train).labels[i] != train.labels[i];
    CHECK(relabelled > 0);
    CHECK(setup.key.recipe.contains("survive_extraction"));
    const watermark_key region_key = extraction_region_key(*setup.region, test, 10, setup.key);
    CHECK(region_key.recipe.at("kind") == "extraction-region");
    CHECK(region_key.recipe.at("watermark_key") == setup.key.commitment());
    REQUIRE(region_key.triggers.size() > 0);
    for (int label : region_key.triggers.labels) CHECK(label == setup.region->label);
}
