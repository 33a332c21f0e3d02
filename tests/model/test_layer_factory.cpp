#include "nnmark/model/layer_factory.hpp"

#include "nnmark/model/paper_models.hpp"

#include "../support/files.hpp"
#include "../support/layers.hpp"
#include "../support/user_layer.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace nnmark;
using testing::error_message;

namespace {

std::string build_error(const std::string& text) {
    return error_message([&] { build_from_architecture<float>(text, "a.json"); });
}

// `original` written as JSON and read back: the same JSON, output shape and parameters
// (names and shapes).
void check_round_trip(const sequential<float>& original) {
    const std::string text = architecture_json(original);
    const sequential<float> rebuilt = build_from_architecture<float>(text, "net.json");
    CHECK(architecture_json(rebuilt) == text);
    CHECK(rebuilt.output_item() == original.output_item());
    const auto a = original.named_parameters();
    const auto b = rebuilt.named_parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].name == b[i].name);
        CHECK(a[i].spec.shape == b[i].spec.shape);
    }
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
        {"global_avgpool2d", {}},
        {"residual", {{"layers", std::vector<layer_description>{{"conv2d", {{"out_channels", std::int64_t{4}},
                                                                           {"kernel", std::int64_t{3}},
                                                                           {"stride", std::int64_t{1}},
                                                                           {"padding", std::string("same")}}},
                                                                {"relu", {}}}}}},
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
    // Registered kinds follow the built-in ones (other tests register theirs).
    CHECK(error_message([] { make_layer<float>("conv3d", {}); }).starts_with(
        "unknown layer kind \"conv3d\" (known: conv2d, dense, relu, maxpool2d, dropout, flatten, batchnorm, "
        "global_avgpool2d, residual"));
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
        check_round_trip(original);
        // In double precision too.
        const std::string text = architecture_json(original);
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
          "a.json: invalid JSON at byte 1: syntax error while parsing object key - unexpected end of input; expected "
          "string literal");
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
    CHECK(build_error(with_layers(R"([{"kind":"relu"},{"kind":"conv3d"}])")).starts_with(
        "a.json: architecture.layers[1]: unknown layer kind \"conv3d\" (known: conv2d, dense, relu, maxpool2d, dropout, "
        "flatten, batchnorm, global_avgpool2d, residual"));
    CHECK(build_error(with_layers(R"([{"kind":"relu"},{"kind":"flatten"},{"kind":"dense"}])")) ==
          "a.json: architecture.layers[2]: dense: missing key \"out_features\"");
    CHECK(build_error(with_layers(R"([{"kind":"flatten"},{"kind":"dense","out_features":"3"}])")) ==
          "a.json: architecture.layers[1]: dense: key \"out_features\": expected an integer, found a string");
    CHECK(build_error(with_layers(R"([{"kind":"flatten"},{"kind":"dense","out_features":{"n":3}}])")) ==
          "a.json: architecture.layers[1].out_features: expected an integer, a number, a string or an array of layers, "
          "found an object");
    CHECK(build_error(with_layers(R"([{"kind":"flatten"},{"kind":"dense","out_features":[]}])")) ==
          "a.json: architecture.layers[1]: dense: key \"out_features\": expected an integer, found a list of layers");
    CHECK(build_error(with_layers(R"([{"kind":"dropout","rate":1.5}])")) ==
          "a.json: architecture.layers[0]: dropout: rate must be in [0, 1), got 1.500000");
    CHECK(build_error(with_layers(R"({"kind":"relu"})")) == "a.json: architecture.layers: expected an array, found an object");
    // A layer that cannot take its input shape stays a shape_error, with the source in front.
    CHECK_THROWS_AS(build_from_architecture<float>(with_layers(R"([{"kind":"dense","out_features":3}])"), "a.json"),
                    shape_error);
    CHECK(build_error(with_layers(R"([{"kind":"dense","out_features":3}])")).rfind("a.json: layer 0 (dense): ", 0) == 0);
}

namespace {

// conv -> relu -> residual{conv -> batchnorm -> relu -> conv} -> global average -> dense.
sequential<float> small_residual_net() {
    sequential<float> m(shape{1, 6, 6});
    m.emplace<conv2d>(3, 3, 1, padding::same);
    m.emplace<relu>();
    auto block = std::make_unique<residual<float>>();
    block->emplace<conv2d>(3, 3, 1, padding::same);
    block->emplace<batchnorm>();
    block->emplace<relu>();
    block->emplace<conv2d>(3, 3, 1, padding::same);
    m.add(std::move(block));
    m.emplace<global_avgpool2d>();
    m.emplace<dense>(2);
    return m;
}

}  // namespace

TEST_CASE("architecture_json: a residual block nests its layers in the documented form") {
    CHECK(architecture_json(small_residual_net()) ==
          R"({"format":"nnmark.sequential","version":1,"input":[1,6,6],"layers":[)"
          R"({"kind":"conv2d","out_channels":3,"kernel":3,"stride":1,"padding":"same"},{"kind":"relu"},)"
          R"({"kind":"residual","layers":[{"kind":"conv2d","out_channels":3,"kernel":3,"stride":1,"padding":"same"},)"
          R"({"kind":"batchnorm","momentum":0.1,"eps":1e-05},{"kind":"relu"},)"
          R"({"kind":"conv2d","out_channels":3,"kernel":3,"stride":1,"padding":"same"}]},)"
          R"({"kind":"global_avgpool2d"},{"kind":"dense","out_features":2}]})");
}

TEST_CASE("build_from_architecture: round trip of a residual network, blocks inside blocks included") {
    sequential<float> original = small_residual_net();
    auto outer = std::make_unique<residual<float>>();
    auto inner = std::make_unique<residual<float>>();
    inner->emplace<dense>(2);
    outer->add(std::move(inner));
    outer->emplace<relu>();
    original.add(std::move(outer));
    check_round_trip(original);
    const auto a = original.named_parameters();
    CHECK(a[2].name == "2.0.weight");
    CHECK(a[6].name == "2.1.running_mean");
    CHECK(a.back().name == "5.0.0.bias");
    // The replicas of data-parallel training are made the same way.
    CHECK(architecture_json(same_architecture(original)) == architecture_json(original));
}

TEST_CASE("build_from_architecture: errors inside a residual block name the inner layer") {
    CHECK(build_error(with_layers(R"([{"kind":"residual","layers":[{"kind":"relu"},{"kind":"conv3d"}]}])"))
              .starts_with("a.json: architecture.layers[0]: residual: layers[1]: unknown layer kind \"conv3d\""));
    CHECK(build_error(with_layers(R"([{"kind":"residual","layers":[{"kind":"dense"}]}])")) ==
          "a.json: architecture.layers[0]: residual: layers[0]: dense: missing key \"out_features\"");
    CHECK(build_error(with_layers(R"([{"kind":"residual","layers":[{"out_features":3}]}])")) ==
          "a.json: architecture.layers[0].layers[0]: missing key \"kind\"");
    CHECK(build_error(with_layers(R"([{"kind":"residual","layers":3}])")) ==
          "a.json: architecture.layers[0]: residual: key \"layers\": expected a list of layers, found an integer");
    CHECK(build_error(with_layers(R"([{"kind":"residual"}])")) ==
          "a.json: architecture.layers[0]: residual: missing key \"layers\"");
    const std::string widening =
        with_layers(R"([{"kind":"residual","layers":[{"kind":"conv2d","out_channels":2,"kernel":1,"stride":1,)"
                    R"("padding":"valid"}]}])");
    CHECK_THROWS_AS(build_from_architecture<float>(widening, "a.json"), shape_error);
    CHECK(build_error(widening) == "a.json: layer 0 (residual): residual: the inner layers turn items [1, 8, 8] into "
                                   "[2, 8, 8]; the skip connection adds the input, so they must keep its shape");
}

TEST_CASE("register_layer: a user's layer is made, written and read back like a built-in one") {
    testing::register_test_layer<float>();
    const auto made = make_layer<float>("test_channel_scale", {{"init", 0.5}});
    CHECK(made->kind() == "test_channel_scale");
    CHECK(made->config() == layer_config{{"init", 0.5}});
    CHECK(error_message([] { make_layer<float>("test_channel_scale", {}); }) ==
          "test_channel_scale: missing key \"init\"");
    CHECK(error_message([] { make_layer<float>("conv3d", {}); }).ends_with(", test_channel_scale)"));
    // Registered for float only: a double model does not know it.
    CHECK(error_message([] { make_layer<double>("test_channel_scale", {{"init", 0.5}}); })
              .starts_with("unknown layer kind \"test_channel_scale\""));

    const std::string text = with_layers(
        R"([{"kind":"residual","layers":[{"kind":"test_channel_scale","init":2}]},{"kind":"test_channel_scale","init":0.5}])");
    const sequential<float> m = build_from_architecture<float>(text, "user.json");
    CHECK(m.named_parameters()[0].name == "0.0.weight");
    CHECK(m.named_parameters()[1].name == "1.weight");
    CHECK(build_from_architecture<float>(architecture_json(m), "again.json").size() == 2);
}

TEST_CASE("register_layer: refuses a kind that is known, an empty name and no builder") {
    testing::register_test_layer<float>();
    const layer_builder<float> build = [](config_reader&) { return std::make_unique<relu<float>>(); };
    CHECK(error_message([&] { register_layer<float>("conv2d", build); }) ==
          "register_layer: layer kind \"conv2d\" is already registered");
    CHECK(error_message([&] { register_layer<float>("test_channel_scale", build); }) ==
          "register_layer: layer kind \"test_channel_scale\" is already registered");
    CHECK(error_message([&] { register_layer<float>("", build); }) ==
          "register_layer: expected a layer kind name, got an empty one");
    CHECK(error_message([] { register_layer<float>("nothing", {}); }) ==
          "register_layer: layer kind \"nothing\" has no builder");
    CHECK(make_layer<float>("conv2d", {{"out_channels", std::int64_t{1}}, {"kernel", std::int64_t{1}},
                                       {"stride", std::int64_t{1}}, {"padding", std::string("valid")}})
              ->kind() == "conv2d");
}
