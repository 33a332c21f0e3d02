// nnmark serve and verify --url end to end, on loopback only: a real server started with
// --port 0, a watermark verified through HTTP with the numbers of verify --model,
// malformed requests answered 400/404/405/413/415 with messages, a bounded concurrent
// load with no errors, 1,000 malformed requests that leave the server up with flat
// memory, and hostile clients on raw sockets: a chunked body over the limit, slow
// clients that must not keep a valid one waiting, pipelined requests; and TensorFlow
// Serving's other URLs and formats over HTTP (versions, labels, columns, :classify,
// metadata, refusals).
#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/serve/predict_request.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/watermark/key.hpp"

#include "../support/files.hpp"
#include "../support/tiny_data.hpp"
#include "cli_runner.hpp"
#include "server_process.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cctype>
#include <chrono>
#include <limits>
#include <numeric>
#include <csignal>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace nnmark::testing::serve_cli_tests {

using namespace std::chrono_literals;

std::string error_of(const httplib::Result& r) { return nlohmann::json::parse(r->body).at("error").get<std::string>(); }

// A small untrained [1, 28, 28] -> 10 network: MNIST's shape at a fraction of paper-mnist's cost.
sequential<float> small_mnist_net() {
    sequential<float> net = make_small_mnist_net<float>();
    net.initialize(11);
    return net;
}

std::filesystem::path small_mnist_model(const temp_dir& dir) {
    const auto path = dir / "small.safetensors";
    save_model(small_mnist_net(), path);
    return path;
}

// The same network with its classes rotated by one: class k's row of the last layer
// becomes class k + 1's, so it answers (label + 1) % 10 wherever the original answers label.
sequential<float> rotated_classes(sequential<float> net) {
    for (auto& p : net.named_parameters()) {
        if (p.layer != net.size() - 1) continue;
        const std::size_t row = p.value.size() / 10;
        std::rotate(p.value.begin(), p.value.end() - static_cast<std::ptrdiff_t>(row), p.value.end());
    }
    return net;
}

// A key whose labels are what `net` answers on 16 training images (random label mode,
// so the null rate is 1/9): `net` carries this "watermark" without any training.
watermark_key key_answered_by(const sequential<float>& net, const dataset& train) {
    std::vector<index_t> chosen(16);
    std::iota(chosen.begin(), chosen.end(), index_t(0));
    watermark_key key;
    key.triggers = train.subset(chosen);
    key.triggers.labels = predict_labels(net, key.triggers);
    key.recipe = parse_json(R"({"kind":"content","source":1,"target":0,"seed":1,"count":16,"label_mode":"random",)"
                             R"("classes":10,"dataset":"mnist","datasets":[]})",
                             "recipe");
    return key;
}

// `body` with its first pixel value written as `text`.
std::string with_first_value(std::string body, const std::string& text) {
    const std::size_t at = body.find_first_of("0123456789");
    return body.replace(at, body.find_first_of(",]", at) - at, text);
}

TEST_CASE("cli serve: verify --url finds the watermark through HTTP with the numbers of verify --model") {
    // A key is made from what a briefly trained network answers (on 14 of 16 triggers),
    // and its rotated twin agrees with it nowhere, so it matches the 2 other triggers only
    // (and fails the suspect checks: it classifies no test image right). The network must
    // be trained: verify only declares a watermark in a classifier of the task.
    temp_dir dir;
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 200, 60, 9);
    const std::string data = " --dataset mnist --data " + mnist.string();
    const auto marked = dir / "marked.safetensors", key = dir / "marked.key", clean = dir / "clean.safetensors";
    const auto trained = nnmark_tool("train" + data + " --arch " +
                                         write_architecture(make_small_mnist_net<float>(), dir, "small.json") +
                                         " --epochs 2 --batch 16 --lr 0.02 --seed 5 --quiet --out " + marked.string(),
                                     dir);
    REQUIRE_MESSAGE(trained.exit_code == 0, trained.err);
    const sequential<float> net = load_model<float>(marked);
    const sequential<float> twin = rotated_classes(load_model<float>(marked));
    save_model(twin, clean);
    // The twin agrees with the key on 2 of its 16 triggers, about the null rate (16 / 9):
    // a suspect that matches at chance, not one built never to match.
    watermark_key answered = key_answered_by(net, load_dataset("mnist", mnist, true));
    const std::vector<int> twin_answers = predict_labels(twin, answered.triggers);
    for (std::size_t i : {0, 1}) answered.triggers.labels[i] = twin_answers[i];
    save_key(answered, key);

    // The same triggers every time, to compare with verify --model (tests/cli/test_ledger_cli.cpp spends them).
    const std::string remote_flags = " --rate 1000 --batch 8 --seed 3 --timeout 30 --reuse-triggers" + data + " --json";
    for (const auto& [model, expected_exit] : {std::pair{marked, 0}, std::pair{clean, 1}}) {
        CAPTURE(model.string());
        server_process server(model, "--name suspect", dir);
        const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/models/suspect:predict";
        const auto remote = nnmark_tool("verify --url " + url + " --key " + key.string() + remote_flags, dir);
        const auto local = nnmark_tool("verify --model " + model.string() + " --key " + key.string() + data + " --json", dir);
        CHECK_MESSAGE(remote.exit_code == expected_exit, remote.err);
        CHECK_MESSAGE(local.exit_code == expected_exit, local.err);
        const auto r = nlohmann::json::parse(remote.out), l = nlohmann::json::parse(local.out);
        for (const char* field : {"queries", "matches", "trigger_accuracy", "null_rate", "null_source", "p_value",
                                  "log10_p_value", "alpha", "significant", "verdict", "commitment"})
            CHECK_MESSAGE(r[field] == l[field],
                          field << ": " << r[field] << " through HTTP, " << l[field] << " in memory");
        CHECK(r["matches"] == (expected_exit == 0 ? 14 : 2));
        CHECK(r["suspect_checks"]["passed"] == (expected_exit == 0));
        CHECK(l["suspect_checks"]["passed"] == (expected_exit == 0));
        CHECK(r["queries_sent"] == 32);  // 16 triggers among 16 decoys
        CHECK(r["requests"] == 4);
        CHECK(r["decoys"] == 16);
        CHECK(r["seconds"].get<double>() > 0);

        // Asking for scores and taking their argmax, with CHW images, gives the same answers.
        const auto scored = nnmark_tool("verify --url " + url + " --key " + key.string() + remote_flags +
                                            " --signature scores --label-field scores --scores --layout chw",
                                        dir);
        CHECK_MESSAGE(scored.exit_code == expected_exit, scored.err);
        CHECK(nlohmann::json::parse(scored.out)["matches"] == l["matches"]);
        CHECK(server.stop() == 0);
        CHECK(contains(server.err(), "stopped"));
    }

    // No service at the address: exit 2 after the retries, with one line.
    const auto gone = nnmark_tool(
        "verify --url http://127.0.0.1:1/v1/models/x:predict --key " + key.string() + " --retries 1 --timeout 2 --reuse-triggers" + data,
        dir);
    CHECK(gone.exit_code == 2);
    CHECK(gone.one_line_error());
    CHECK_MESSAGE(contains(gone.err, "failed 2 times"), gone.err);
    const auto neither = nnmark_tool("verify --key " + key.string(), dir);
    CHECK(neither.exit_code == 2);
    CHECK_MESSAGE(contains(neither.err, "--model or --url"), neither.err);
}

TEST_CASE("cli serve: a served model answering one class, or NaN, is never declared to carry the watermark") {
    // A key whose 16 triggers all say class 0 (what a target key says), a model answering 0
    // for every input (zero weights, one positive bias) and one whose finite weights
    // overflow to non-finite outputs (a model file with NaN weights is refused at load):
    // both "match" every trigger, and both must be refused as classifiers of the task, with
    // labels and with scores asked for.
    temp_dir dir;
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 200, 60, 9);
    const std::string data = " --dataset mnist --data " + mnist.string();
    sequential<float> constant = make_small_mnist_net<float>();
    std::fill(constant.parameters().begin(), constant.parameters().end(), 0.0f);
    constant.named_parameters().back().value[0] = 1.0f;
    sequential<float> overflowing = make_small_mnist_net<float>();
    std::fill(overflowing.parameters().begin(), overflowing.parameters().end(), 1e30f);
    const auto constant_file = dir / "constant.safetensors", overflowing_file = dir / "overflowing.safetensors";
    const auto key = dir / "zero.key";
    save_model(constant, constant_file);
    save_model(overflowing, overflowing_file);
    watermark_key zeros = key_answered_by(constant, load_dataset("mnist", mnist, true));
    save_key(zeros, key);

    const std::string remote_flags =
        " --rate 1000 --batch 8 --seed 3 --timeout 30 --alpha 1e-3 --reuse-triggers" + data + " --json";
    for (const auto& model : {constant_file, overflowing_file}) {
        CAPTURE(model.string());
        server_process server(model, "--name suspect", dir);
        const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/models/suspect:predict";
        for (const std::string asked : {"", " --signature scores --label-field scores --scores"}) {
            CAPTURE(asked);
            const auto remote = nnmark_tool("verify --url " + url + " --key " + key.string() + remote_flags + asked, dir);
            CHECK_MESSAGE(remote.exit_code == 1, remote.err);
            const auto r = nlohmann::json::parse(remote.out);
            CHECK(r["verdict"] == "not-detected");
            CHECK(r["suspect_checks"]["passed"] == false);
            CHECK_FALSE(r["suspect_checks"]["failure"].get<std::string>().empty());
        }
        const auto local = nnmark_tool("verify --model " + model.string() + " --key " + key.string() + data +
                                           " --alpha 1e-3 --json",
                                       dir);
        CHECK_MESSAGE(local.exit_code == 1, local.err);
        CHECK(server.stop() == 0);
    }
}

TEST_CASE("cli serve: malformed requests get 400, 404 or 413 with a message; valid ones the model's labels") {
    temp_dir dir;
    const auto model_file = small_mnist_model(dir);
    const dataset images = load_dataset("mnist", write_synthetic_mnist(dir.path / "mnist", 10, 20, 4), false);
    server_process server(model_file, "--max-instances 4 --max-body 65536", dir);
    auto client = client_of(server);

    const auto ok = client->Post("/v1/models/default:predict", body_of(images, 0, 3), "application/json");
    REQUIRE(ok);
    REQUIRE_MESSAGE(ok->status == 200, ok->body);
    const auto predictions = nlohmann::json::parse(ok->body)["predictions"];
    const std::vector<int> expected =
        predict_labels(load_model<float>(model_file), images.subset(std::vector<index_t>{0, 1, 2}));
    for (std::size_t i = 0; i < 3; ++i) CHECK(predictions[i]["label"] == expected[i]);
    const auto status = client->Get("/v1/models/default");
    REQUIRE(status);
    CHECK(status->status == 200);
    CHECK(contains(status->body, "AVAILABLE"));

    struct bad_request {
        std::string path, body;
        int status;
        std::string message;
    };
    const std::string predict = "/v1/models/default:predict";
    const bad_request cases[] = {
        {predict, "{\"instances\": [", 400, "request: invalid JSON at byte 15"},
        {predict, R"({"instances": [[[1, 2], [3, 4]]]})", 400,
         "request.instances[0]: expected an image as nested arrays [28][28][1] (HWC) or [1][28][28] (CHW)"},
        {predict, with_first_value(body_of(images, 0, 1), "300"), 400, "expected a pixel in 0..255, found 300"},
        {predict, body_of(images, 0, 5), 413, "5 images, more than the limit of 4 per request"},
        {predict, std::string(70000, ' '), 413, "larger than the limit of 65536 bytes"},
        {"/v1/models/other:predict", body_of(images, 0, 1), 404, "no model named \"other\""},
        {"/v2/anything", "{}", 404, "no such resource: POST /v2/anything"},
        {"/v1/models/default", "{}", 405, "method POST is not allowed on /v1/models/default; it takes GET, HEAD"},
    };
    for (const bad_request& c : cases) {
        CAPTURE(c.path);
        CAPTURE(c.message);
        const auto r = client->Post(c.path, c.body, "application/json");
        REQUIRE(r);
        CHECK(r->status == c.status);
        CHECK_MESSAGE(contains(error_of(r), c.message), error_of(r));
        client = client_of(server);  // a fresh connection: the server may close one after an error
    }
    const auto unknown = client->Get("/v1/models/other");
    REQUIRE(unknown);
    CHECK(unknown->status == 404);

    // A second server on the same port fails at once (`timeout` guards the test if it did not).
    const auto busy =
        run_program("timeout 60 " NNMARK_TOOL_PATH,
                    "serve --model " + model_file.string() + " --port " + std::to_string(server.port()), dir);
    CHECK(busy.exit_code == 2);
    CHECK_MESSAGE(contains(busy.err, "cannot listen on 127.0.0.1:" + std::to_string(server.port())), busy.err);
    CHECK(server.stop() == 0);
}

// `body` with every integer written as a float: "84" -> "84.0", as TF Serving clients send a float tensor.
std::string as_floats(const std::string& body) {
    std::string floats;
    for (std::size_t i = 0; i < body.size(); ++i) {
        floats += body[i];
        const bool digit = std::isdigit(static_cast<unsigned char>(body[i]));
        if (digit && i + 1 < body.size() && (body[i + 1] == ',' || body[i + 1] == ']')) floats += ".0";
    }
    return floats;
}

// {"examples": [{"image": [784 numbers]}, ...]}: the images as tf.Examples for :classify.
std::string classify_body(const dataset& data, index_t count) {
    std::string body = "{\"examples\": [";
    for (index_t i = 0; i < count; ++i) {
        body += i ? ", {\"image\": [" : "{\"image\": [";
        for (std::size_t p = 0; p < data.images.item(i).size(); ++p) {
            if (p) body += ',';
            body += std::to_string(data.images.item(i)[p]);
        }
        body += "]}";
    }
    return body + "]}";
}

std::vector<int> top_classes(const nlohmann::json& result) {
    std::vector<int> labels;
    for (const auto& classes : result) {
        std::size_t best = 0;
        for (std::size_t k = 0; k < classes.size(); ++k)
            if (classes[k][1].get<double>() > classes[best][1].get<double>()) best = k;
        labels.push_back(std::stoi(classes[best][0].get<std::string>()));
    }
    return labels;
}

TEST_CASE("cli serve: TensorFlow Serving's REST API over HTTP: versions, labels, columns, :classify, metadata") {
    temp_dir dir;
    const auto model_file = small_mnist_model(dir);
    const dataset images = load_dataset("mnist", write_synthetic_mnist(dir.path / "mnist", 10, 20, 4), false);
    const std::vector<int> expected =
        predict_labels(load_model<float>(model_file), images.subset(std::vector<index_t>{0, 1, 2}));
    server_process server(model_file, "--name mnist --model-version 3 --version-label stable --version-label canary",
                          dir);
    CHECK(contains(server.out(), "version 3"));
    auto client = client_of(server);
    const std::string rows = body_of(images, 0, 3);
    const auto labels_of = [](const nlohmann::json& predictions) {
        std::vector<int> labels;
        for (const auto& p : predictions) labels.push_back(p["label"].get<int>());
        return labels;
    };

    // Predict API, row format, at the version, at a label, and with 0-255 pixels as floats.
    for (const auto& [path, body] : {std::pair{"/v1/models/mnist/versions/3:predict", rows},
                                     std::pair{"/v1/models/mnist/labels/canary:predict", as_floats(rows)}}) {
        CAPTURE(std::string(path));
        const auto r = client->Post(path, body, "application/json");
        REQUIRE(r);
        REQUIRE_MESSAGE(r->status == 200, r->body);
        CHECK(labels_of(nlohmann::json::parse(r->body).at("predictions")) == expected);
    }
    REQUIRE(contains(as_floats(rows), ".0]"));
    // Columnar format, one named input: answered as "outputs".
    const std::string columns = "{\"inputs\": {\"input_1\": " + rows.substr(rows.find('[')) + "}";
    const auto outputs = client->Post("/v1/models/mnist/labels/stable:predict", columns, "application/json");
    REQUIRE(outputs);
    REQUIRE_MESSAGE(outputs->status == 200, outputs->body);
    CHECK(nlohmann::json::parse(outputs->body).at("outputs").at("label").get<std::vector<int>>() == expected);
    // Classify API: tf.Examples of 784 numbers, every class with its score.
    const auto classified = client->Post("/v1/models/mnist:classify", classify_body(images, 3), "application/json");
    REQUIRE(classified);
    REQUIRE_MESSAGE(classified->status == 200, classified->body);
    const auto result = nlohmann::json::parse(classified->body).at("result");
    CHECK(result.size() == 3);
    CHECK(result[0].size() == 10);
    CHECK(top_classes(result) == expected);
    // Model status and metadata, at the version and at a label; HEAD answers their headers.
    const auto status = client->Get("/v1/models/mnist/versions/3");
    REQUIRE(status);
    CHECK(status->status == 200);
    CHECK(nlohmann::json::parse(status->body)["model_version_status"][0]["version"] == "3");
    const auto metadata = client->Get("/v1/models/mnist/labels/stable/metadata");
    REQUIRE(metadata);
    REQUIRE(metadata->status == 200);
    const auto spec = nlohmann::json::parse(metadata->body);
    CHECK(spec["model_spec"]["version"] == "3");
    CHECK(spec["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["image"]["tensor_shape"]
              ["dim"][1]["size"] == "28");
    const auto head = client->Head("/v1/models/mnist/metadata");
    REQUIRE(head);
    CHECK(head->status == 200);

    // Refusals, each before the body is read, in TF Serving's error shape.
    struct refusal {
        std::string method, path;
        int status;
        std::string message;
    };
    const refusal refusals[] = {
        {"POST", "/v1/models/mnist/versions/4:predict", 404, "Servable not found for request: Specific(mnist, 4)"},
        {"GET", "/v1/models/mnist/versions/4/metadata", 404, "Servable not found for request: Specific(mnist, 4)"},
        {"POST", "/v1/models/mnist/labels/beta:classify", 400, "Unrecognized servable version label: beta"},
        {"POST", "/v1/models/mnist:regress", 400, "this model is a classifier with no regression signature"},
        {"GET", "/v1/models/mnist:classify", 405, "method GET is not allowed on /v1/models/mnist:classify"},
        {"POST", "/v1/models/mnist/metadata", 405, "it takes GET, HEAD"},
        {"POST", "/v1/models/mnist:explain", 404, "no such resource: POST /v1/models/mnist:explain"},
    };
    for (const refusal& c : refusals) {
        CAPTURE(c.path);
        client = client_of(server);
        const auto r = c.method == "GET" ? client->Get(c.path) : client->Post(c.path, rows, "application/json");
        REQUIRE(r);
        CHECK(r->status == c.status);
        CHECK_MESSAGE(contains(error_of(r), c.message), error_of(r));
        CHECK(r->get_header_value("Connection") == "close");
        if (c.status == 405) CHECK(!r->get_header_value("Allow").empty());
    }
    // Malformed bodies in the new forms are 400s, never 5xx, and leave the server up.
    const std::string deep(100000, '[');
    for (const auto& [path, body] :
         {std::pair{"/v1/models/mnist:predict", "{\"inputs\": {\"x\": " + deep},
          std::pair{"/v1/models/mnist:predict", std::string(R"({"instances": [{"a": 1, "b": 2}]})")},
          std::pair{"/v1/models/mnist:classify", "{\"examples\": [{\"image\": " + deep},
          std::pair{"/v1/models/mnist:classify", std::string(R"({"examples": [{"image": [1e999]}]})")},
          std::pair{"/v1/models/mnist:classify", std::string(R"({"context": 1, "examples": []})")}}) {
        CAPTURE(body.substr(0, 60));
        client = client_of(server);
        const auto r = client->Post(path, body, "application/json");
        REQUIRE(r);
        CHECK(r->status == 400);
    }
    REQUIRE(server.alive());
    CHECK(server.stop() == 0);

    const auto bad_range = nnmark_tool("serve --model " + model_file.string() + " --input-range percent", dir);
    CHECK(bad_range.exit_code == 2);
    CHECK_MESSAGE(contains(bad_range.err, "--input-range"), bad_range.err);
}

// How much the server's RSS may grow over 800 malformed requests after a warm-up of 200.
// Without sanitizers it stays within a few hundred kB. AddressSanitizer's allocator
// fills its quarantine and size-class caches over thousands of requests before it is
// flat, so there the bound is loose and leaks are LeakSanitizer's to find: it runs when
// the server exits, which then is not 0.
#if defined(__SANITIZE_ADDRESS__)
constexpr long rss_growth_bound_kb = 32 * 1024;
#else
constexpr long rss_growth_bound_kb = 4 * 1024;
#endif

TEST_CASE("cli serve: concurrent clients are all answered, and 1,000 malformed requests leave it up with flat memory") {
    temp_dir dir;
    const dataset images = load_dataset("mnist", write_synthetic_mnist(dir.path / "mnist", 10, 20, 4), false);
    server_process server(small_mnist_model(dir), "--connections 16", dir);

    // 6 clients x 50 requests of 1-2 images, each on its own keep-alive connection.
    std::atomic<int> answered{0}, failed{0};
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> clients;
    for (int c = 0; c < 6; ++c)
        clients.emplace_back([&, c] {
            auto client = client_of(server);
            for (int i = 0; i < 50; ++i) {
                const index_t first = (c * 50 + i) % 18;
                const auto r =
                    client->Post("/v1/models/default:predict", body_of(images, first, 1 + i % 2), "application/json");
                (r && r->status == 200 ? answered : failed)++;
            }
        });
    for (auto& t : clients) t.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(answered == 300);
    CHECK(failed == 0);
    CHECK_MESSAGE(seconds < 60, "300 requests took " << seconds << " s");

    // Garbage of every kind, 1,000 times; memory is compared after a warm-up.
    std::string deep(100000, '[');
    const std::vector<std::string> garbage = {"",
                                              "{",
                                              "null",
                                              "[]",
                                              "{\"instances\": [[1, 2]]}",
                                              "{\"instances\": [" + deep,
                                              "{\"instances\": [\"\xff\xfe\"]}",
                                              "{\"instances\": [{\"b64\": \"!!!!\"}]}",
                                              "{\"instances\": [{\"b64\": \"iVBORw0KGgoAAAANSUhEUgAAAAI=\"}]}",
                                              body_of(images, 0, 1).substr(0, 3000),
                                              with_first_value(body_of(images, 0, 1), "255.5"),
                                              "{\"inputs\": {\"x\": " + deep,
                                              "{\"instances\": [{\"a\": 1, \"b\": 2}]}"};
    auto client = client_of(server);
    long warm_rss = 0;
    int refused = 0;
    for (int i = 0; i < 1000; ++i) {
        if (i == 200) warm_rss = server.rss_kb();
        const auto r = client->Post("/v1/models/default:predict", garbage[static_cast<std::size_t>(i) % garbage.size()],
                                    "application/json");
        if (!r) client = client_of(server);
        refused += r && (r->status == 400 || r->status == 413);
    }
    CHECK(refused == 1000);
    REQUIRE(server.alive());
    const long final_rss = server.rss_kb();
    CHECK_MESSAGE(final_rss - warm_rss < rss_growth_bound_kb,
                  "RSS grew from " << warm_rss << " kB to " << final_rss << " kB");
    const auto status = client->Get("/v1/models/default");
    REQUIRE(status);
    CHECK(status->status == 200);
    CHECK(server.stop() == 0);
}

// A TCP connection to the server for requests httplib's client would not send: chunked
// bodies written by hand, a byte at a time, several requests in one write.
class raw_connection {
public:
    explicit raw_connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        REQUIRE(fd_ >= 0);
        timeval patience{30, 0};  // a server that never answers fails the test instead of hanging it
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(port));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    }
    ~raw_connection() { ::close(fd_); }
    raw_connection(const raw_connection&) = delete;
    raw_connection& operator=(const raw_connection&) = delete;

    // False once the server stopped reading (it refused the request and closed).
    bool send(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (sent <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(sent));
        }
        return true;
    }

    // Everything the server sends until it closes the connection (or 30 s pass).
    std::string receive_all() {
        std::string got;
        char buffer[4096];
        for (ssize_t n; (n = ::recv(fd_, buffer, sizeof buffer, 0)) > 0;) got.append(buffer, static_cast<std::size_t>(n));
        return got;
    }

    // True when the server has closed the connection (recv gives 0 or a reset), after reading what it sent.
    bool closed_by_server() {
        char buffer[4096];
        ssize_t n;
        while ((n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT)) > 0) {
        }
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }

    void shut_writing() { ::shutdown(fd_, SHUT_WR); }

private:
    int fd_;
};

// The status codes of the HTTP responses in `bytes`, in order, each with its body.
std::vector<std::pair<int, std::string>> responses_in(const std::string& bytes) {
    std::vector<std::pair<int, std::string>> responses;
    for (std::size_t at = 0; (at = bytes.find("HTTP/1.1 ", at)) != std::string::npos;) {
        const int status = std::stoi(bytes.substr(at + 9, 3));
        const std::size_t headers_end = bytes.find("\r\n\r\n", at), length_at = bytes.find("Content-Length: ", at);
        if (headers_end == std::string::npos || length_at == std::string::npos || length_at > headers_end) break;
        const std::size_t length = std::stoul(bytes.substr(length_at + 16));
        responses.emplace_back(status, bytes.substr(headers_end + 4, length));
        at = headers_end + 4 + length;
    }
    return responses;
}

std::string post_head(const std::string& extra_headers) {
    return "POST /v1/models/default:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n";
}

TEST_CASE("cli serve: a chunked body over --max-body is refused while it is read; a form body gets 415") {
    temp_dir dir;
    server_process server(small_mnist_model(dir), "--max-body 65536", dir);

    // 16 MiB in 64 KiB chunks: the server answers 413 after the first few and closes; the
    // client stops sending when the server stops reading.
    raw_connection chunked(server.port());
    const std::string chunk = "10000\r\n" + std::string(65536, '[') + "\r\n";
    bool sent_all = chunked.send(post_head("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"));
    for (int i = 0; i < 256 && sent_all; ++i) sent_all = chunked.send(chunk);
    if (sent_all) chunked.send("0\r\n\r\n");
    const auto refused = responses_in(chunked.receive_all());
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].first == 413);
    CHECK_MESSAGE(contains(refused[0].second, "larger than the limit of 65536 bytes (--max-body)"), refused[0].second);
    CHECK(server.rss_kb() < 200 * 1024);  // 16 MiB read whole would parse into hundreds of MB

    // A chunked body within the limit is read and answered as any other.
    raw_connection small(server.port());
    const std::string body = R"({"instances": [[1, 2]]})";
    char size[16];
    std::snprintf(size, sizeof size, "%zx", body.size());
    small.send(post_head("Transfer-Encoding: chunked\r\nConnection: close\r\n") + size + "\r\n" + body +
               "\r\n0\r\n\r\n");
    const auto answered = responses_in(small.receive_all());
    REQUIRE(answered.size() == 1);
    CHECK(answered[0].first == 400);
    CHECK_MESSAGE(contains(answered[0].second, "request.instances[0]: expected an image"), answered[0].second);

    // A form-encoded body is not JSON: 415 naming the type, whatever its size.
    auto client = client_of(server);
    const auto form = client->Post("/v1/models/default:predict", std::string(10000, 'a'),
                                   "application/x-www-form-urlencoded");
    REQUIRE(form);
    CHECK(form->status == 415);
    CHECK_MESSAGE(contains(error_of(form), "expected Content-Type application/json, found "
                                           "\"application/x-www-form-urlencoded\""),
                  error_of(form));
    CHECK(server.stop() == 0);
}

TEST_CASE("cli serve: slow clients holding every worker do not keep a valid request waiting, and are dropped") {
    temp_dir dir;
    const dataset images = load_dataset("mnist", write_synthetic_mnist(dir.path / "mnist", 10, 20, 4), false);
    // Two workers, four clients that send half a request line and then nothing, and a
    // deadline far longer than the client's patience: only giving up the slow clients'
    // workers to the waiting connection lets the valid request through.
    server_process server(small_mnist_model(dir), "--connections 2 --read-timeout 120", dir);
    std::vector<std::unique_ptr<raw_connection>> slow;
    for (int i = 0; i < 4; ++i) {
        slow.push_back(std::make_unique<raw_connection>(server.port()));
        slow.back()->send("POST /v1/mod");
    }
    auto client = client_of(server);
    client->set_read_timeout(20s);
    const auto valid = client->Post("/v1/models/default:predict", body_of(images, 0, 1), "application/json");
    REQUIRE_MESSAGE(valid, "the valid request was not answered: " << httplib::to_string(valid.error()));
    CHECK(valid->status == 200);
    // The slow clients that held the workers were dropped, not answered.
    int dropped = 0;
    for (auto& s : slow) dropped += s->closed_by_server();
    CHECK(dropped >= 2);
    CHECK(server.stop() == 0);
}

TEST_CASE("cli serve: a request trickling in a byte at a time is cut off at --read-timeout") {
    temp_dir dir;
    server_process server(small_mnist_model(dir), "--read-timeout 1", dir);
    raw_connection slow(server.port());
    const std::string request = post_head("Content-Length: 100000\r\n");
    bool cut_off = false;
    for (std::size_t i = 0; i < 300 && !cut_off; ++i) {  // 300 bytes, 30 s: far past the deadline
        cut_off = !slow.send(std::string(1, request[i % request.size()])) || slow.closed_by_server();
        std::this_thread::sleep_for(100ms);
    }
    CHECK(cut_off);
    CHECK(server.stop() == 0);
}

TEST_CASE("cli serve: ten pipelined requests on one connection are answered in order") {
    temp_dir dir;
    const dataset images = load_dataset("mnist", write_synthetic_mnist(dir.path / "mnist", 10, 20, 4), false);
    server_process server(small_mnist_model(dir), "", dir);
    raw_connection connection(server.port());
    std::string requests;
    for (index_t i = 1; i <= 10; ++i) {
        const std::string body = body_of(images, 0, i);
        requests += post_head("Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                              "\r\n" + (i == 10 ? "Connection: close\r\n" : "")) +
                    body;
    }
    REQUIRE(connection.send(requests));
    const auto answers = responses_in(connection.receive_all());
    REQUIRE(answers.size() == 10);
    for (std::size_t i = 0; i < answers.size(); ++i) {
        CAPTURE(i);
        CHECK(answers[i].first == 200);
        CHECK(nlohmann::json::parse(answers[i].second)["predictions"].size() == i + 1);
    }
    CHECK(server.stop() == 0);
}

}  // namespace nnmark::testing::serve_cli_tests
