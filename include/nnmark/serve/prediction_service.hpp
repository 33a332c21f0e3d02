// prediction_service: what a prediction server does with a request, without the HTTP.
//
// The tool's `nnmark serve` routes POST /v1/models/NAME:predict bodies to predict() and
// GET /v1/models/NAME to status_body(); everything that decides what a request gets
// back lives here, so it is tested without sockets.
//
// predict() answers 200 with the predictions (serve/predict_response.hpp), 400 with
// {"error": ...} for a body that is not a valid request for this model
// (serve/predict_request.hpp), 413 for one over the limits. It never throws an
// nnmark::error. Thread safety: the model is only read (sequential::infer is const),
// so any number of threads may call predict() at once, each with its own buffers.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/serve/predict_request.hpp"
#include "nnmark/serve/predict_response.hpp"

#include <string>
#include <string_view>
#include <utility>

namespace nnmark {

struct service_reply {
    int status = 200;  // HTTP status
    std::string body;  // JSON
};

// A model's per-thread scratch while it answers requests.
struct service_buffers {
    inference_buffers<float> inference;
    tensor<float> logits;
};

class prediction_service {
public:
    // `model` must outlive the service.
    prediction_service(const sequential<float>& model, std::string name, predict_limits limits)
        : model_(model), name_(std::move(name)), limits_(limits) {
        if (model.input_item().rank() != 3)
            throw shape_error("serve: a served model takes [C, H, W] images, this one takes " +
                              model.input_item().str());
    }

    const std::string& name() const { return name_; }
    const predict_limits& limits() const { return limits_; }

    service_reply predict(std::string_view body, service_buffers& buffers) const {
        try {
            const predict_request request = parse_predict_request(body, model_.input_item(), limits_);
            model_.infer(request.images, buffers.logits, buffers.inference);
            return {200, format_predictions(buffers.logits, request.scores)};
        } catch (const limit_error& e) {
            return {413, error_body(e.what())};
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
    const sequential<float>& model_;
    std::string name_;
    predict_limits limits_;
};

}  // namespace nnmark
