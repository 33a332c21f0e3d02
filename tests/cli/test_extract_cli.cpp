// nnmark attack extract end to end on generated MNIST files and a served model on
// loopback: the surrogate learnt from 80 label-only answers agrees with the service and
// is written where --out says; score vectors train it too; a Knockoff pool adds the
// extra set's images; more queries than the pool holds, or a batch over the server's
// limit, is exit 2 with one line in the command's words; against
// a DAWN server the registry records the altered answers and verify --dawn-registry
// asks the surrogate about them.
#include "nnmark/model/model_file.hpp"

#include "../support/files.hpp"
#include "../support/tiny_data.hpp"
#include "cli_runner.hpp"
#include "server_process.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace nnmark::testing::extract_cli_tests {

// A victim trained by `nnmark train` on generated MNIST files (100 training images, 40
// test images: the evaluation half has 20), and the flags extraction needs.
struct served_victim {
    temp_dir dir;
    std::string mnist, arch, model;
    served_victim() {
        mnist = write_synthetic_mnist(dir.path / "mnist", 100, 40, 4).string();
        arch = write_architecture(make_small_mnist_net<float>(), dir, "small.json");
        model = (dir.path / "victim.safetensors").string();
        const auto trained = nnmark_tool("train --dataset mnist --data " + mnist + " --arch " + arch +
                                             " --epochs 10 --batch 16 --quiet --out " + model,
                                         dir);
        REQUIRE_MESSAGE(trained.exit_code == 0, trained.err);
    }

    // attack extract against `server` from the whole training set (train-fraction 1).
    run_result extract(const server_process& server, const std::string& more) const {
        const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/models/default:predict";
        return nnmark_tool("attack extract --url " + url + " --dataset mnist --data " + mnist + " --arch " + arch +
                               " --attacker-data train-fraction --train-fraction 1 --epochs 15 --batch 16 --rate 1000"
                               " --quiet --json " + more,
                           dir);
    }
};

const served_victim& victim() {
    static const served_victim v;
    return v;
}

nlohmann::json extracted_json(const run_result& r) {
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return nlohmann::json::parse(r.out);
}

}  // namespace nnmark::testing::extract_cli_tests

using namespace nnmark;
using namespace nnmark::testing;
using namespace nnmark::testing::extract_cli_tests;

TEST_CASE("cli attack extract: a surrogate learnt from 80 label-only answers agrees with the service") {
    const served_victim& v = victim();
    const auto out = v.dir / "surrogate.safetensors";
    server_process server(v.model, "", v.dir);
    const nlohmann::json r = extracted_json(v.extract(server, "--queries 80 --query-batch 16 --out " + out.string()));
    CHECK(r["attack"] == "extract");
    CHECK(r["queries"] == 80);
    CHECK(r["requests"] == 5);  // 80 images, 16 a request
    CHECK(r["pool_images"] == 100);
    CHECK(r["soft_targets"] == false);
    CHECK(r["evaluation_images"] == 20);
    CHECK(r["out"] == out.string());
    CHECK(r["seconds"].get<double>() > 0);
    CHECK(r["agreement"].get<double>() >= 0.9);  // bars of ten heights: easy to copy
    CHECK(r["surrogate_accuracy"].get<double>() >= 0.8);
    CHECK(r["pool"].get<std::string>().find("random 100, seed 1") != std::string::npos);
    // The file is a model of the surrogate's architecture that loads.
    const sequential<float> surrogate = load_model<float>(out);
    CHECK(architecture_json(surrogate) == architecture_json(make_small_mnist_net<float>()));
    CHECK(server.stop() == 0);
}

TEST_CASE("cli attack extract --scores: the service's score vectors are soft targets") {
    const served_victim& v = victim();
    server_process server(v.model, "", v.dir);
    const nlohmann::json r =
        extracted_json(v.extract(server, "--queries 60 --signature scores --label-field scores --scores"));
    CHECK(r["soft_targets"] == true);
    CHECK(r["queries"] == 60);
    CHECK(r["requests"] == 4);  // verify's default of 16 images a request
    CHECK(r["out"].is_null());
    CHECK(r["agreement"].get<double>() >= 0.9);
}

TEST_CASE("cli attack extract --extra-pool: a Knockoff pool adds another dataset's training images") {
    const served_victim& v = victim();
    const auto other = write_synthetic_mnist(v.dir.path / "other", 50, 10, 8);
    server_process server(v.model, "", v.dir);
    const nlohmann::json r = extracted_json(
        v.extract(server, "--queries 150 --query-batch 50 --extra-pool fashion-mnist --extra-data " + other.string()));
    CHECK(r["pool_images"] == 150);
    CHECK(r["queries"] == 150);
    CHECK(r["requests"] == 3);
    CHECK(r["pool"].get<std::string>().find("fashion-mnist") != std::string::npos);
}

TEST_CASE("cli attack extract: more queries than the pool holds, or a batch over the server's limit, is exit 2 with one line") {
    const served_victim& v = victim();
    server_process server(v.model, "--dawn-registry " + (v.dir / "unused").string(), v.dir);
    const auto r = v.extract(server, "--queries 101");
    CHECK(r.exit_code == 2);
    CHECK(r.one_line_error());
    CHECK_MESSAGE(r.err.find("expected 1 to 100 queries") != std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find("asked for 101") != std::string::npos, r.err);
    // A batch over the server's limit is refused in the words of this command.
    const auto too_big = v.extract(server, "--queries 80 --query-batch 65");
    CHECK(too_big.exit_code == 2);
    CHECK(too_big.one_line_error());
    CHECK_MESSAGE(too_big.err.find("attack extract --url: ") != std::string::npos, too_big.err);
    CHECK_MESSAGE(too_big.err.find("a smaller --query-batch may fit") != std::string::npos, too_big.err);
    CHECK(server.stop() == 0);
    // No query reached the server: its registry holds no record.
    CHECK(std::filesystem::file_size(v.dir / "unused" / "records") == 0);
}

TEST_CASE("cli attack extract against DAWN: the registry records the altered answers, verify asks the surrogate") {
    const served_victim& v = victim();
    const auto registry = v.dir / "dawn";
    const auto out = v.dir / "stolen.safetensors";
    {
        server_process server(v.model, "--dawn-registry " + registry.string() + " --dawn-rate 0.5", v.dir);
        const nlohmann::json r = extracted_json(v.extract(server, "--queries 80 --out " + out.string()));
        CHECK(r["queries"] == 80);
        // Half the answers are keyed wrong ones: the surrogate cannot agree with both halves.
        CHECK(r["agreement"].get<double>() < 0.95);
        CHECK(server.stop() == 0);
    }
    CHECK(std::filesystem::file_size(registry / "records") > 0);
    const auto verified =
        nnmark_tool("verify --dawn-registry " + registry.string() + " --model " + out.string() + " --json", v.dir);
    CHECK_MESSAGE((verified.exit_code == 0 || verified.exit_code == 1), verified.err);
    const nlohmann::json d = nlohmann::json::parse(verified.out);
    CHECK(d["null_source"] == "dawn");
    CHECK(d["queries"].get<int>() > 20);  // about half of 80 altered and recorded
    CHECK(d["queries"].get<int>() < 60);
    CHECK(d["matches"].get<int>() >= 0);
    CHECK(d["matches"].get<int>() <= d["queries"].get<int>());
    CHECK(d["p_value"].get<double>() >= 0.0);
    CHECK(d["p_value"].get<double>() <= 1.0);
    CHECK((verified.exit_code == 0) == (d["verdict"] == "watermark-present"));
}
