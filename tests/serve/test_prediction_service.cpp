// prediction_service: a tiny model answers predict bodies with 200, 400 or 413, from
// several threads at once, with the same labels as predict_labels on the same images.
#include "nnmark/serve/prediction_service.hpp"
#include "nnmark/train/evaluate.hpp"

#include "../support/errors.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <thread>

namespace nnmark::testing::prediction_service_tests {

std::string body_of(const dataset& data, index_t first, index_t count, const std::string& extra = "") {
    std::string body = "{" + extra + "\"instances\":[";
    for (index_t i = first; i < first + count; ++i) {
        if (i > first) body += ',';
        append_instance(body, data.images.item(i), data.item_shape(), i % 2 ? image_layout::hwc : image_layout::chw);
    }
    return body + "]}";
}

TEST_CASE("serve service: answers equal predict_labels, also from several threads at once") {
    sequential<float> model = make_tiny_net<float>();
    model.initialize(3);
    const dataset data = make_quadrant_dataset(12, 5);
    const std::vector<int> expected = predict_labels(model, data);
    const prediction_service service(model, "tiny", {8});

    std::vector<std::vector<int>> answers(4);
    std::vector<std::thread> clients;
    for (std::size_t t = 0; t < answers.size(); ++t)
        clients.emplace_back([&, t] {
            service_buffers buffers;
            for (index_t i = 0; i < data.size(); i += 4) {
                const service_reply r = service.predict(body_of(data, i, 4), buffers);
                if (r.status != 200) return;
                for (int label : read_prediction_labels(r.body, 4, {}, 4)) answers[t].push_back(label);
            }
        });
    for (auto& c : clients) c.join();
    for (const auto& a : answers) CHECK(a == expected);

    service_buffers buffers;
    const service_reply scored = service.predict(body_of(data, 0, 2, "\"signature_name\":\"scores\","), buffers);
    CHECK(scored.status == 200);
    CHECK(read_prediction_labels(scored.body, 2, {"scores", true}, 4) ==
          std::vector<int>(expected.begin(), expected.begin() + 2));
}

TEST_CASE("serve service: bad requests get 400, oversized ones 413, each with a message") {
    sequential<float> model = make_tiny_net<float>();
    model.initialize(3);
    const prediction_service service(model, "tiny", {2});
    service_buffers buffers;
    const service_reply bad = service.predict("{\"instances\": [1", buffers);
    CHECK(bad.status == 400);
    CHECK(contains(bad.body, "{\"error\":\"request: invalid JSON at byte 16"));
    const dataset data = make_quadrant_dataset(3, 5);
    const service_reply big = service.predict(body_of(data, 0, 3), buffers);
    CHECK(big.status == 413);
    CHECK(contains(big.body, "3 images, more than the limit of 2 per request"));
    const service_reply shape = service.predict(R"({"instances": [[[1, 2], [3, 4]]]})", buffers);
    CHECK(shape.status == 400);
    CHECK(contains(shape.body, "expected an image as nested arrays [8][8][1] (HWC) or [1][8][8] (CHW)"));
}

TEST_CASE("serve service: the status names the model, its input and its classes") {
    sequential<float> model = make_tiny_net<float>();
    const prediction_service service(model, "tiny", {5});
    const json status = parse_json(service.status_body(), "status");
    const json_view view(status, "status");
    CHECK(view["model_version_status"].elements()[0]["state"].as_string() == "AVAILABLE");
    CHECK(view["nnmark"]["name"].as_string() == "tiny");
    CHECK(view["nnmark"]["classes"].as_int() == 4);
    CHECK(view["nnmark"]["max_instances"].as_int() == 5);
    CHECK(view["nnmark"]["input_shape"].elements().size() == 3);
}

}  // namespace nnmark::testing::prediction_service_tests
