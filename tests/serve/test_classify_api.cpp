// classify_api: which feature of a tf.Example is the image (named "image", or the only
// one, or in the context), the refusals, and the result's layout.
#include "nnmark/serve/classify_api.hpp"

#include "../support/errors.hpp"

#include <doctest/doctest.h>

namespace nnmark::testing::classify_api_tests {

const shape item{1, 2, 2};

std::vector<float> pixels(std::string_view body) {
    const tensor<float> images = parse_classify_request(body, item);
    return {images.span().begin(), images.span().end()};
}

std::string message(std::string_view body, const predict_limits& limits = {}) {
    return error_message<format_error>([&] { (void)parse_classify_request(body, item, limits); });
}

TEST_CASE("serve classify: the image is the feature \"image\", the only feature, or in the context") {
    const std::vector<float> image{0.0f, 51.0f / 255.0f, 1.0f, 0.5f};
    CHECK(pixels(R"({"examples": [{"image": [0, 0.2, 1, 0.5]}]})") == std::vector<float>{0.0f, 0.2f, 1.0f, 0.5f});
    CHECK(pixels(R"({"examples": [{"x": [0, 51, 255, 127.5]}]})") == image);
    CHECK(pixels(R"({"examples": [{"caption": "sea", "image": [0, 51, 255, 127.5]}]})") == image);
    CHECK(pixels(R"({"context": {"image": [0, 51, 255, 127.5]}, "examples": [{}, {"caption": "sea"}]})").size() == 8);
    CHECK(pixels(R"({"context": {"x": [0, 51, 255, 127.5]}, "examples": [{}]})") == image);
    CHECK(pixels(R"({"signature_name": "serving_default", "examples": [{"image": [[0, 51], [255, 127.5]]}]})") ==
          image);
}

TEST_CASE("serve classify: refusals name the example and what was expected") {
    CHECK(message(R"({"examples": [{"a": [0, 0, 0, 0], "b": [0, 0, 0, 0]}]})") ==
          "request.examples[0]: expected a feature \"image\" or a single feature, found 2: \"a\", \"b\"");
    CHECK(message(R"({"context": {"a": [0, 0, 0, 0]}, "examples": [{"b": [0, 0, 0, 0]}]})") ==
          "request.examples[0]: expected a feature \"image\" or a single feature, found 2: \"b\"");
    CHECK(message(R"({"context": {"image": [0, 0, 0, 0]}, "examples": [{"image": [0, 0, 0, 0]}]})") ==
          "request.examples[0].image: expected the feature in the examples or in request.context, found it in both");
    CHECK(message(R"({"examples": [[0, 0, 0, 0]]})") ==
          "request.examples[0]: expected a tf.Example as an object of features, found an array");
    CHECK(message(R"({"context": [], "examples": [{"image": [0, 0, 0, 0]}]})") ==
          "request.context: expected a tf.Example as an object of features, found an array");
    CHECK(message(R"({"examples": []})") == "request.examples: expected at least one example, found an empty array");
    CHECK(message(R"({"instances": []})") == "request: unexpected key \"instances\" (allowed: \"examples\", \"context\", "
                                              "\"signature_name\")");
    CHECK(message(R"({"examples": [{"image": [0, 0, 0]}]})").starts_with(
        "request.examples[0].image: expected an image as nested arrays [2][2][1] (HWC)"));
    CHECK(message(R"({"signature_name": "scores", "examples": [{"image": [0, 0, 0, 0]}]})") ==
          "request.signature_name: expected \"serving_default\" or \"classification\" (this model's classify "
          "signature), found \"scores\"");
    CHECK(error_message<limit_error>([] {
              (void)parse_classify_request(R"({"examples": [{"i": [0, 0, 0, 0]}, {"i": [0, 0, 0, 0]}]})", item,
                                           predict_limits{1});
          }) == "request.examples: 2 examples, more than the limit of 1 per request");
}

TEST_CASE("serve classify: a bytes feature may be a list of one {\"b64\": ...}") {
    CHECK(contains(message(R"({"examples": [{"image": [{"b64": "Zm9vYmFy"}]}]})"),
                   "request.examples[0].image[0].b64: expected a PNG or JPEG file, found 6 bytes"));
    CHECK(contains(message(R"({"examples": [{"image": {"b64": "Zm9vYmFy"}}]})"),
                   "request.examples[0].image.b64: expected a PNG or JPEG file, found 6 bytes"));
}

TEST_CASE("serve classify: the result lists every class with its score, a non-finite one as null") {
    tensor<float> probabilities(shape{2, 3});
    const float values[] = {0.25f, 0.5f, 0.25f, 1.0f, NAN, 0.0f};
    std::copy(std::begin(values), std::end(values), probabilities.data());
    CHECK(format_classifications(probabilities) ==
          R"({"result":[[["0",0.25],["1",0.5],["2",0.25]],[["0",1.0],["1",null],["2",0.0]]]})");
}

}  // namespace nnmark::testing::classify_api_tests
