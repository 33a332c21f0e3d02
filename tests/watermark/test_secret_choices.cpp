#include "nnmark/watermark/secret_choices.hpp"

#include <doctest/doctest.h>

#include <set>
#include <tuple>

using namespace nnmark;

namespace {

const shape digit_image{1, 28, 28};

trigger_recipe recipe_with_seed(const char* kind, std::uint64_t seed) {
    trigger_recipe recipe = default_recipe("mnist", parse_trigger_kind(kind, "test"));
    recipe.seed = seed;
    return recipe;
}

trigger_recipe drawn(const char* kind, std::uint64_t seed, const trigger_choices& given = {}) {
    return draw_secret_choices(recipe_with_seed(kind, seed), given, digit_image);
}

// (source, target, x, y) of a recipe: what two owners must not share.
auto choices_of(const trigger_recipe& r) { return std::tuple(r.source, r.target, r.content.x, r.content.y); }

}  // namespace

TEST_CASE("draw_secret_choices: the same seed makes the same choices, other seeds others") {
    for (const char* kind : {"content", "unrelated", "noise"}) {
        CAPTURE(kind);
        CHECK(choices_of(drawn(kind, 7)) == choices_of(drawn(kind, 7)));
        std::set<std::tuple<int, int, int, int>> seen;
        for (std::uint64_t seed = 1; seed <= 40; ++seed) seen.insert(choices_of(drawn(kind, seed)));
        CHECK(seen.size() > 10);  // 40 draws over 90 (or 100, or 360) choices
    }
}

TEST_CASE("draw_secret_choices: content and noise targets are never the source, unrelated ones may be") {
    std::set<int> sources, targets, unrelated_sources;
    bool unrelated_target_equals_source = false;
    for (std::uint64_t seed = 1; seed <= 400; ++seed) {
        for (const char* kind : {"content", "noise"}) {
            const trigger_recipe r = drawn(kind, seed);
            CHECK(r.source != r.target);
            sources.insert(r.source);
            targets.insert(r.target);
        }
        const trigger_recipe u = drawn("unrelated", seed);
        CHECK(u.source_dataset == "fashion-mnist");
        unrelated_sources.insert(u.source);
        unrelated_target_equals_source |= u.source == u.target;  // the source is another domain's class
    }
    CHECK(sources == std::set<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(targets == std::set<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(unrelated_sources == std::set<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(unrelated_target_equals_source);
}

TEST_CASE("draw_secret_choices: the stamp goes into each corner, 1 pixel from both edges") {
    // "TEST" at scale 1 is 23 x 7 pixels; y counts rows above the bottom edge.
    std::set<std::pair<int, int>> corners;
    for (std::uint64_t seed = 1; seed <= 100; ++seed) {
        const trigger_recipe r = drawn("content", seed);
        corners.emplace(r.content.x, r.content.y);
    }
    CHECK(corners == std::set<std::pair<int, int>>{{1, 1}, {1, 20}, {4, 1}, {4, 20}});

    const auto placed = [](text_corner corner) {
        content_options options;
        place_text(options, corner, digit_image);
        return std::pair(options.x, options.y);
    };
    CHECK(placed(text_corner::bottom_left) == std::pair(1, 1));
    CHECK(placed(text_corner::bottom_right) == std::pair(4, 1));
    CHECK(placed(text_corner::top_left) == std::pair(1, 20));
    CHECK(placed(text_corner::top_right) == std::pair(4, 20));
    for (const text_corner corner :
         {text_corner::bottom_left, text_corner::bottom_right, text_corner::top_left, text_corner::top_right})
        CHECK(parse_text_corner(name_of(corner)) == corner);
    CHECK_THROWS_WITH_AS(parse_text_corner("middle"), doctest::Contains("'middle'"), argument_error);
}

TEST_CASE("draw_secret_choices: a given choice is kept and the other draws do not move") {
    const trigger_recipe free = drawn("content", 11);
    const trigger_recipe source_given = drawn("content", 11, {.source = 3, .target = {}, .corner = {}});
    CHECK(source_given.source == 3);
    CHECK(std::pair(source_given.content.x, source_given.content.y) == std::pair(free.content.x, free.content.y));
    const trigger_recipe corner_given = drawn("content", 11, {.source = {}, .target = {}, .corner = text_corner::top_right});
    CHECK(std::pair(corner_given.source, corner_given.target) == std::pair(free.source, free.target));
    CHECK(std::pair(corner_given.content.x, corner_given.content.y) == std::pair(4, 20));
    const trigger_recipe all_given = drawn("noise", 11, {.source = 1, .target = 0, .corner = {}});
    CHECK(std::pair(all_given.source, all_given.target) == std::pair(1, 0));
    // The choices do not touch the rest of the recipe.
    CHECK(all_given.seed == 11);
    CHECK(all_given.sigma == default_recipe("mnist", trigger_kind::noise).sigma);
}

TEST_CASE("draw_secret_choices: a given choice that cannot work is refused, naming it") {
    CHECK_THROWS_AS(drawn("content", 5, {.source = 4, .target = 4, .corner = {}}), argument_error);
    CHECK_THROWS_AS(drawn("content", 5, {.source = 10, .target = {}, .corner = {}}), argument_error);
    trigger_recipe long_text = recipe_with_seed("content", 5);
    long_text.content.text = "WATERMARK";  // 9 letters: wider than 28 pixels
    CHECK_THROWS_WITH_AS(draw_secret_choices(long_text, {}, digit_image), doctest::Contains("WATERMARK"), argument_error);
    trigger_recipe unknown = recipe_with_seed("content", 5);
    unknown.source_dataset = "imagenet";
    CHECK_THROWS_WITH_AS(draw_secret_choices(unknown, {}, digit_image), doctest::Contains("imagenet"), argument_error);
}

TEST_CASE("draw_secret_seed: 63 random bits, different every time") {
    std::set<std::uint64_t> seeds;
    for (int i = 0; i < 8; ++i) {
        const std::uint64_t seed = draw_secret_seed();
        CHECK(seed < (std::uint64_t{1} << 63));  // stored as a JSON int64
        seeds.insert(seed);
    }
    CHECK(seeds.size() == 8);
}
