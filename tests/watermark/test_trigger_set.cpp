#include "nnmark/watermark/trigger_set.hpp"

#include "../support/pools.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

using namespace nnmark;
using testing::random_pool;

namespace {

// n images of shape `item` with random bytes, all labelled `label`.
const shape mnist_item{1, 28, 28};
const shape cifar_item{3, 32, 32};

// The images as byte strings (std::string rather than std::vector<uint8_t>: comparing
// byte vectors trips GCC 12's -Wstringop-overread false positive).
std::set<std::string> image_set(const dataset& data) {
    std::set<std::string> images;
    for (index_t k = 0; k < data.size(); ++k) images.emplace(data.images.item(k).begin(), data.images.item(k).end());
    return images;
}

}  // namespace

TEST_CASE("default_recipe: the paper's classes, colours, noise levels and unrelated sources") {
    const trigger_recipe mnist = default_recipe("mnist", trigger_kind::content);
    CHECK(mnist.kind == trigger_kind::content);
    CHECK(mnist.source == 1);
    CHECK(mnist.target == 0);
    CHECK(mnist.source_dataset == "mnist");
    CHECK(mnist.content.intensity == 128);
    CHECK(mnist.label_mode == trigger_labeling::target);
    CHECK(mnist.count == 100);
    CHECK(default_recipe("cifar10", trigger_kind::content).content.intensity == 192);
    CHECK(default_recipe("mnist", trigger_kind::noise).sigma == 0.1);
    CHECK(default_recipe("cifar10", trigger_kind::noise).sigma == 0.4);
    const trigger_recipe fashion_bags = default_recipe("mnist", trigger_kind::unrelated);
    CHECK(fashion_bags.source_dataset == "fashion-mnist");
    CHECK(fashion_bags.source == 8);
    const trigger_recipe mnist_ones = default_recipe("cifar10", trigger_kind::unrelated);
    CHECK(mnist_ones.source_dataset == "mnist");
    CHECK(mnist_ones.source == 1);
    CHECK(mnist_ones.target == 0);
    CHECK_THROWS_AS(default_recipe("imagenet", trigger_kind::content), argument_error);
    CHECK_THROWS_WITH_AS(parse_trigger_kind("stripes", "--trigger"), doctest::Contains("'stripes'"), argument_error);
    for (trigger_kind kind : all_trigger_kinds) CHECK(parse_trigger_kind(to_string(kind), "test") == kind);
}

TEST_CASE("trigger_recipe: validate names the field that cannot work") {
    trigger_recipe recipe = default_recipe("mnist", trigger_kind::content);
    CHECK_NOTHROW(recipe.validate());
    auto broken = [&](auto change) {
        trigger_recipe copy = recipe;
        change(copy);
        return copy;
    };
    CHECK_THROWS_WITH_AS(broken([](trigger_recipe& r) { r.count = 0; }).validate(), doctest::Contains("count"),
                         argument_error);
    CHECK_THROWS_WITH_AS(parse_trigger_labeling("secret", "--labels"), doctest::Contains("'secret'"), argument_error);
    CHECK(parse_trigger_labeling("random", "test") == trigger_labeling::random);
    CHECK_THROWS_AS(broken([](trigger_recipe& r) { r.target = 10; }).validate(), argument_error);
    CHECK_THROWS_AS(broken([](trigger_recipe& r) { r.target = 1; }).validate(), argument_error);
    CHECK_NOTHROW(broken([](trigger_recipe& r) { r.target = 1, r.label_mode = trigger_labeling::random; }).validate());
    CHECK_THROWS_AS(broken([](trigger_recipe& r) { r.classes = 1; }).validate(), argument_error);
    CHECK_THROWS_AS(broken([](trigger_recipe& r) { r.source = 12; }).validate(), argument_error);
    // An unrelated source class belongs to the other dataset, so it is not bounded by classes.
    CHECK_NOTHROW(broken([](trigger_recipe& r) { r.kind = trigger_kind::unrelated, r.source = 12; }).validate());
}

TEST_CASE("make_generator: builds the generator the recipe names, with its parameters") {
    CHECK(make_generator(default_recipe("mnist", trigger_kind::content), mnist_item)->kind() == "content");
    CHECK(make_generator(default_recipe("cifar10", trigger_kind::unrelated), cifar_item)->kind() == "unrelated");
    trigger_recipe noise = default_recipe("cifar10", trigger_kind::noise);
    noise.seed = 123;
    const auto generator = make_generator(noise, cifar_item);
    CHECK(generator->kind() == "noise");
    CHECK(generator->parameters() == noise_trigger(cifar_item, 0.4, 123).parameters());
    CHECK(dynamic_cast<const noise_trigger&>(*generator).pattern() == noise_trigger(cifar_item, 0.4, 123).pattern());
    trigger_recipe huge = default_recipe("mnist", trigger_kind::content);
    huge.content.scale = 2;
    CHECK_THROWS_AS(make_generator(huge, mnist_item), argument_error);
}

TEST_CASE("make_trigger_set: target mode gives every trigger the target label, deterministically") {
    const dataset pool = random_pool(300, mnist_item, 1, 1);
    trigger_recipe recipe = default_recipe("mnist", trigger_kind::noise);
    recipe.count = 50;
    const dataset triggers = make_trigger_set(recipe, pool, mnist_item);
    CHECK(triggers.size() == 50);
    CHECK(triggers.images.shape() == shape{50, 1, 28, 28});
    CHECK(triggers.labels == std::vector<int>(50, 0));
    CHECK(triggers.classes == 10);
    CHECK_NOTHROW(triggers.validate("test"));
    const dataset again = make_trigger_set(recipe, pool, mnist_item);
    CHECK(std::ranges::equal(triggers.images.span(), again.images.span()));
    recipe.seed = 2;
    CHECK_FALSE(std::ranges::equal(triggers.images.span(), make_trigger_set(recipe, pool, mnist_item).images.span()));
}

TEST_CASE("make_trigger_set: random mode never uses the source class and is uniform over the others") {
    const shape tiny{1, 2, 2};
    const dataset pool = random_pool(2000, tiny, 2, 1);
    trigger_recipe recipe = default_recipe("mnist", trigger_kind::noise);
    recipe.label_mode = trigger_labeling::random;
    recipe.count = 2000;
    const dataset triggers = make_trigger_set(recipe, pool, tiny);
    std::vector<int> counts(10, 0);
    for (int label : triggers.labels) ++counts[static_cast<std::size_t>(label)];
    CHECK(counts[1] == 0);
    // 2000 / 9 = 222 per class, standard deviation about 14.
    for (int label : random_label_candidates(recipe.classes, recipe.source)) {
        CHECK(counts[static_cast<std::size_t>(label)] > 160);
        CHECK(counts[static_cast<std::size_t>(label)] < 290);
    }
    CHECK(random_label_candidates(recipe.classes, recipe.source) == std::vector<int>{0, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(random_label_null_rate(recipe) == doctest::Approx(1.0 / 9));
    CHECK(make_trigger_set(recipe, pool, tiny).labels == triggers.labels);
    recipe.seed = 5;
    CHECK(make_trigger_set(recipe, pool, tiny).labels != triggers.labels);
}

TEST_CASE("make_trigger_set: a pool smaller than the count is an argument error naming both") {
    const dataset pool = random_pool(40, mnist_item, 3, 1);
    trigger_recipe recipe = default_recipe("mnist", trigger_kind::content);
    CHECK_THROWS_WITH_AS(make_trigger_set(recipe, pool, mnist_item), doctest::Contains("100"), argument_error);
    CHECK_THROWS_WITH_AS(make_trigger_set(recipe, pool, mnist_item), doctest::Contains("holds 40"), argument_error);
    CHECK_THROWS_AS(make_trigger_set(recipe, random_pool(0, mnist_item, 3, 1), mnist_item), argument_error);
}

TEST_CASE("make_fresh_triggers: new images, never the key's when the pool has enough others") {
    const dataset pool = random_pool(200, mnist_item, 4, 1);
    trigger_recipe recipe = default_recipe("mnist", trigger_kind::content);
    recipe.count = 20;
    const auto key = image_set(make_trigger_set(recipe, pool, mnist_item));
    const dataset fresh = make_fresh_triggers(recipe, pool, mnist_item, 100);
    CHECK(fresh.size() == 100);
    CHECK(fresh.labels == std::vector<int>(100, 0));
    const auto fresh_images = image_set(fresh);
    CHECK(fresh_images.size() == 100);
    for (const auto& image : fresh_images) CHECK(key.count(image) == 0);
    // 20 + 190 > 200: nothing to leave out, the whole pool is used.
    CHECK(make_fresh_triggers(recipe, pool, mnist_item, 190).size() == 190);
    CHECK_THROWS_AS(make_fresh_triggers(recipe, pool, mnist_item, 201), argument_error);
}

TEST_CASE("make_fresh_triggers: the same noise pattern as the key's") {
    trigger_recipe recipe = default_recipe("cifar10", trigger_kind::noise);
    recipe.count = 5;
    dataset grey = random_pool(30, cifar_item, 5, 1);
    grey.images.fill(128);
    const dataset key = make_trigger_set(recipe, grey, cifar_item);
    const dataset fresh = make_fresh_triggers(recipe, grey, cifar_item, 10);
    for (index_t k = 0; k < fresh.size(); ++k) CHECK(std::ranges::equal(fresh.images.item(k), key.images.item(0)));
}

TEST_CASE("make_fresh_triggers: random mode labels new triggers with their true (source) class") {
    const dataset pool = random_pool(50, mnist_item, 6, 1);
    trigger_recipe recipe = default_recipe("mnist", trigger_kind::content);
    recipe.count = 10;
    recipe.label_mode = trigger_labeling::random;
    CHECK(make_fresh_triggers(recipe, pool, mnist_item, 10).labels == std::vector<int>(10, 1));
    trigger_recipe unrelated = default_recipe("mnist", trigger_kind::unrelated);
    unrelated.label_mode = trigger_labeling::random;
    CHECK_THROWS_AS(make_fresh_triggers(unrelated, pool, mnist_item, 10), argument_error);
}
