// TensorFlow Serving's REST API documentation (tensorflow_serving/g3doc/api_rest.md,
// https://www.tensorflow.org/tfx/serving/api_rest), request by request: every example
// that applies to an image classifier, sent to prediction_service through the URL
// `nnmark serve` routes it by, and the answer's shape checked (predictions or outputs,
// result, model_version_status, metadata, {"error": ...} with its status). Examples are
// adapted only in their tensors' shapes and values, to the served model's 8x8 gray
// images; each quotes its section. The version (123) and a label ("stable") are the
// doc's: its example model, half_plus_three, is at version 123.
#include "nnmark/serve/prediction_service.hpp"
#include "nnmark/train/evaluate.hpp"

#include "../support/errors.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <cctype>

namespace nnmark::testing::tf_serving_rest_tests {

struct rest_fixture {
    sequential<float> model = [] {
        sequential<float> net = make_tiny_net<float>();
        net.initialize(3);
        return net;
    }();
    const dataset images = make_quadrant_dataset(4, 7);
    const std::vector<int> expected = predict_labels(model, images);
    const prediction_service service{model, "tiny", {}, std::nullopt, nullptr, served_versions{123, {"stable"}}};

    // What `nnmark serve` answers `method url` with `body`: its router parses the URL,
    // then GETs go to get(), POSTs to post().
    service_reply request(const std::string& method, const std::string& url, std::string_view body = {}) const {
        const std::optional<model_path> path = parse_model_path(url);
        REQUIRE_MESSAGE(path, url << " is not a model URL");
        service_buffers buffers;
        return method == "GET" ? service.get(*path) : service.post(*path, body, buffers);
    }

    // Image k of the dataset as nested [8][8] 0-255 integers.
    std::string nested(index_t k) const {
        std::string instance;
        append_instance(instance, images.images.item(k), images.item_shape(), image_layout::chw);
        return instance.substr(1, instance.size() - 2);  // [[[...]]] (CHW, one channel) -> [[...]]: [H][W]
    }

    // Image k as a flat list of 64 numbers: a tf.Example feature.
    std::string flat(index_t k) const {
        std::string list = "[";
        for (std::uint8_t p : images.images.item(k)) {  // piece by piece: "," + ... trips GCC 12's -Wrestrict
            if (list.size() > 1) list += ',';
            list += std::to_string(p);
        }
        return list + "]";
    }

    // Image k as {"b64": <PNG>}: "Encoding binary values".
    std::string png(index_t k) const {
        std::vector<unsigned char> file;
        REQUIRE(stbi_write_png_to_func(detail::append_bytes, &file, 8, 8, 1, images.images.item(k).data(), 8));
        return "{\"b64\": \"" + encode_base64(file) + "\"}";
    }
};

json body_of(const service_reply& reply) { return parse_json(reply.body, "answer"); }

// {"error": <error message string>}, the only key, and the status: "In case of error,
// all APIs will return a JSON object in the response body with error as key".
std::string error_of(const service_reply& reply, int status) {
    CHECK(reply.status == status);
    const json body = body_of(reply);
    const json_view view(body, "answer");
    view.expect_only_keys({"error"});
    return view["error"].as_string();
}

std::vector<int> labels_in(const json_view& predictions) {
    std::vector<int> labels;
    for (const json_view& p : predictions.elements()) labels.push_back(static_cast<int>(p["label"].as_int()));
    return labels;
}

// {"predictions": [{"label": L}, ...]}, the only key, with the labels `expected`.
void check_predictions(const service_reply& reply, const std::vector<int>& expected) {
    REQUIRE_MESSAGE(reply.status == 200, reply.body);
    const json body = body_of(reply);
    const json_view view(body, "answer");
    view.expect_only_keys({"predictions"});
    CHECK(labels_in(view["predictions"]) == expected);
}

// {"outputs": {"label": [L, ...]}}: a request in columnar format is answered in it.
void check_outputs(const service_reply& reply, const std::vector<int>& expected) {
    REQUIRE_MESSAGE(reply.status == 200, reply.body);
    const json body = body_of(reply);
    const json_view view(body, "answer");
    view.expect_only_keys({"outputs"});
    std::vector<int> labels;
    for (const json_view& l : view["outputs"]["label"].elements()) labels.push_back(static_cast<int>(l.as_int()));
    CHECK(labels == expected);
}

void replace_first(std::string& text, std::string_view from, const std::string& to) {
    const std::size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
}

std::vector<int> first(const std::vector<int>& labels, std::size_t n) { return {labels.begin(), labels.begin() + n}; }

TEST_CASE("tf serving rest: Model status API, and the Example section's status call") {
    const rest_fixture f;
    // "Model status API", URL: GET http://host:port/v1/models/${MODEL_NAME}[/versions/${VERSION}|/labels/${LABEL}]
    // "Example": curl http://localhost:8501/v1/models/saved_model_half_plus_three answers
    // {"model_version_status": [{"version": "123", "state": "AVAILABLE",
    //                            "status": {"error_code": "OK", "error_message": ""}}]}
    for (const char* url : {"/v1/models/tiny", "/v1/models/tiny/versions/123", "/v1/models/tiny/labels/stable"}) {
        CAPTURE(std::string(url));
        const service_reply reply = f.request("GET", url);
        REQUIRE(reply.status == 200);
        const json body = body_of(reply);
        const std::vector<json_view> versions = json_view(body, "answer")["model_version_status"].elements();
        REQUIRE(versions.size() == 1);
        CHECK(versions[0]["version"].as_string() == "123");
        CHECK(versions[0]["state"].as_string() == "AVAILABLE");
        CHECK(versions[0]["status"]["error_code"].as_string() == "OK");
        CHECK(versions[0]["status"]["error_message"].as_string() == "");
    }
    CHECK(contains(error_of(f.request("GET", "/v1/models/tiny/versions/7"), 404),
                   "Servable not found for request: Specific(tiny, 7): no version 7"));
    CHECK(error_of(f.request("GET", "/v1/models/tiny/labels/canary"), 400) ==
          "Unrecognized servable version label: canary; this server's labels are \"stable\" (--version-label)");
}

TEST_CASE("tf serving rest: Model Metadata API") {
    const rest_fixture f;
    // "Model Metadata API", URL: GET http://host:port/v1/models/${MODEL_NAME}[/versions/${VERSION}|/labels/${LABEL}]/metadata
    // "returns a JSON representation of GetModelMetadataResponse".
    for (const char* url :
         {"/v1/models/tiny/metadata", "/v1/models/tiny/versions/123/metadata", "/v1/models/tiny/labels/stable/metadata"}) {
        CAPTURE(std::string(url));
        const service_reply reply = f.request("GET", url);
        REQUIRE(reply.status == 200);
        const json body = body_of(reply);
        const json_view view(body, "answer");
        CHECK(view["model_spec"]["name"].as_string() == "tiny");
        CHECK(view["model_spec"]["version"].as_string() == "123");
        CHECK(view["model_spec"]["signature_name"].as_string() == "");
        const json_view signatures = view["metadata"]["signature_def"]["signature_def"];
        const json_view predict = signatures["serving_default"];
        CHECK(predict["method_name"].as_string() == "tensorflow/serving/predict");
        std::vector<std::string> dims;
        for (const json_view& d : predict["inputs"]["image"]["tensor_shape"]["dim"].elements())
            dims.push_back(d["size"].as_string());
        CHECK(dims == std::vector<std::string>{"-1", "8", "8", "1"});  // TensorFlow's [batch, H, W, C]
        CHECK(predict["inputs"]["image"]["dtype"].as_string() == "DT_FLOAT");
        CHECK(predict["outputs"]["label"]["dtype"].as_string() == "DT_INT64");
        CHECK(signatures["scores"]["outputs"]["scores"]["tensor_shape"]["dim"].elements()[1]["size"].as_string() == "4");
        CHECK(signatures["classification"]["method_name"].as_string() == "tensorflow/serving/classify");
    }
    CHECK(contains(error_of(f.request("GET", "/v1/models/other/metadata"), 404),
                   "Servable not found for request: Latest(other): no model named \"other\""));
}

TEST_CASE("tf serving rest: Predict API, row format (\"instances\")") {
    const rest_fixture f;
    // "Predict API", URL: POST http://host:port/v1/models/${MODEL_NAME}[/versions/${VERSION}|/labels/${LABEL}]:predict
    // "Specifying input tensors in row format": {"instances": [ [[1, 2]], [[3, 4]] ]}, "List
    // of 2 tensors each of [1, 2] shape": here 2 tensors of [8, 8].
    const std::string two = "{\"instances\": [" + f.nested(0) + ", " + f.nested(1) + "]}";
    for (const char* url :
         {"/v1/models/tiny:predict", "/v1/models/tiny/versions/123:predict", "/v1/models/tiny/labels/stable:predict"}) {
        CAPTURE(std::string(url));
        check_predictions(f.request("POST", url, two), first(f.expected, 2));
    }
    // {"instances": [ "foo", "bar", "baz" ]}, "List of 3 scalar tensors": strings, which
    // for an image model are its files, in binary: {"b64": ...} ("Encoding binary values").
    check_predictions(f.request("POST", "/v1/models/tiny:predict",
                                "{\"instances\": [" + f.png(0) + ", " + f.png(1) + ", " + f.png(2) + "]}"),
                      first(f.expected, 3));
    CHECK(contains(error_of(f.request("POST", "/v1/models/tiny:predict", R"({"instances": [ "foo", "bar", "baz" ]})"), 400),
                   "request.instances[0]: expected an image as nested arrays [8][8][1] (HWC)"));
    // "Request format": "signature_name" is optional.
    const std::string scored = "{\"signature_name\": \"scores\", \"instances\": [" + f.nested(2) + "]}";
    const service_reply reply = f.request("POST", "/v1/models/tiny:predict", scored);
    check_predictions(reply, {f.expected[2]});
    CHECK(json_view(body_of(reply), "answer")["predictions"].elements()[0]["scores"].elements().size() == 4);
    // "A request can have either of them but NOT both."
    CHECK(contains(error_of(f.request("POST", "/v1/models/tiny:predict",
                                      "{\"instances\": [" + f.nested(0) + "], \"inputs\": [" + f.nested(0) + "]}"),
                            400),
                   "found both"));
}

TEST_CASE("tf serving rest: Predict API, named inputs in row format") {
    const rest_fixture f;
    // "For multiple named inputs, each item is expected to be an object containing input
    // name/tensor value pair", the doc's example verbatim: its second "signal" has one ']'
    // too many ([3, 4, 1, 2, 5]]), so it is not JSON.
    const std::string verbatim = R"({
 "instances": [
   {
     "tag": "foo",
     "signal": [1, 2, 3, 4, 5],
     "sensor": [[1, 2], [3, 4]]
   },
   {
     "tag": "bar",
     "signal": [3, 4, 1, 2, 5]],
     "sensor": [[4, 5], [6, 8]]
   }
 ]
})";
    CHECK(contains(error_of(f.request("POST", "/v1/models/tiny:predict", verbatim), 400), "request: invalid JSON at byte"));
    // Corrected, it names three inputs; the model has one.
    std::string three = verbatim;
    three.erase(three.find("5]],") + 2, 1);
    CHECK(error_of(f.request("POST", "/v1/models/tiny:predict", three), 400) ==
          "request.instances[0]: expected one named input (this model has one, \"image\"), found 3: \"tag\", "
          "\"signal\", \"sensor\"");
    // With the one input the model has, under any of the doc's names: answered.
    const std::string named =
        "{\"instances\": [{\"sensor\": " + f.nested(0) + "}, {\"sensor\": " + f.png(1) + "}]}";
    check_predictions(f.request("POST", "/v1/models/tiny:predict", named), first(f.expected, 2));
}

TEST_CASE("tf serving rest: Predict API, columnar format (\"inputs\"), answered as \"outputs\"") {
    const rest_fixture f;
    // "Specifying input tensors in column format": the doc's columnar example verbatim
    // names three inputs; the model has one.
    const std::string verbatim = R"({
 "inputs": {
   "tag": ["foo", "bar"],
   "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
   "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]]
 }
})";
    CHECK(error_of(f.request("POST", "/v1/models/tiny:predict", verbatim), 400) ==
          "request.inputs: expected one named input (this model has one, \"image\"), found 3: \"tag\", \"signal\", "
          "\"sensor\"");
    // "The value for inputs key can either a single input tensor or a map of input name to
    // tensors": both, with the model's one input; "A request in columnar format has
    // response formatted as follows: {"outputs": ...}".
    const std::string batch = "[" + f.nested(0) + ", " + f.nested(1) + ", " + f.nested(3) + "]";
    const std::vector<int> expected{f.expected[0], f.expected[1], f.expected[3]};
    check_outputs(f.request("POST", "/v1/models/tiny:predict", "{\"inputs\": " + batch + "}"), expected);
    check_outputs(f.request("POST", "/v1/models/tiny/versions/123:predict", "{\"inputs\": {\"sensor\": " + batch + "}}"),
                  expected);
    const service_reply scored = f.request(
        "POST", "/v1/models/tiny:predict", "{\"signature_name\": \"scores\", \"inputs\": {\"image\": " + batch + "}}");
    check_outputs(scored, expected);
    CHECK(json_view(body_of(scored), "answer")["outputs"]["scores"].elements().size() == 3);
}

TEST_CASE("tf serving rest: the Example section's predict calls, and its 404") {
    const rest_fixture f;
    // "Example": curl -d '{"instances": [1.0,2.0,5.0]}' -X POST .../saved_model_half_plus_three:predict
    // answers {"predictions": [3.5, 4.0, 5.5]}: three instances of floats, here three images
    // whose every pixel is written 1.0, 2.0 and 5.0. "2.0" and "5.0" are above 1, so 0-255
    // pixels; "1.0" alone is ambiguous, and read as a 0-1 intensity (white) unless the
    // server is started with --input-range byte.
    const auto constant = [](const char* value) {
        std::string rows = "[";
        for (int y = 0; y < 8; ++y) {
            rows += y ? ",[" : "[";
            for (int x = 0; x < 8; ++x) {
                if (x) rows += ',';
                rows += value;
            }
            rows += "]";
        }
        return rows + "]";
    };
    const std::string body =
        "{\"instances\": [" + constant("1.0") + "," + constant("2.0") + "," + constant("5.0") + "]}";
    dataset bytes = make_quadrant_dataset(3, 1);
    for (index_t k = 0; k < 3; ++k) std::ranges::fill(bytes.images.item(k), std::uint8_t(k == 0 ? 255 : 3 * k - 1));
    check_predictions(f.request("POST", "/v1/models/tiny:predict", body), predict_labels(f.model, bytes));
    // "An incorrect request URL or body returns an HTTP error status": curl -i -d
    // '{"instances": [1.0,5.0]}' -X POST http://localhost:8501/v1/models/half:predict gives
    // HTTP/1.1 404 Not Found, { "error": "Servable not found for request: Latest(half)" }.
    CHECK(error_of(f.request("POST", "/v1/models/half:predict", R"({"instances": [1.0,5.0]})"), 404).starts_with(
        "Servable not found for request: Latest(half): no model named \"half\""));
    // The same body to this model: scalars are no images.
    CHECK(contains(error_of(f.request("POST", "/v1/models/tiny:predict", R"({"instances": [1.0,5.0]})"), 400),
                   "request.instances[0]: expected an image as nested arrays"));
}

// Every class with its score, in class order, for each example; checks the top class.
void check_result(const service_reply& reply, const std::vector<int>& expected) {
    REQUIRE_MESSAGE(reply.status == 200, reply.body);
    const json body = body_of(reply);
    const json_view view(body, "answer");
    view.expect_only_keys({"result"});
    const std::vector<json_view> result = view["result"].elements();
    REQUIRE(result.size() == expected.size());
    for (std::size_t i = 0; i < result.size(); ++i) {
        const std::vector<json_view> classes = result[i].elements();
        REQUIRE(classes.size() == 4);
        double sum = 0, best = -1;
        int top = -1;
        for (std::size_t k = 0; k < classes.size(); ++k) {
            CHECK(classes[k].elements()[0].as_string() == std::to_string(k));
            const double score = classes[k].elements()[1].as_double();
            sum += score;
            if (score > best) {
                top = static_cast<int>(k);
                best = score;
            }
        }
        CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
        CHECK(top == expected[i]);
    }
}

TEST_CASE("tf serving rest: Classify and Regress API") {
    const rest_fixture f;
    // "Classify and Regress API", URL: POST http://host:port/v1/models/${MODEL_NAME}[/versions/${VERSION}|/labels/${LABEL}]:(classify|regress)
    // "Request format": {"signature_name": <string>, "context": {"<feature_name3>": <value>|<list>, ...},
    //                    "examples": [{"<feature_name1>": <value>|<list>, ...}, ...]}
    // "Response format": {"result": [[[<label1>, <score1>], [<label2>, <score2>], ...], ...]}
    const std::string examples = "{\"signature_name\": \"classification\", \"context\": {\"camera\": \"front\"}, "
                                 "\"examples\": [{\"image\": " + f.flat(0) + "}, {\"image\": " + f.flat(1) +
                                 ", \"caption\": \"seaside\"}]}";
    for (const char* url : {"/v1/models/tiny:classify", "/v1/models/tiny/versions/123:classify",
                            "/v1/models/tiny/labels/stable:classify"}) {
        CAPTURE(std::string(url));
        check_result(f.request("POST", url, examples), first(f.expected, 2));
    }
    // "Encoding binary values": the doc's classification request with image and caption
    // features. Verbatim, its signature is not this model's, and its bytes are no image.
    const std::string verbatim = R"({
  "signature_name": "classify_objects",
  "examples": [
    {
      "image": { "b64": "aW1hZ2UgYnl0ZXM=" },
      "caption": "seaside"
    },
    {
      "image": { "b64": "YXdlc29tZSBpbWFnZSBieXRlcw==" },
      "caption": "mountains"
    }
  ]
})";
    CHECK(error_of(f.request("POST", "/v1/models/tiny:classify", verbatim), 400) ==
          "request.signature_name: expected \"serving_default\" or \"classification\" (this model's classify "
          "signature), found \"classify_objects\"");
    std::string classify_objects = verbatim;
    classify_objects.erase(classify_objects.find("\"signature_name\""), classify_objects.find("\"examples\"") -
                                                                          classify_objects.find("\"signature_name\""));
    CHECK(contains(error_of(f.request("POST", "/v1/models/tiny:classify", classify_objects), 400),
                   "request.examples[0].image.b64: expected a PNG or JPEG file, found 11 bytes"));
    // With this model's PNGs for values: answered; the caption is a feature it does not read.
    std::string pngs = classify_objects;
    replace_first(pngs, R"({ "b64": "aW1hZ2UgYnl0ZXM=" })", f.png(2));
    replace_first(pngs, R"({ "b64": "YXdlc29tZSBpbWFnZSBieXRlcw==" })", f.png(3));
    check_result(f.request("POST", "/v1/models/tiny:classify", pngs), {f.expected[2], f.expected[3]});

    // "Example": the regress call, curl -d '{"signature_name": "tensorflow/serving/regress",
    // "examples": [{"x": 1.0}, {"x": 2.0}]}' -X POST .../saved_model_half_plus_three:regress:
    // a classifier has no regression signature.
    CHECK(contains(error_of(f.request("POST", "/v1/models/tiny:regress",
                                      R"({"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]})"),
                            400),
                   "this model is a classifier with no regression signature"));
}

TEST_CASE("tf serving rest: JSON mapping and JSON conformance") {
    const rest_fixture f;
    // "JSON mapping", DT_FLOAT: "Exponent notation is also accepted": every pixel p as "pe0".
    std::string exponents;
    for (const char c : f.nested(0)) {
        if ((c == ',' || c == ']') && std::isdigit(static_cast<unsigned char>(exponents.back()))) exponents += "e0";
        exponents += c;
    }
    REQUIRE(contains(exponents, "e0,"));
    check_predictions(f.request("POST", "/v1/models/tiny:predict", "{\"instances\": [" + exponents + "]}"),
                      {f.expected[0]});
    // "JSON conformance": {"example": [{"sensor_readings": [ 1.0, -3.14, Nan, Infinity ]}]}
    // is valid for TF Serving; NaN and Infinity are no pixels, and nnmark's JSON reader is
    // strict (RFC 8259), so it is refused, as the same tokens in an image are.
    const service_reply conformance = f.request(
        "POST", "/v1/models/tiny:classify", R"({"example": [{"sensor_readings": [ 1.0, -3.14, Nan, Infinity ]}]})");
    CHECK(contains(error_of(conformance, 400), "request: invalid JSON at byte"));
    std::string nan = "{\"instances\": [" + f.nested(0) + "]}";
    const std::size_t number = nan.find_first_of("0123456789");
    nan.replace(number, nan.find_first_of(",]", number) - number, "NaN");
    CHECK(contains(error_of(f.request("POST", "/v1/models/tiny:predict", nan), 400), "request: invalid JSON at byte"));
}

}  // namespace nnmark::testing::tf_serving_rest_tests
