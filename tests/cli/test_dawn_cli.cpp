// nnmark serve --dawn-registry and verify --dawn-registry end to end, on loopback: the
// server creates its registry with an owner-only secret and prints its commitment,
// answers the same input from the same client the same way twice and records what it
// altered; the served model itself (which answers its own labels) is not detected, by
// file or through HTTP, while the DAWN server asked by the same client (which repeats
// its altered answers) is; a registry whose commitment is not the expected one, a
// corrupted registry and a badly kept secret are refused with exit 2; a server killed
// with SIGKILL in a burst of requests leaves a registry that reads back whole and a
// restart that serves again.
#include "nnmark/data/dataset.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/serve/dawn_registry.hpp"
#include "nnmark/serve/predict_request.hpp"
#include "nnmark/serve/predict_response.hpp"
#include "nnmark/train/evaluate.hpp"

#include "../support/files.hpp"
#include "../support/tiny_data.hpp"
#include "cli_runner.hpp"
#include "server_process.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <random>
#include <set>
#include <thread>

namespace nnmark::testing::dawn_cli_tests {

std::filesystem::path small_mnist_model(const temp_dir& dir) {
    sequential<float> net = make_small_mnist_net<float>();
    net.initialize(11);
    const auto path = dir / "small.safetensors";
    save_model(net, path);
    return path;
}

// `count` MNIST-shaped images of random pixels.
dataset random_images(index_t count, std::uint64_t seed) {
    dataset data{tensor<std::uint8_t>(shape{count, 1, 28, 28}), std::vector<int>(static_cast<std::size_t>(count)), 10,
                 "random"};
    std::mt19937_64 random(seed);
    for (auto& pixel : data.images.span()) pixel = static_cast<std::uint8_t>(random() % 256);
    return data;
}

// The labels the server answers `client` for all of `data`, 8 images a request.
std::vector<int> ask(httplib::Client& http, const dataset& data, const std::string& client) {
    std::vector<int> labels;
    for (index_t first = 0; first < data.size(); first += 8) {
        const auto r = http.Post("/v1/models/default:predict", {{"X-Client", client}}, body_of(data, first, 8),
                                 "application/json");
        REQUIRE(r);
        REQUIRE_MESSAGE(r->status == 200, r->body);
        for (int label : read_prediction_labels(r->body, 8, {}, 10)) labels.push_back(label);
    }
    return labels;
}

TEST_CASE("cli serve --dawn-registry: the same input gets the same answer; the served model itself is not detected") {
    temp_dir dir;
    const auto model = small_mnist_model(dir);
    const auto registry = dir / "registry";
    const dataset images = random_images(48, 1);
    const std::vector<int> own = predict_labels(load_model<float>(model), images);
    std::vector<int> answered;
    {
        server_process server(
            model, "--dawn-registry " + registry.string() + " --dawn-rate 0.5 --dawn-client-header X-Client", dir);
        const auto http = client_of(server);
        answered = ask(*http, images, "alice");
        CHECK(ask(*http, images, "alice") == answered);
        CHECK(server.stop() == 0);
    }
    std::size_t altered = 0;
    for (std::size_t i = 0; i < own.size(); ++i) altered += answered[i] != own[i];
    CHECK(altered > 10);  // about half of 48
    CHECK(altered < 38);
    struct stat st {};
    REQUIRE(::stat((registry / "secret").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    const auto verified =
        nnmark_tool("verify --dawn-registry " + registry.string() + " --model " + model.string() + " --json", dir);
    CHECK_MESSAGE(verified.exit_code == 1, verified.err);  // it answers its own labels: no match
    const auto v = nlohmann::json::parse(verified.out);
    CHECK(v["queries"] == altered);  // asked twice, recorded once
    CHECK(v["matches"] == 0);
    CHECK(v["verdict"] == "not-detected");
    CHECK(v["null_source"] == "dawn");
    REQUIRE(v["clients"].size() == 1);
    CHECK(v["clients"][0]["client"] == "alice");
    CHECK(v["clients"][0]["queries"] == altered);

    const std::string commitment = v["commitment"];
    CHECK(commitment.size() == 64);
    const std::string verify_model = "verify --dawn-registry " + registry.string() + " --model " + model.string();
    CHECK(nnmark_tool(verify_model + " --expect-commitment " + commitment, dir).exit_code == 1);
    const auto other = nnmark_tool(verify_model + " --expect-commitment " + std::string(64, 'a'), dir);
    CHECK(other.exit_code == 2);
    CHECK(other.one_line_error());
    CHECK_MESSAGE(
        other.err.find("the registry's commitment " + commitment + " is not the expected") != std::string::npos,
        other.err);
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 20, 60, 3);
    const std::string remote_flags = " --dataset mnist --data " + mnist.string() + " --rate 1000 --seed 2 --json";
    {
        // Through HTTP, among decoys: a plain server of the same model answers its own labels.
        server_process plain(model, "", dir);
        const std::string url = "http://127.0.0.1:" + std::to_string(plain.port()) + "/v1/models/default:predict";
        const auto remote =
            nnmark_tool("verify --dawn-registry " + registry.string() + " --url " + url + remote_flags, dir);
        CHECK_MESSAGE(remote.exit_code == 1, remote.err);
        const auto r = nlohmann::json::parse(remote.out);
        CHECK(r["queries"] == altered);
        CHECK(r["matches"] == 0);
        CHECK(r["queries_sent"] == 2 * altered);  // each record among as many decoys
        CHECK(r["records_left_out"] == 0);        // all were asked in 0-255 pixels
        CHECK(r["commitment"] == commitment);
        CHECK(plain.stop() == 0);
    }
    {
        // The DAWN server itself, asked by the same client (127.0.0.1, no client header),
        // repeats every answer it altered: a perfect copy of its answers is detected.
        server_process victim(model, "--dawn-registry " + registry.string() + " --dawn-rate 0.5", dir);
        const auto http = client_of(victim);
        ask(*http, images, "ignored");
        // The commitment verify prints is the one the server prints at start, and stays across restarts.
        CHECK(victim.out().find("commitment " + commitment) != std::string::npos);
        const std::string url = "http://127.0.0.1:" + std::to_string(victim.port()) + "/v1/models/default:predict";
        const auto copy = nnmark_tool(
            "verify --dawn-registry " + registry.string() + " --client 127.0.0.1 --url " + url + remote_flags, dir);
        CHECK_MESSAGE(copy.exit_code == 0, copy.err);
        const auto c = nlohmann::json::parse(copy.out);
        CHECK(c["verdict"] == "watermark-present");
        CHECK(c["matches"] == c["queries"]);
        CHECK(c["queries"].get<int>() > 10);
        CHECK(c["log10_p_value"].get<double>() < -6);
        REQUIRE(c["clients"].size() == 1);
        CHECK(c["clients"][0]["client"] == "127.0.0.1");
        CHECK(victim.stop() == 0);
    }

    const auto nobody = nnmark_tool(verify_model + " --client bob", dir);
    CHECK(nobody.exit_code == 2);
    CHECK(nobody.one_line_error());
    CHECK(nobody.err.find("client \"bob\"") != std::string::npos);

    // A flipped byte in the first record's image: the registry does not check out.
    std::vector<unsigned char> records = read_file(registry / "records");
    records[100] ^= 1;
    write_file_atomically(registry / "records", std::span<const unsigned char>(records));
    const auto corrupted = nnmark_tool(verify_model, dir);
    CHECK(corrupted.exit_code == 2);
    CHECK(corrupted.one_line_error());
    CHECK_MESSAGE(corrupted.err.find("HMAC tag") != std::string::npos, corrupted.err);

    // A secret others may read is refused before serving.
    ::chmod((registry / "secret").c_str(), 0644);
    const auto exposed =
        nnmark_tool("serve --model " + model.string() + " --port 0 --dawn-registry " + registry.string(), dir);
    CHECK(exposed.exit_code == 2);
    CHECK(exposed.one_line_error());
    CHECK(exposed.err.find("mode 0644") != std::string::npos);
}

TEST_CASE("cli serve --dawn-registry: killed with SIGKILL in a burst, its registry reads back whole and it restarts") {
    temp_dir dir;
    const auto model = small_mnist_model(dir);
    const auto registry = dir / "registry";
    constexpr int clients = 4;
    std::vector<dataset> images;
    for (int c = 0; c < clients; ++c) images.push_back(random_images(400, 10 + static_cast<std::uint64_t>(c)));
    {
        server_process server(
            model, "--dawn-registry " + registry.string() + " --dawn-rate 0.5 --dawn-client-header X-Client", dir);
        std::atomic<int> answered{0};
        std::vector<std::thread> burst;
        for (int c = 0; c < clients; ++c)
            burst.emplace_back([&, c] {
                const auto http = client_of(server);
                for (index_t first = 0; first < images[static_cast<std::size_t>(c)].size(); first += 8) {
                    const auto r =
                        http->Post("/v1/models/default:predict", {{"X-Client", "client-" + std::to_string(c)}},
                                   body_of(images[static_cast<std::size_t>(c)], first, 8), "application/json");
                    if (!r) return;  // killed
                    answered += r->status == 200;
                }
            });
        while (answered < 20) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        ::kill(server.pid(), SIGKILL);
        for (auto& b : burst) b.join();
        CHECK(server.stop() == -1);
        CHECK(answered < clients * 50);  // killed mid-burst
    }
    const dawn_secret secret = open_dawn_secret(registry, false);
    const dawn_registry_contents contents = read_dawn_records(registry, secret);  // throws on any bad record
    CHECK(contents.records.size() > 0);
    std::set<std::vector<float>> sent;
    for (const dataset& d : images)
        for (index_t i = 0; i < d.size(); ++i) {
            const auto item = d.images.item(i);
            std::vector<float> image(item.size());
            for (std::size_t k = 0; k < item.size(); ++k) image[k] = static_cast<float>(item[k]) / 255.0f;
            sent.insert(std::move(image));
        }
    for (const dawn_record& r : contents.records) {
        CHECK(sent.contains(r.image));
        CHECK(r.client.starts_with("client-"));
        CHECK(r.answered_label != r.own_label);
    }
    server_process restarted(model, "--dawn-registry " + registry.string(), dir);
    CHECK(restarted.out().find(std::to_string(contents.records.size()) + " altered answers recorded") !=
          std::string::npos);
    CHECK(restarted.stop() == 0);
}

}  // namespace nnmark::testing::dawn_cli_tests
