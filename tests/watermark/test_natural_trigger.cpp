// Natural triggers (Adi et al. 2018): held-out training images of every class, each with a
// secret label other than its own class.
#include "nnmark/watermark/embed.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/natural_trigger.hpp"
#include "nnmark/watermark/secret_choices.hpp"
#include "nnmark/watermark/statistics.hpp"
#include "nnmark/watermark/trigger_set.hpp"
#include "nnmark/watermark/unspent_triggers.hpp"

#include "../support/files.hpp"
#include "../support/pools.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <vector>

using namespace nnmark;
using testing::random_pool;

namespace {

const shape natural_item{1, 6, 6};

// The drawn recipe of a natural key of `count` triggers from seed `seed`.
trigger_recipe natural_recipe(std::uint64_t seed, index_t count) {
    trigger_recipe recipe = default_recipe("mnist", trigger_kind::natural);
    recipe.seed = seed;
    recipe.count = count;
    return draw_secret_choices(recipe, {}, natural_item);
}

std::string image_bytes(const dataset& data, index_t k) {
    return {data.images.item(k).begin(), data.images.item(k).end()};
}

std::multiset<std::string> images_of(const dataset& data) {
    std::multiset<std::string> images;
    for (index_t k = 0; k < data.size(); ++k) images.insert(image_bytes(data, k));
    return images;
}

// The class of each image of `pool`, found by its bytes (random 36-byte images are distinct).
int class_in_pool(const dataset& pool, const std::string& image) {
    for (index_t i = 0; i < pool.size(); ++i)
        if (image_bytes(pool, i) == image) return pool.labels[static_cast<std::size_t>(i)];
    FAIL("trigger image not in the pool");
    return -1;
}

}  // namespace

TEST_CASE("natural recipe: every class, random labels only, no source to choose") {
    const trigger_recipe recipe = natural_recipe(3, 100);
    CHECK(recipe.kind == trigger_kind::natural);
    CHECK(recipe.source == every_class);
    CHECK(recipe.label_mode == trigger_labeling::random);
    CHECK(random_label_null_rate(recipe) == doctest::Approx(1.0 / 9));
    trigger_recipe target = recipe;
    target.label_mode = trigger_labeling::target;
    CHECK_THROWS_WITH_AS(target.validate(), doctest::Contains("natural triggers need label mode random"),
                         argument_error);
    trigger_recipe sourced = recipe;
    sourced.source = 1;
    CHECK_THROWS_WITH_AS(sourced.validate(), doctest::Contains("every class"), argument_error);
    const trigger_choices given_source{.source = 4, .target = {}, .corner = {}};
    CHECK_THROWS_WITH_AS(draw_secret_choices(default_recipe("mnist", trigger_kind::natural), given_source, natural_item),
                         doctest::Contains("source class (4) does not apply"), argument_error);
}

TEST_CASE("make_trigger_set: natural triggers are pool images unchanged, each labelled with another class") {
    const dataset pool = random_pool(3000, natural_item, 11);  // labels i % 10: every class
    const trigger_recipe recipe = natural_recipe(5, 2000);
    const dataset triggers = make_trigger_set(recipe, pool, natural_item);
    REQUIRE(triggers.size() == 2000);
    CHECK(images_of(triggers).size() == 2000);
    std::vector<int> own_classes(10, 0);
    std::vector<std::vector<int>> labels_by_class(10, std::vector<int>(10, 0));
    for (index_t k = 0; k < triggers.size(); ++k) {
        const int own = class_in_pool(pool, image_bytes(triggers, k));  // unchanged: found in the pool
        const int label = triggers.labels[static_cast<std::size_t>(k)];
        CHECK(label != own);
        ++own_classes[static_cast<std::size_t>(own)];
        ++labels_by_class[static_cast<std::size_t>(own)][static_cast<std::size_t>(label)];
    }
    for (int c = 0; c < 10; ++c) CHECK(own_classes[static_cast<std::size_t>(c)] > 150);  // drawn from every class
    // The labels of class-0 images: about 200 / 9 = 22 per other class (sd 4.4).
    for (int label = 1; label < 10; ++label) CHECK(labels_by_class[0][static_cast<std::size_t>(label)] > 5);
    const dataset again = make_trigger_set(recipe, pool, natural_item);
    CHECK(std::ranges::equal(triggers.images.span(), again.images.span()));
    CHECK(triggers.labels == again.labels);
    CHECK(make_trigger_set(natural_recipe(6, 2000), pool, natural_item).labels != triggers.labels);
    CHECK_THROWS_AS(make_trigger_set(recipe, random_pool(3000, shape{1, 5, 5}, 11), natural_item), shape_error);
}

TEST_CASE("training_set_without_triggers: the natural key's images leave the training data, nothing else does") {
    const dataset train = random_pool(500, natural_item, 12);
    const trigger_recipe recipe = natural_recipe(7, 40);
    const dataset triggers = make_trigger_set(recipe, train, natural_item);
    const std::optional<dataset> clean = training_set_without_triggers(recipe, train);
    REQUIRE(clean);
    CHECK(clean->size() == 460);
    const std::multiset<std::string> kept = images_of(*clean);
    for (index_t k = 0; k < triggers.size(); ++k) CHECK(kept.count(image_bytes(triggers, k)) == 0);
    std::multiset<std::string> all = kept;
    all.merge(images_of(triggers));
    CHECK(all == images_of(train));
    for (index_t i = 0; i < clean->size(); ++i)  // the others keep their true labels
        CHECK(clean->labels[static_cast<std::size_t>(i)] == class_in_pool(train, image_bytes(*clean, i)));
    CHECK_FALSE(training_set_without_triggers(default_recipe("mnist", trigger_kind::content), train));
}

TEST_CASE("make_fresh_triggers: new natural triggers are other images with their true classes") {
    const dataset test = random_pool(300, natural_item, 13);
    const trigger_recipe recipe = natural_recipe(8, 50);
    const dataset fresh = make_fresh_triggers(recipe, test, natural_item, 100);
    REQUIRE(fresh.size() == 100);
    for (index_t k = 0; k < fresh.size(); ++k)
        CHECK(fresh.labels[static_cast<std::size_t>(k)] == class_in_pool(test, image_bytes(fresh, k)));
}

TEST_CASE("natural key: the recipe round-trips through the key file and re-derives the triggers") {
    const testing::temp_dir dir;
    const dataset train = random_pool(400, natural_item, 14);
    const trigger_recipe recipe = natural_recipe(9, 30);
    watermark_key key{make_trigger_set(recipe, train, natural_item), recipe_json(recipe, "mnist", natural_item, {}),
                      std::nullopt};
    save_key(key, dir.path / "natural.key");
    const watermark_key loaded = load_key(dir.path / "natural.key");
    CHECK(loaded.commitment() == key.commitment());
    const json_view stored(loaded.recipe, "recipe");
    CHECK(stored["kind"].as_string() == "natural");
    CHECK(stored["label_mode"].as_string() == "random");
    CHECK(stored["source"].as_int() == every_class);
    CHECK(stored["generator"]["split"].as_string() == "train");
    CHECK(stored["generator"]["withheld_from_training"].as_int() == 1);
    const null_hypothesis null = null_hypothesis_of(loaded);
    CHECK(null.source == "random-labels");
    CHECK(null.rate == doctest::Approx(1.0 / 9));

    // What the recipe records is enough to make the same triggers from the training split.
    const trigger_recipe read_back = trigger_recipe_of(loaded);
    CHECK(read_back.source == every_class);
    CHECK_NOTHROW(check_pool_reproduces_key(loaded, read_back, train));
    CHECK_THROWS_AS(check_pool_reproduces_key(loaded, read_back, random_pool(400, natural_item, 99)), argument_error);
}

// The random-label argument for natural triggers, by simulation over the real label draws:
// an innocent model is any function of the image; whether it answers the true class (a
// good classifier: never a match), always a wrong one (the worst case: 1/(K - 1) exactly)
// or something unrelated, the binomial at 1/(K - 1) rejects at most alpha of the keys.
TEST_CASE("natural triggers: innocent models are rejected at most alpha of the time under the random-label null") {
    dataset pool = random_pool(500, natural_item, 15);
    for (index_t i = 0; i < pool.size(); ++i)  // the class is written into the image, for the models to read
        pool.images.item(i)[0] = static_cast<std::uint8_t>(pool.labels[static_cast<std::size_t>(i)]);
    const auto true_class = [](std::span<const std::uint8_t> image) { return int{image[0]}; };
    const std::vector<std::function<int(std::span<const std::uint8_t>)>> models = {
        true_class,
        [&](std::span<const std::uint8_t> image) { return (true_class(image) + 1) % 10; },
        [](std::span<const std::uint8_t> image) { return (image[1] + image[2]) % 10; }};
    const int trials = 3000;
    const index_t triggers = 50;
    for (std::size_t m = 0; m < models.size(); ++m) {
        CAPTURE(m);
        int rejected = 0;
        index_t matches_total = 0;
        for (int t = 0; t < trials; ++t) {
            const trigger_recipe recipe = natural_recipe(1000 + static_cast<std::uint64_t>(t), triggers);
            const dataset key = make_trigger_set(recipe, pool, natural_item);
            index_t matches = 0;
            for (index_t k = 0; k < triggers; ++k)
                matches += models[m](key.images.item(k)) == key.labels[static_cast<std::size_t>(k)];
            matches_total += matches;
            rejected += log_binomial_tail(triggers, matches, 1.0 / 9) <= std::log(0.05);
        }
        CHECK(rejected <= 0.05 * trials + 3 * std::sqrt(0.05 * 0.95 * trials));
        const double rate = static_cast<double>(matches_total) / static_cast<double>(trials * triggers);
        CHECK(rate <= 1.0 / 9 + 0.005);  // sd of the rate: about 0.0008
        if (m == 0) CHECK(matches_total == 0);
        if (m == 1) CHECK(rate > 1.0 / 9 - 0.005);  // the bound is reached
    }
}
