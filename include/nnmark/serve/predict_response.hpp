// predict_response: the answer of a predict call, written by a server and read by a
// client, in TensorFlow Serving's REST formats.
//
// nnmark serve answers in the request's format (api_rest.md, Predict API, "Response
// format"), one prediction per instance, in request order:
//     {"predictions": [{"label": 3}, {"label": 7}]}                     row format
//     {"predictions": [{"label": 3, "scores": [p0, ..., pK-1]}]}        (signature "scores")
//     {"outputs": {"label": [3, 7]}}                                    columnar format
//     {"outputs": {"label": [3, 7], "scores": [[...], [...]]}}          (signature "scores")
// where label is the top-1 class (the first maximum, as argmax_rows) and scores the
// softmax probabilities; a score that is not finite (a broken model's NaN) is written
// null, since JSON has no NaN, and a client counts such a prediction as a non-finite
// output. Outputs are named even when there is one ("label"): TF Serving would omit the
// name of a lone output, but clients of nnmark, verify --url among them, read the field.
// Failures are {"error": "<message>"}, as TensorFlow Serving writes them.
//
// Other servers answer differently, so the client reads a prediction through a
// response_layout: the prediction itself or one of its fields (label_field) holds
// either a class index or a vector of scores, whose argmax is taken. TensorFlow
// Serving with a Keras classifier, for instance, answers bare score vectors:
// {label_field = "", scores = true}.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/layers/softmax_cross_entropy.hpp"
#include "nnmark/serve/predict_request.hpp"

#include <cmath>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

namespace detail::predict {

// A row of scores, a non-finite one as null.
inline json score_row(std::span<const float> row) {
    json scores = json::array();
    for (float p : row) {
        if (std::isfinite(p)) scores.push_back(static_cast<double>(p));
        else scores.push_back(nullptr);
    }
    return scores;
}

inline json prediction_rows(std::span<const int> labels, const tensor<float>* probabilities) {
    json predictions = json::array();
    for (std::size_t i = 0; i < labels.size(); ++i) {
        json prediction = json::object();
        prediction["label"] = labels[i];
        if (probabilities) prediction["scores"] = score_row(probabilities->item(static_cast<index_t>(i)));
        predictions.push_back(std::move(prediction));
    }
    return predictions;
}

inline json prediction_columns(std::span<const int> labels, const tensor<float>* probabilities) {
    json label = json::array(), scores = json::array();
    for (std::size_t i = 0; i < labels.size(); ++i) {
        label.push_back(labels[i]);
        if (probabilities) scores.push_back(score_row(probabilities->item(static_cast<index_t>(i))));
    }
    json outputs = json::object();
    outputs["label"] = std::move(label);
    if (probabilities) outputs["scores"] = std::move(scores);
    return outputs;
}

}  // namespace detail::predict

// The body answering `labels`, one per instance, with the rows of `probabilities`
// [N, K] as scores unless it is null, in `format`.
inline std::string format_predictions(std::span<const int> labels, const tensor<float>* probabilities,
                                      request_format format = request_format::rows) {
    json body = json::object();
    if (format == request_format::rows)
        body["predictions"] = detail::predict::prediction_rows(labels, probabilities);
    else
        body["outputs"] = detail::predict::prediction_columns(labels, probabilities);
    return dump_json(body);
}

// The body answering logits [N, K]: labels, and probabilities when `scores`.
inline std::string format_predictions(const tensor<float>& logits, bool scores) {
    tensor<float> probabilities;
    if (scores) softmax(logits, probabilities);
    return format_predictions(argmax_rows(logits), scores ? &probabilities : nullptr);
}

// {"error": message}. Never throws for the text: bytes that are not UTF-8 (a message
// may quote a request) become '?', as JSON can only carry UTF-8.
inline std::string error_body(std::string_view message) {
    std::string text;
    for (std::size_t i = 0; i < message.size();) {
        const std::size_t n = detail::json_text::utf8_sequence_length(message, i);
        if (n == 0) {
            text += '?';
            ++i;
        } else {
            text.append(message.substr(i, n));
            i += n;
        }
    }
    json body = json::object();
    body["error"] = std::move(text);
    return dump_json(body);
}

// Where a client finds the label in each prediction of an answer.
struct response_layout {
    std::string label_field = "label";  // "": the prediction itself
    bool scores = false;                // the value is a vector of scores: take its argmax
};

namespace detail::predict {

// The class index a score vector votes for: its first finite maximum (0 if none is
// finite). A null score, a non-finite one written as JSON can, sets `non_finite`.
// The scores are appended to `kept` (a null one as 0).
inline int argmax_of(const json_view& value, bool& non_finite, std::vector<float>& kept) {
    const std::vector<json_view> scores = value.elements();
    if (scores.empty()) value.fail("expected a vector of scores, found an empty array");
    int best = 0;
    double best_score = -INFINITY;
    for (std::size_t k = 0; k < scores.size(); ++k) {
        if (scores[k].value().is_null()) {
            non_finite = true;
            kept.push_back(0.0f);
            continue;
        }
        const double s = scores[k].as_double();
        kept.push_back(static_cast<float>(s));
        if (s > best_score) {
            best = static_cast<int>(k);
            best_score = s;
        }
    }
    return best;
}

inline int read_label(const json_view& prediction, const response_layout& layout, int classes, bool& non_finite,
                      std::vector<float>& scores) {
    const json_view value = layout.label_field.empty() ? prediction : prediction[layout.label_field];
    const std::int64_t label = layout.scores ? argmax_of(value, non_finite, scores) : value.as_int();
    if (label < 0 || label >= classes)
        value.fail("expected a class in 0.." + std::to_string(classes - 1) + ", found " + std::to_string(label));
    return static_cast<int>(label);
}

}  // namespace detail::predict

// What a client reads from an answer: the labels in order, and how many predictions
// carried a non-finite (null) score; that count is only known when scores were read.
struct read_predictions_result {
    std::vector<int> labels;
    index_t non_finite = 0;
    // layout.scores only: every prediction's score vector, row after row (a null as 0);
    // the soft targets of a thief who trains on them (attack extract --scores).
    std::vector<float> scores;
};

// The predictions of an answer to `expected` instances; format_error with the JSON path
// when the answer does not have the layout or the count.
inline read_predictions_result read_predictions(std::string_view body, index_t expected, const response_layout& layout,
                                                int classes) {
    const json doc = parse_json(body, "response");
    const json_view predictions = json_view(doc, "response")["predictions"];
    const std::vector<json_view> list = predictions.elements();
    if (static_cast<index_t>(list.size()) != expected)
        predictions.fail("expected " + std::to_string(expected) + " predictions (one per image sent), found " +
                         std::to_string(list.size()));
    read_predictions_result r;
    r.labels.reserve(list.size());
    for (const json_view& prediction : list) {
        bool non_finite = false;
        r.labels.push_back(detail::predict::read_label(prediction, layout, classes, non_finite, r.scores));
        r.non_finite += non_finite;
    }
    return r;
}

inline std::vector<int> read_prediction_labels(std::string_view body, index_t expected, const response_layout& layout,
                                               int classes) {
    return read_predictions(body, expected, layout, classes).labels;
}

}  // namespace nnmark
