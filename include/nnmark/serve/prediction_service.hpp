// prediction_service: what a prediction server does with a request, without the HTTP.
//
// The tool's `nnmark serve` routes POST /v1/models/NAME:predict bodies to predict() and
// GET /v1/models/NAME to status_body(); everything that decides what a request gets
// back lives here, so it is tested without sockets.
//
// predict() answers 200 with the predictions (serve/predict_response.hpp), 400 with
// {"error": ...} for a body that is not a valid request for this model
// (serve/predict_request.hpp), 413 for one over the limits, 500 when DAWN's registry
// cannot record an altered answer. It never throws an
// nnmark::error. Thread safety: the model is only read (sequential::infer is const),
// so any number of threads may call predict() at once, each with its own buffers.
//
// With a dawn_layer (DAWN, Szyller et al., ACM MM 2021), the model's answers pass
// through serve/dawn_answers.hpp's keyed decision before they are written: a small
// fraction of (client, input) pairs gets a wrong label (and scores swapped to agree
// with it), each recorded in serve/dawn_registry.hpp before the answer leaves.
//
// With an evasion_policy (attacks/evading_service.hpp), the service is a thief's: queries
// its detectors flag (or where its second opinion disagrees) get another answer, so the
// owner can test a key against an evading API end to end with `verify --url`.
#pragma once

#include "nnmark/attacks/evading_service.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/serve/dawn_answers.hpp"
#include "nnmark/serve/dawn_registry.hpp"
#include "nnmark/serve/predict_request.hpp"
#include "nnmark/serve/predict_response.hpp"

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
                       std::optional<dawn_layer> dawn = std::nullopt, const evasion_policy* evasion = nullptr)
        : model_(model), name_(std::move(name)), limits_(limits), dawn_(dawn), evasion_(evasion) {
        if (model.input_item().rank() != 3)
            throw shape_error("serve: a served model takes [C, H, W] images, this one takes " +
                              model.input_item().str());
    }

    const std::string& name() const { return name_; }
    const predict_limits& limits() const { return limits_; }

    // `client` names who asks (DAWN decides per client and input): an address or a header.
    service_reply predict(std::string_view body, service_buffers& buffers, std::string_view client = {}) const {
        try {
            const predict_request request = parse_predict_request(body, model_.input_item(), limits_);
            model_.infer(request.images, buffers.logits, buffers.inference);
            std::vector<int> labels = argmax_rows(buffers.logits);
            if (request.scores) softmax(buffers.logits, buffers.probabilities);
            tensor<float>* scores = request.scores ? &buffers.probabilities : nullptr;
            if (evasion_) evasion_->answer_batch(request.images, buffers.logits, labels, scores, buffers.evasion);
            if (dawn_) alter_answers(request.images, client, labels, scores);
            return {200, format_predictions(labels, scores)};
        } catch (const limit_error& e) {
            return {413, error_body(e.what())};
        } catch (const io_error& e) {  // the DAWN registry could not record: no answer leaves unrecorded
            return {500, error_body(e.what())};
        } catch (const error& e) {
            return {400, error_body(e.what())};
        }
    }

    // TensorFlow Serving's model status, and what a client needs to know to query it.
    std::string status_body() const {
        json status = json::object();
        status.set("error_code", "OK");
        status.set("error_message", "");
        json version = json::object();
        version.set("version", "1");
        version.set("state", "AVAILABLE");
        version.set("status", std::move(status));
        json versions = json::array();
        versions.push_back(std::move(version));
        json input_shape = json::array();
        for (int axis = 0; axis < model_.input_item().rank(); ++axis) input_shape.push_back(model_.input_item()[axis]);
        json details = json::object();
        details.set("name", name_);
        details.set("input_shape", std::move(input_shape));
        details.set("classes", model_.output_item().count());
        details.set("max_instances", limits_.max_instances);
        json body = json::object();
        body.set("model_version_status", std::move(versions));
        body.set("nnmark", std::move(details));
        return body.dump();
    }

private:
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
};

}  // namespace nnmark
