// prediction_service: what a prediction server does with a request, without the HTTP.
//
// The tool's `nnmark serve` hands every TensorFlow Serving REST URL
// (serve/tf_serving_paths.hpp) here: refuse() decides from the path and method alone,
// before a body is read; get() answers the Model status and Model Metadata APIs, post()
// the Predict and Classify APIs. Everything that decides what a request gets back lives
// here, so it is tested without sockets.
//
// refuse() gives 405 for a method the URL does not take, 404 for another model or
// version, 400 for an unknown version label (serve/tf_serving_paths.hpp) and for
// :regress, since a classifier has no regression signature (TF Serving answers a missing
// signature with InvalidArgument, 400). predict() and classify() answer 200 with the
// predictions (serve/predict_response.hpp) or the classify result
// (serve/classify_api.hpp), 400 with {"error": ...} for a body that is not a valid request
// for this model (serve/predict_request.hpp), 413 for one over the limits, 500 when
// DAWN's registry cannot record an altered answer. None throws an nnmark::error.
// Thread safety: the model is only read (sequential::infer is const), so any number of
// threads may call these at once, each with its own buffers.
//
// With a dawn_layer (DAWN, Szyller et al., ACM MM 2021), the model's answers pass
// through serve/dawn_answers.hpp's keyed decision before they are written: a small
// fraction of (client, input) pairs gets a wrong label (and scores swapped to agree
// with it), each recorded in serve/dawn_registry.hpp before the answer leaves.
//
// With an evasion_policy (attacks/evading_service.hpp), the service is a thief's: queries
// its detectors flag (or where its second opinion disagrees) get another answer, so the
// owner can test a key against an evading API end to end with `verify --url`.
//
// Both apply to :classify as to :predict: one answer() computes every reply, so neither
// API is a way around them.
#pragma once

#include "nnmark/attacks/evading_service.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/serve/classify_api.hpp"
#include "nnmark/serve/dawn_answers.hpp"
#include "nnmark/serve/dawn_registry.hpp"
#include "nnmark/serve/predict_request.hpp"
#include "nnmark/serve/model_metadata.hpp"
#include "nnmark/serve/predict_response.hpp"
#include "nnmark/serve/tf_serving_paths.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nnmark {

struct service_reply {
    int status = 200;  // HTTP status
    std::string body;  // JSON
};

// A model's per-thread scratch while it answers requests.
struct service_buffers {
    inference_buffers<float> inference;
    tensor<float> logits, probabilities;
    evasion_buffers evasion;
};

// DAWN's part of a service: both must outlive it.
struct dawn_layer {
    const dawn_answers& answers;
    dawn_registry& registry;
};

class prediction_service {
public:
    // `model` (and `dawn`'s parts, and `evasion`) must outlive the service.
    prediction_service(const sequential<float>& model, std::string name, predict_limits limits,
                       std::optional<dawn_layer> dawn = std::nullopt, const evasion_policy* evasion = nullptr,
                       served_versions versions = {})
        : model_(model), name_(std::move(name)), limits_(limits), dawn_(dawn), evasion_(evasion),
          versions_(std::move(versions)) {
        if (model.input_item().rank() != 3)
            throw shape_error("serve: a served model takes [C, H, W] images, this one takes " +
                              model.input_item().str());
    }

    const std::string& name() const { return name_; }
    const predict_limits& limits() const { return limits_; }
    const served_versions& versions() const { return versions_; }

    // The refusal of a `method` request for `path`, or nothing when this service answers it.
    std::optional<service_reply> refuse(const model_path& path, std::string_view method) const {
        if (!allows_method(path.verb, method))
            return service_reply{405, error_body("method " + std::string(method) + " is not allowed on " + path.str() +
                                                 "; it takes " + std::string(allowed_methods(path.verb)))};
        if (const auto refusal = servable_refusal_of(path, name_, versions_))
            return service_reply{refusal->status, error_body(refusal->message)};
        if (path.verb == model_verb::regress)
            return service_reply{400, error_body("this model is a classifier with no regression signature (method "
                                                 "tensorflow/serving/regress); it answers :predict and :classify")};
        return std::nullopt;
    }

    // A GET (or HEAD) of `path`: the model's status or metadata.
    service_reply get(const model_path& path) const {
        if (auto refusal = refuse(path, "GET")) return *refusal;
        return {200, path.verb == model_verb::metadata ? metadata_body() : status_body()};
    }

    // A POST of `body` to `path`: a predict or classify request.
    service_reply post(const model_path& path, std::string_view body, service_buffers& buffers,
                       std::string_view client = {}) const {
        if (auto refusal = refuse(path, "POST")) return *refusal;
        return path.verb == model_verb::classify ? classify(body, buffers, client) : predict(body, buffers, client);
    }

    // `client` names who asks (DAWN decides per client and input): an address or a header.
    service_reply predict(std::string_view body, service_buffers& buffers, std::string_view client = {}) const {
        return replying([&] {
            const predict_request request = parse_predict_request(body, model_.input_item(), limits_);
            const answers a = answer(request.images, request.scores, buffers, client);
            return format_predictions(a.labels, a.scores, request.format);
        });
    }

    service_reply classify(std::string_view body, service_buffers& buffers, std::string_view client = {}) const {
        return replying([&] {
            const tensor<float> images = parse_classify_request(body, model_.input_item(), limits_);
            return format_classifications(*answer(images, true, buffers, client).scores);
        });
    }

    // TensorFlow Serving's model status, and what a client needs to know to query it.
    std::string status_body() const {
        json status = json::object();
        status["error_code"] = "OK";
        status["error_message"] = "";
        json version = json::object();
        version["version"] = std::to_string(versions_.version);
        version["state"] = "AVAILABLE";
        version["status"] = std::move(status);
        json versions = json::array();
        versions.push_back(std::move(version));
        json input_shape = json::array();
        for (int axis = 0; axis < model_.input_item().rank(); ++axis) input_shape.push_back(model_.input_item()[axis]);
        json details = json::object();
        details["name"] = name_;
        details["input_shape"] = std::move(input_shape);
        details["classes"] = model_.output_item().count();
        details["max_instances"] = limits_.max_instances;
        json body = json::object();
        body["model_version_status"] = std::move(versions);
        body["nnmark"] = std::move(details);
        return dump_json(body);
    }

    // The Model Metadata API's answer (serve/model_metadata.hpp).
    std::string metadata_body() const {
        return model_metadata_body(name_, versions_.version, model_.input_item(), model_.output_item().count());
    }

private:
    // The model's labels for `images`, and their softmax scores when `scores` (in
    // `buffers`), as evasion and DAWN leave them.
    struct answers {
        std::vector<int> labels;
        tensor<float>* scores;
    };

    answers answer(const tensor<float>& images, bool scores, service_buffers& buffers, std::string_view client) const {
        model_.infer(images, buffers.logits, buffers.inference);
        answers a{argmax_rows(buffers.logits), scores ? &buffers.probabilities : nullptr};
        if (scores) softmax(buffers.logits, buffers.probabilities);
        if (evasion_) evasion_->answer_batch(images, buffers.logits, a.labels, a.scores, buffers.evasion);
        if (dawn_) alter_answers(images, client, a.labels, a.scores);
        return a;
    }

    // 200 with the body `write` returns, or the status of the error it throws.
    template <class Write>
    static service_reply replying(Write&& write) {
        try {
            return {200, write()};
        } catch (const limit_error& e) {
            return {413, error_body(e.what())};
        } catch (const io_error& e) {  // the DAWN registry could not record: no answer leaves unrecorded
            return {500, error_body(e.what())};
        } catch (const error& e) {
            return {400, error_body(e.what())};
        }
    }

    // DAWN's decision for each instance; altered ones are recorded, then answered.
    void alter_answers(const tensor<float>& images, std::string_view client, std::vector<int>& labels,
                       tensor<float>* scores) const {
        const int classes = static_cast<int>(model_.output_item().count());
        const shape& input = model_.input_item();
        for (std::size_t i = 0; i < labels.size(); ++i) {
            const auto item = static_cast<index_t>(i);
            const std::span<const float> image = images.item(item);
            const dawn_decision decision = dawn_->answers.decide(client, image, labels[i], classes);
            if (!decision.altered) continue;
            dawn_record record{std::string(client), {input[0], input[1], input[2]},
                               {image.begin(), image.end()}, classes, labels[i], decision.label,
                               dawn_registry::now_ms()};
            dawn_->registry.record(record, decision.digest);
            if (scores) swap_scores(scores->item(item), labels[i], decision.label);
            labels[i] = decision.label;
        }
    }

    const sequential<float>& model_;
    std::string name_;
    predict_limits limits_;
    std::optional<dawn_layer> dawn_;
    const evasion_policy* evasion_;
    served_versions versions_;
};

}  // namespace nnmark
