#include "nnmark/watermark/trigger_kind.hpp"

#include "../support/errors.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

using namespace nnmark;
using testing::error_message;

TEST_CASE("trigger_kind: every kind and label mode has its own name, and the name reads back as it") {
    std::set<std::string> names;
    for (trigger_kind kind : all_trigger_kinds) {
        names.emplace(to_string(kind));
        CHECK(parse_trigger_kind(to_string(kind), "test") == kind);
    }
    CHECK(names == std::set<std::string>{"content", "unrelated", "noise", "natural"});
    for (trigger_labeling labeling : {trigger_labeling::target, trigger_labeling::random})
        CHECK(parse_trigger_labeling(to_string(labeling), "test") == labeling);
    CHECK(to_string(trigger_labeling::target) == "target");
    CHECK(to_string(trigger_labeling::random) == "random");
}

TEST_CASE("trigger_kind: an unknown name is an argument error naming where it was found and what was expected") {
    const std::string kind = error_message([] { parse_trigger_kind("Content", "key recipe: kind"); });
    CHECK(kind == "key recipe: kind: expected a trigger kind (content, unrelated, noise or natural), found 'Content'");
    const std::string mode = error_message([] { parse_trigger_labeling("", "--labels"); });
    CHECK(mode == "--labels: expected a label mode (target or random), found ''");
    CHECK_THROWS_AS(parse_trigger_kind("", "x"), argument_error);
}
