#include "nnmark/model/layer_factory.hpp"

#include "nnmark/model/paper_models.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace nnmark;
using testing::error_message;

namespace {

std::string build_error(const std::string& text) {
    return error_message([&] { build_from_architecture<float>(text, "a.json"); });
}

// An architecture document with `layers` (a JSON array) and input [1, 8, 8].
std::string with_layers(const std::string& layers) {
    return R"({"format":"nnmark.sequential","version":1,"input":[1,8,8],"layers":)" + layers + "}";
}

}  // namespace

TEST_CASE("make_layer: every kind is built from the config it reports") {
    const std::vector<std::pair<std::string, layer_config>> cases = {
        {"conv2d", {{"out_channels", std::int64_t{4}}, {"kernel", std::int64_t{3}}, {"stride", std::int64_t{2}},
                    {"padding", std::string("same")}}},
        {"dense", {{"out_features", std::int64_t{10}}}},
        {"relu", {}},
        {"maxpool2d", {{"size", std::int64_t{2}}, {"stride", std::int64_t{1}}}},
        {"dropout", {{"rate", 0.25}}},
        {"flatten", {}},
        {"batchnorm", {{"momentum", 0.2}, {"eps", 1e-3}}},
    };
    for (const auto& [kind, config] : cases) {
        CAPTURE(kind);
        const auto l = make_layer<float>(kind, config);
        CHECK(l->kind() == kind);
        CHECK(l->config() == config);
    }
    // An integer where a real number is expected is accepted.
    CHECK(make_layer<double>("batchnorm", {{"momentum", std::int64_t{0}}, {"eps", 1e-5}})->config() ==
          layer_config{{"momentum", 0.0}, {"eps", 1e-5}});
}

TEST_CASE("make_layer: invalid kinds and configs are argument_errors saying what is wrong") {
    CHECK(error_message([] { make_layer<float>("conv3d", {}); }) ==
          "unknown layer kind \"conv3d\" (known: conv2d, dense, relu, maxpool2d, dropout, flatten, batchnorm)");
    CHECK(error_message([] { make_layer<float>("dense", {}); }) == "dense: missing key \"out_features\"");
    CHECK(error_message([] { make_layer<float>("conv2d", {{"kernel", std::int64_t{3}}}); }) ==
          "conv2d: missing key \"out_channels\"");
    CHECK(error_message([] { make_layer<float>("dense", {{"out_features", std::string("10")}}); }) ==
          "dense: key \"out_features\": expected an integer, found a string");
    CHECK(error_message([] { make_layer<float>("dense", {{"out_features", 10.5}}); }) ==
          "dense: key \"out_features\": expected an integer, found a non-integer number");
    CHECK(error_message([] { make_layer<float>("dropout", {{"rate", std::string("0.5")}}); }) ==
          "dropout: key \"rate\": expected a number, found a string");
    CHECK(error_message([] { make_layer<float>("dense", {{"out_features", std::int64_t{3}}, {"bias", std::int64_t{0}}}); }) ==
          "dense: unexpected key \"bias\" (allowed: \"out_features\")");
    CHECK(error_message([] { make_layer<float>("relu", {{"inplace", std::int64_t{1}}}); }) ==
          "relu: unexpected key \"inplace\" (this layer takes no keys)");
    CHECK(error_message([] {
              make_layer<float>("dense", {{"out_features", std::int64_t{3}}, {"out_features", std::int64_t{4}}});
          }) == "dense: key \"out_features\" given twice");
    // Values the layer itself refuses keep the layer's own message.
    CHECK_THROWS_AS(make_layer<float>("dropout", {{"rate", 1.0}}), argument_error);
    CHECK_THROWS_AS(make_layer<float>("conv2d", {{"out_channels", std::int64_t{4}},
                                                 {"kernel", std::int64_t{3}},
                                                 {"stride", std::int64_t{1}},
                                                 {"padding", std::string("full")}}),
                    argument_error);
}

TEST_CASE("architecture_json: the documented format, exactly") {
    sequential<float> m(shape{1, 6, 6});
    m.emplace<conv2d>(2, 3);
    m.emplace<batchnorm>();
    m.emplace<relu>();
    m.emplace<maxpool2d>(2);
    m.emplace<flatten>();
    m.emplace<dropout>(0.5);
    m.emplace<dense>(3);
    CHECK(architecture_json(m) ==
          R"({"format":"nnmark.sequential","version":1,"input":[1,6,6],"layers":[)"
          R"({"kind":"conv2d","out_channels":2,"kernel":3,"stride":1,"padding":"valid"},)"
          R"({"kind":"batchnorm","momentum":0.1,"eps":1e-05},{"kind":"relu"},{"kind":"maxpool2d","size":2,"stride":2},)"
          R"({"kind":"flatten"},{"kind":"dropout","rate":0.5},{"kind":"dense","out_features":3}]})");
}

TEST_CASE("build_from_architecture: round trip of the paper's networks") {
    for (const std::string& name : architecture_names()) {
        CAPTURE(name);
        const sequential<float> original = build_architecture<float>(name);
        const std::string text = architecture_json(original);
        const sequential<float> rebuilt = build_from_architecture<float>(text, name);
        CHECK(architecture_json(rebuilt) == text);
        CHECK(rebuilt.output_item() == original.output_item());
        const auto a = original.named_parameters();
        const auto b = rebuilt.named_parameters();
        REQUIRE(a.size() == b.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            CHECK(a[i].name == b[i].name);
            CHECK(a[i].spec.shape == b[i].spec.shape);
        }
        // In double precision too.
        CHECK(architecture_json(build_from_architecture<double>(text, name)) == text);
    }
}

TEST_CASE("build_from_architecture: accepts any member order and whitespace") {
    const auto m = build_from_architecture<float>(
        R"( { "layers" : [ {"stride":1, "kernel":3, "padding":"same", "kind":"conv2d", "out_channels":4},
                          {"kind":"flatten"}, {"out_features":2,"kind":"dense"} ],
              "input":[1,5,5], "version":1, "format":"nnmark.sequential" } )",
        "hand.json");
    CHECK(m.size() == 3);
    CHECK(m.output_item() == shape{2});
    CHECK(m.at(0).config()[3].second == config_value(std::string("same")));
}

TEST_CASE("build_from_architecture: errors name the source and the layer index") {
    CHECK(build_error("{") ==
          "a.json: invalid JSON at byte 1: expected a string key in the object starting at byte 0, found end of input");
    CHECK(build_error(R"({"format":"keras","version":1,"input":[1],"layers":[]})") ==
          "a.json: architecture.format: expected \"nnmark.sequential\", found \"keras\"");
    CHECK(build_error(R"({"format":"nnmark.sequential","version":2,"input":[1],"layers":[]})") ==
          "a.json: architecture.version: version 2 is not supported; this build reads version 1");
    CHECK(build_error(R"({"format":"nnmark.sequential","version":1,"layers":[]})") ==
          "a.json: architecture: missing key \"input\"");
    CHECK(build_error(R"({"format":"nnmark.sequential","version":1,"input":[1],"layers":[],"seed":3})") ==
          "a.json: architecture: unexpected key \"seed\" (allowed: \"format\", \"version\", \"input\", \"layers\")");
    CHECK(build_error(R"({"format":"nnmark.sequential","version":1,"input":[1,2,3,4,5],"layers":[]})") ==
          "a.json: architecture.input: expected 1 to 4 dimensions, found 5");
    CHECK(build_error(R"({"format":"nnmark.sequential","version":1,"input":[1,0],"layers":[]})") ==
          "a.json: architecture.input[1]: expected an integer >= 1, found 0");
    CHECK(build_error(with_layers(R"([{"kind":"relu"},{"out_features":3}])")) ==
          "a.json: architecture.layers[1]: missing key \"kind\"");
    CHECK(build_error(with_layers(R"([{"kind":"relu"},{"kind":"conv3d"}])")) ==
          "a.json: architecture.layers[1]: unknown layer kind \"conv3d\" (known: conv2d, dense, relu, maxpool2d, dropout, "
          "flatten, batchnorm)");
    CHECK(build_error(with_layers(R"([{"kind":"relu"},{"kind":"flatten"},{"kind":"dense"}])")) ==
          "a.json: architecture.layers[2]: dense: missing key \"out_features\"");
    CHECK(build_error(with_layers(R"([{"kind":"flatten"},{"kind":"dense","out_features":"3"}])")) ==
          "a.json: architecture.layers[1]: dense: key \"out_features\": expected an integer, found a string");
    CHECK(build_error(with_layers(R"([{"kind":"flatten"},{"kind":"dense","out_features":[3]}])")) ==
          "a.json: architecture.layers[1].out_features: expected an integer, a number or a string, found an array");
    CHECK(build_error(with_layers(R"([{"kind":"dropout","rate":1.5}])")) ==
          "a.json: architecture.layers[0]: dropout: rate must be in [0, 1), got 1.500000");
    CHECK(build_error(with_layers(R"({"kind":"relu"})")) == "a.json: architecture.layers: expected an array, found an object");
    // A layer that cannot take its input shape stays a shape_error, with the source in front.
    CHECK_THROWS_AS(build_from_architecture<float>(with_layers(R"([{"kind":"dense","out_features":3}])"), "a.json"),
                    shape_error);
    CHECK(build_error(with_layers(R"([{"kind":"dense","out_features":3}])")).rfind("a.json: layer 0 (dense): ", 0) == 0);
}
