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
        d["size"] = std::to_string(size);
        d["name"] = "";
        dim.push_back(std::move(d));
    }
    json shape = json::object();
    shape["dim"] = std::move(dim);
    shape["unknown_rank"] = false;
    json info = json::object();
    info["dtype"] = dtype;
    info["tensor_shape"] = std::move(shape);
    info["name"] = name + ":0";
    return info;
}

inline json signature_def(json inputs, json outputs, const char* method) {
    json signature = json::object();
    signature["inputs"] = std::move(inputs);
    signature["outputs"] = std::move(outputs);
    signature["method_name"] = method;
    return signature;
}

inline json tensor_map(std::initializer_list<std::pair<const char*, json>> tensors) {
    json map = json::object();
    for (const auto& [name, info] : tensors) map[name] = info;
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
    signatures["serving_default"] = labels_signature;
    signatures["labels"] = labels_signature;
    signatures["scores"] = signature_def(tensor_map({{"image", image}}), tensor_map({{"label", label}, {"scores", scores}}),
                                 predict);
    signatures["classification"] = signature_def(tensor_map({{"inputs", tensor_info("DT_STRING", {-1}, "tf_example")}}),
                                 tensor_map({{"classes", tensor_info("DT_STRING", {-1, classes}, "classes")},
                                             {"scores", scores}}),
                                 "tensorflow/serving/classify");
    json map = json::object();
    map["signature_def"] = std::move(signatures);
    json metadata = json::object();
    metadata["signature_def"] = std::move(map);
    json spec = json::object();
    spec["name"] = name;
    spec["signature_name"] = "";
    spec["version"] = std::to_string(version);
    json body = json::object();
    body["model_spec"] = std::move(spec);
    body["metadata"] = std::move(metadata);
    return dump_json(body);
}

}  // namespace nnmark
