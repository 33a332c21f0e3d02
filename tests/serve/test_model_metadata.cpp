#include "nnmark/serve/model_metadata.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace nnmark;

namespace {

// The dims of a TensorInfo's tensor_shape, as TF Serving writes them (int64 as strings).
std::vector<std::string> dims_of_tensor(const json_view& info) {
    std::vector<std::string> dims;
    for (const json_view& d : info["tensor_shape"]["dim"].elements()) dims.push_back(d["size"].as_string());
    return dims;
}

}  // namespace

TEST_CASE("model_metadata: the spec, and every signature with its tensors in TensorFlow's HWC order") {
    const std::string body = model_metadata_body("digits", 3, shape{1, 28, 28}, 10);
    const json doc = parse_json(body, "metadata");
    const json_view root(doc, "metadata");
    CHECK(root["model_spec"]["name"].as_string() == "digits");
    CHECK(root["model_spec"]["version"].as_string() == "3");  // proto3's JSON mapping: int64 as a string
    CHECK(root["model_spec"]["signature_name"].as_string().empty());

    const json_view signatures = root["metadata"]["signature_def"]["signature_def"];
    for (const char* name : {"serving_default", "labels", "scores"}) {
        CAPTURE(name);
        const json_view s = signatures[name];
        CHECK(s["method_name"].as_string() == "tensorflow/serving/predict");
        const json_view image = s["inputs"]["image"];
        CHECK(image["dtype"].as_string() == "DT_FLOAT");
        CHECK(dims_of_tensor(image) == std::vector<std::string>{"-1", "28", "28", "1"});
        CHECK(s["outputs"]["label"]["dtype"].as_string() == "DT_INT64");
    }
    CHECK_FALSE(signatures["labels"]["outputs"].find("scores"));
    CHECK(dims_of_tensor(signatures["scores"]["outputs"]["scores"]) == std::vector<std::string>{"-1", "10"});
    const json_view classify = signatures["classification"];
    CHECK(classify["method_name"].as_string() == "tensorflow/serving/classify");
    CHECK(classify["inputs"]["inputs"]["dtype"].as_string() == "DT_STRING");
    CHECK(dims_of_tensor(classify["outputs"]["classes"]) == std::vector<std::string>{"-1", "10"});

    // Colour images: channels last in the advertised shape.
    const json colour = parse_json(model_metadata_body("cifar", 1, shape{3, 32, 32}, 10), "metadata");
    CHECK(dims_of_tensor(json_view(colour, "metadata")["metadata"]["signature_def"]["signature_def"]["labels"]["inputs"]
                                  ["image"]) == std::vector<std::string>{"-1", "32", "32", "3"});
}
