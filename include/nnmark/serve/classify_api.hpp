// classify_api: TensorFlow Serving's Classify API for an image classifier: a request's
// examples read into images, and the result written (api_rest.md, "Classify and
// Regress API").
//
// Request ("Request format"):
//     {"signature_name": S, "context": {F: V, ...}, "examples": [{F: V, ...}, ...]}
// Each example is a tf.Example written as an object of features F, each a value or a
// list of values V. The model reads one feature, its image: the feature named "image"
// if there is one (the others are ignored, as tf.Example parsing reads only the features
// a model declares), else the only feature. Its value is an image as predict_request.hpp
// reads one: usually a flat list of C*H*W numbers in HWC order (a float_list or
// int64_list feature), or {"b64": <PNG>} for a bytes feature, also as a list of one.
// "context" is optional and shared by every example, so the image may be there; a
// feature in both is refused, as the doc says context features "MUST NOT appear in
// examples". S is optional: "serving_default" or "classification" (the metadata's
// classify signature, serve/model_metadata.hpp). Messages and limits are those of
// predict_request.hpp, with "examples" for images.
//
// Result ("Response format"): for each example, every class with its score in class
// order: {"result": [[["0", p0], ["1", p1], ...], ...]}. The label is the class index as
// text, as a TensorFlow estimator without a label vocabulary names its classes; the score
// is the softmax probability, null when it is not finite (JSON has no NaN).
#pragma once

#include "nnmark/core/json.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/serve/predict_request.hpp"
#include "nnmark/serve/predict_response.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace nnmark {

namespace detail::classify {

inline void check_signature(const json_view& signature) {
    const std::string& name = signature.as_string();
    if (name != "serving_default" && name != "classification")
        signature.fail("expected \"serving_default\" or \"classification\" (this model's classify signature), found \"" +
                       name + "\"");
}

inline const json::object_t& features_of(const json_view& features) {
    const json::object_t* object = features.value().get_ptr<const json::object_t*>();
    if (!object) features.fail("expected a tf.Example as an object of features, found " + describe_json(features.value()));
    return *object;
}

// A bytes feature written as a list of one value, [{"b64": ...}], is that value.
inline json_view unwrap_single(const json_view& feature) {
    const json::array_t* list = feature.value().get_ptr<const json::array_t*>();
    if (list && list->size() == 1 && list->front().is_object()) return feature.elements().front();
    return feature;
}

// The image feature of `example`, which may be in the shared `context` instead.
inline json_view image_feature(const json_view& example, const std::optional<json_view>& context) {
    const json::object_t& own = features_of(example);
    const std::optional<json_view> named = example.find("image"), shared = context ? context->find("image") : std::nullopt;
    if (named && shared) named->fail("expected the feature in the examples or in request.context, found it in both");
    if (named || shared) return unwrap_single(named ? *named : *shared);
    const std::size_t count = own.size() + (context ? features_of(*context).size() : 0);
    if (count != 1)
        example.fail("expected a feature \"image\" or a single feature, found " + std::to_string(count) +
                     (own.empty() ? "" : ": " + predict::key_list(own)));
    return unwrap_single(own.empty() ? context->members().front().second : example.members().front().second);
}

}  // namespace detail::classify

// The images of a classify request for a model taking [C, H, W] items: [N, C, H, W].
inline tensor<float> parse_classify_request(std::string_view body, const shape& item,
                                            const predict_limits& limits = {}) {
    using namespace detail::classify;
    detail::predict::check_image_item(item, "parse_classify_request");
    const json doc = parse_json(body, "request");
    const json_view root(doc, "request");
    root.expect_only_keys({"examples", "context", "signature_name"});
    if (const auto signature = root.find("signature_name")) check_signature(*signature);
    const std::optional<json_view> context = root.find("context");
    if (context) features_of(*context);
    return detail::predict::read_batch(root["examples"], item, limits, "example",
                                       [&](const json_view& example) { return image_feature(example, context); });
}

// The result answering `probabilities` [N, K]: every class with its score, per example.
inline std::string format_classifications(const tensor<float>& probabilities) {
    json result = json::array();
    for (index_t i = 0; i < probabilities.batch(); ++i) {
        const json scores = detail::predict::score_row(probabilities.item(i));
        json classes = json::array();
        for (std::size_t k = 0; k < scores.size(); ++k) {
            json pair = json::array();
            pair.push_back(std::to_string(k));
            pair.push_back(scores[k]);
            classes.push_back(std::move(pair));
        }
        result.push_back(std::move(classes));
    }
    json body = json::object();
    body["result"] = std::move(result);
    return dump_json(body);
}

}  // namespace nnmark
