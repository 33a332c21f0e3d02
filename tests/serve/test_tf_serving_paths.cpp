// tf_serving_paths: TF Serving's model URLs read into typed paths, anything else refused,
// and the refusals of another model, version or label.
#include "nnmark/serve/tf_serving_paths.hpp"

#include "../support/errors.hpp"

#include <doctest/doctest.h>

namespace nnmark::testing::tf_serving_paths_tests {

TEST_CASE("serve paths: every verb, with or without a version or a label, and back to text") {
    struct expected_path {
        const char* text;
        std::optional<std::int64_t> version;
        std::optional<std::string> label;
        model_verb verb;
    };
    const expected_path cases[] = {
        {"/v1/models/m", {}, {}, model_verb::status},
        {"/v1/models/m/metadata", {}, {}, model_verb::metadata},
        {"/v1/models/m:predict", {}, {}, model_verb::predict},
        {"/v1/models/m/versions/12:classify", 12, {}, model_verb::classify},
        {"/v1/models/m/labels/stable:regress", {}, "stable", model_verb::regress},
        {"/v1/models/m/versions/3/metadata", 3, {}, model_verb::metadata},
        {"/v1/models/m/labels/canary", {}, "canary", model_verb::status},
    };
    for (const expected_path& c : cases) {
        CAPTURE(std::string(c.text));
        const std::optional<model_path> p = parse_model_path(c.text);
        REQUIRE(p);
        CHECK(p->model == "m");
        CHECK(p->version == c.version);
        CHECK(p->label == c.label);
        CHECK(p->verb == c.verb);
        CHECK(p->str() == c.text);
    }
    CHECK(parse_model_path("/v1/models/m/versions/007:predict")->str() == "/v1/models/m/versions/7:predict");
    CHECK(allowed_methods(model_verb::metadata) == "GET, HEAD");
    CHECK(allows_method(model_verb::predict, "POST"));
    CHECK_FALSE(allows_method(model_verb::predict, "GET"));
    CHECK(allows_method(model_verb::status, "HEAD"));
}

TEST_CASE("serve paths: what is not a model URL is nothing") {
    for (const char* text :
         {"", "/", "/v1/models", "/v1/models/", "/v1/models/:predict", "/v2/models/m", "/v1/models/m:explain",
          "/v1/models/m/", "/v1/models/m/versions/", "/v1/models/m/versions/x:predict", "/v1/models/m/versions/-1",
          "/v1/models/m/versions/9223372036854775808", "/v1/models/m/labels/:predict", "/v1/models/m:predict/",
          "/v1/models/m/versions/1/labels/a", "/v1/models/m/metadata:predict", "/v1/models/m:predict:predict"}) {
        CAPTURE(std::string(text));
        CHECK_FALSE(parse_model_path(text));
    }
    CHECK(parse_model_path("/v1/models/m/versions/9223372036854775807")->version == INT64_MAX);
}

TEST_CASE("serve paths: another model or version is not found (404), an unknown label is invalid (400)") {
    const served_versions versions{5, {"stable", "prod"}};
    const auto refusal = [&](const char* text) { return servable_refusal_of(*parse_model_path(text), "m", versions); };
    CHECK_FALSE(refusal("/v1/models/m:predict"));
    CHECK_FALSE(refusal("/v1/models/m/versions/5:predict"));
    CHECK_FALSE(refusal("/v1/models/m/labels/prod"));
    const auto other = refusal("/v1/models/x/labels/stable:predict");
    REQUIRE(other);
    CHECK(other->status == 404);
    CHECK(other->message == "Servable not found for request: Latest(x): no model named \"x\"; this server serves "
                            "\"m\", version 5");
    const auto version = refusal("/v1/models/m/versions/4:classify");
    REQUIRE(version);
    CHECK(version->status == 404);
    CHECK(version->message == "Servable not found for request: Specific(m, 4): no version 4; this server serves "
                              "\"m\", version 5");
    const auto label = refusal("/v1/models/m/labels/canary/metadata");
    REQUIRE(label);
    CHECK(label->status == 400);
    CHECK(label->message ==
          "Unrecognized servable version label: canary; this server's labels are \"stable\", \"prod\" (--version-label)");
    CHECK(servable_refusal_of(*parse_model_path("/v1/models/m/labels/a"), "m", {})->message ==
          "Unrecognized servable version label: a; this server has no version labels (--version-label)");
}

}  // namespace nnmark::testing::tf_serving_paths_tests
