// predict_response: what a server answers, and how a client reads answers of other layouts.
#include "nnmark/serve/predict_response.hpp"

#include "../support/errors.hpp"

#include <doctest/doctest.h>

namespace nnmark::testing::predict_response_tests {

tensor<float> two_rows() {
    tensor<float> logits(shape{2, 3});
    const float values[] = {0.0f, 2.0f, 1.0f, 5.0f, 5.0f, -1.0f};  // argmax 1; a tie, the first (0)
    std::copy(std::begin(values), std::end(values), logits.data());
    return logits;
}

TEST_CASE("serve response: labels, and softmax scores when asked") {
    CHECK(format_predictions(two_rows(), false) == R"({"predictions":[{"label":1},{"label":0}]})");
    const json scored = parse_json(format_predictions(two_rows(), true), "answer");
    const json_view first = json_view(scored, "answer")["predictions"].elements()[0];
    CHECK(first["label"].as_int() == 1);
    double sum = 0;
    for (const json_view& p : first["scores"].elements()) sum += p.as_double();
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(first["scores"].elements()[1].as_double() == doctest::Approx(0.6652409).epsilon(1e-6));
}

TEST_CASE("serve response: a columnar request is answered in columns, each output named") {
    const std::vector<int> labels{1, 0};
    CHECK(format_predictions(labels, nullptr, request_format::columns) == R"({"outputs":{"label":[1,0]}})");
    tensor<float> probabilities(shape{2, 2});
    const float values[] = {0.25f, 0.75f, NAN, 0.5f};
    std::copy(std::begin(values), std::end(values), probabilities.data());
    CHECK(format_predictions(labels, &probabilities, request_format::columns) ==
          R"({"outputs":{"label":[1,0],"scores":[[0.25,0.75],[null,0.5]]}})");
    CHECK(format_predictions(labels, &probabilities) ==
          R"({"predictions":[{"label":1,"scores":[0.25,0.75]},{"label":0,"scores":[null,0.5]}]})");
}

TEST_CASE("serve response: error bodies carry any message as valid JSON") {
    CHECK(error_body("bad \"thing\"") == R"({"error":"bad \"thing\""})");
    CHECK(error_body(std::string("bad \xff byte")) == R"({"error":"bad ? byte"})");
}

TEST_CASE("serve response: a client reads labels from nnmark's and other layouts") {
    const std::string nnmark_answer = format_predictions(two_rows(), true);
    CHECK(read_prediction_labels(nnmark_answer, 2, {}, 3) == std::vector<int>{1, 0});
    CHECK(read_prediction_labels(nnmark_answer, 2, {"scores", true}, 3) == std::vector<int>{1, 0});
    // TensorFlow Serving with a Keras classifier: bare score vectors.
    CHECK(read_prediction_labels(R"({"predictions": [[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]]})", 2, {"", true}, 3) ==
          std::vector<int>{2, 0});
    CHECK(read_prediction_labels(R"({"predictions": [{"class": 2}]})", 1, {"class", false}, 3) == std::vector<int>{2});
    CHECK(read_prediction_labels(R"({"predictions": [1, 2]})", 2, {"", false}, 3) == std::vector<int>{1, 2});
}

TEST_CASE("serve response: answers of the wrong layout or count are refused with their path") {
    const auto message = [](std::string_view body, const response_layout& layout) {
        return error_message<format_error>([&] { read_prediction_labels(body, 2, layout, 3); });
    };
    CHECK(contains(message(R"({"predictions": [{"label": 1}]})", {}),
                   "response.predictions: expected 2 predictions (one per image sent), found 1"));
    CHECK(contains(message(R"({"predictions": [{"label": 1}, {"class": 1}]})", {}),
                   "response.predictions[1]: missing key \"label\""));
    CHECK(contains(message(R"({"predictions": [{"label": 1}, {"label": 3}]})", {}),
                   "response.predictions[1].label: expected a class in 0..2, found 3"));
    CHECK(contains(message(R"({"predictions": [[0.1], []]})", {"", true}),
                   "response.predictions[1]: expected a vector of scores, found an empty array"));
    CHECK(contains(message(R"({"error": "busy"})", {}), "response: missing key \"predictions\""));
}

}  // namespace nnmark::testing::predict_response_tests
