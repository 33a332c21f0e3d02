// model_metadata: what TensorFlow Serving's Model Metadata API answers for a model
// nnmark serves (api_rest.md, "Model Metadata API"): GetModelMetadataResponse as JSON,
//     {"model_spec": {"name": N, "signature_name": "", "version": "1"},
//      "metadata": {"signature_def": {"signature_def": {NAME: SignatureDef, ...}}}}
// laid out as model_servers/http_rest_api_util.cc's ToJsonString writes it: proto field
// names, int64 values as strings (proto3's JSON mapping), the SignatureDefMap inside a
// "signature_def" key of its own.
//
// The signatures are what the server answers (serve/predict_request.hpp,
// serve/classify_api.hpp):
//   serving_default, labels  predict: image [-1, H, W, C] float -> label [-1] int64
//   scores                   predict: image -> label, and scores [-1, K] float (softmax)
//   classification           classify: tf.Examples -> classes [-1, K] string, scores [-1, K]
// The input is advertised in TensorFlow's HWC order; a server reads CHW, [H][W] and
// flat arrays too, and takes one named input whatever its name.
#pragma once

#include "nnmark/core/json.hpp"
#include "nnmark/core/shape.hpp"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

namespace nnmark {

namespace detail::metadata {

// A TensorInfo: dtype, shape (-1: the batch) and the tensor's name in the graph.
inline json tensor_info(const char* dtype, std::initializer_list<index_t> dims, const std::string& name) {
    json dim = json::array();
    for (index_t size : dims) {
        json d = json::object();
        d.set("size", std::to_string(size));
        d.set("name", "");
        dim.push_back(std::move(d));
    }
    json shape = json::object();
    shape.set("dim", std::move(dim));
    shape.set("unknown_rank", false);
    json info = json::object();
    info.set("dtype", dtype);
    info.set("tensor_shape", std::move(shape));
    info.set("name", name + ":0");
    return info;
}

inline json signature_def(json inputs, json outputs, const char* method) {
    json signature = json::object();
    signature.set("inputs", std::move(inputs));
    signature.set("outputs", std::move(outputs));
    signature.set("method_name", method);
    return signature;
}

inline json tensor_map(std::initializer_list<std::pair<const char*, json>> tensors) {
    json map = json::object();
    for (const auto& [name, info] : tensors) map.set(name, info);
    return map;
}

}  // namespace detail::metadata

// The metadata of model `name` at `version`, whose input item is [C, H, W] and which
// scores `classes` classes.
inline std::string model_metadata_body(const std::string& name, std::int64_t version, const shape& item,
                                       index_t classes) {
    using namespace detail::metadata;
    constexpr const char* predict = "tensorflow/serving/predict";
    const json image = tensor_info("DT_FLOAT", {-1, item[1], item[2], item[0]}, "image");
    const json label = tensor_info("DT_INT64", {-1}, "label");
    const json scores = tensor_info("DT_FLOAT", {-1, classes}, "scores");
    const json labels_signature =
        signature_def(tensor_map({{"image", image}}), tensor_map({{"label", label}}), predict);
    json signatures = json::object();
    signatures.set("serving_default", labels_signature);
    signatures.set("labels", labels_signature);
    signatures.set("scores",
                   signature_def(tensor_map({{"image", image}}), tensor_map({{"label", label}, {"scores", scores}}),
                                 predict));
    signatures.set("classification",
                   signature_def(tensor_map({{"inputs", tensor_info("DT_STRING", {-1}, "tf_example")}}),
                                 tensor_map({{"classes", tensor_info("DT_STRING", {-1, classes}, "classes")},
                                             {"scores", scores}}),
                                 "tensorflow/serving/classify"));
    json map = json::object();
    map.set("signature_def", std::move(signatures));
    json metadata = json::object();
    metadata.set("signature_def", std::move(map));
    json spec = json::object();
    spec.set("name", name);
    spec.set("signature_name", "");
    spec.set("version", std::to_string(version));
    json body = json::object();
    body.set("model_spec", std::move(spec));
    body.set("metadata", std::move(metadata));
    return body.dump();
}

}  // namespace nnmark
