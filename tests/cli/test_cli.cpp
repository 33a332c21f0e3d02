// The nnmark tool as a user meets it: help texts, exit codes (0 success, 2 bad input
// with one clear line) and JSON output, on small generated datasets.
#include "nnmark/data/cifar10.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/model/paper_models.hpp"

#include "../support/files.hpp"
#include "cli_runner.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

// A CIFAR-10 directory of generated images: 50 training, 20 test.
std::filesystem::path write_tiny_cifar(const temp_dir& dir) { return write_synthetic_cifar10(dir.path / "cifar", 50, 20, 5); }

// An MNIST directory whose test images file is replaced by `images` (labels valid).
std::filesystem::path write_mnist_test_files(const temp_dir& dir, const bytes& images, const bytes& labels) {
    const auto folder = dir.path / "mnist";
    std::filesystem::create_directories(folder);
    write_bytes(folder / "t10k-images-idx3-ubyte", images);
    write_bytes(folder / "t10k-labels-idx1-ubyte", labels);
    return folder;
}

bytes valid_labels(std::uint32_t n, unsigned char label = 3) { return idx_file({n}, bytes(n, label)); }
bytes valid_images(std::uint32_t n) { return idx_file({n, 28, 28}, bytes(n * 784, 7)); }

}  // namespace

TEST_CASE("cli: help, and a usage error without a command") {
    temp_dir dir;
    const auto help = run_program(NNMARK_TOOL_PATH, "--help", dir);
    CHECK(help.exit_code == 0);
    CHECK(contains(help.out, "train"));
    CHECK(contains(help.out, "eval"));
    for (const char* command : {"train", "eval"}) {
        CAPTURE(command);
        const auto r = run_program(NNMARK_TOOL_PATH, std::string(command) + " --help", dir);
        CHECK(r.exit_code == 0);
        CHECK(contains(r.out, "--dataset"));
    }
    const auto none = run_program(NNMARK_TOOL_PATH, "", dir);
    CHECK(none.exit_code == 2);
    CHECK(none.one_line_error());
    const auto unknown = run_program(NNMARK_TOOL_PATH, "train --dataset mnist --out x --epochs zero", dir);
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.one_line_error());
}

TEST_CASE("cli: bad data gives exit 2 and one clear line naming the problem") {
    temp_dir dir;
    struct bad_case {
        const char* what;
        std::function<std::filesystem::path()> make;
        std::string dataset;
        std::string expected;  // a part of the message
    };
    const bytes complete = valid_images(4);
    const bytes truncated(complete.begin(), complete.end() - 100);  // 100 bytes of pixels missing
    bytes wrong_magic = valid_images(4);
    wrong_magic[3] = 0x02;
    const std::vector<bad_case> cases = {
        {"missing directory", [&] { return dir.path / "nowhere"; }, "mnist", "does not exist"},
        {"truncated IDX", [&] { return write_mnist_test_files(dir, truncated, valid_labels(4)); }, "mnist",
         "t10k-images-idx3-ubyte"},
        {"wrong magic", [&] { return write_mnist_test_files(dir, wrong_magic, valid_labels(4)); }, "mnist", "magic"},
        {"gzip garbage",
         [&] {
             const auto folder = write_mnist_test_files(dir, valid_images(4), valid_labels(4));
             std::filesystem::remove(folder / "t10k-images-idx3-ubyte");
             write_bytes(folder / "t10k-images-idx3-ubyte.gz", bytes{0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
             return folder;
         },
         "mnist", "t10k-images-idx3-ubyte.gz"},
        {"IDX label 11", [&] { return write_mnist_test_files(dir, valid_images(4), valid_labels(4, 11)); }, "mnist",
         "11"},
        {"CIFAR size not a multiple of 3073",
         [&] {
             const auto folder = write_tiny_cifar(dir);
             write_bytes(folder / "cifar-10-batches-bin" / "test_batch.bin", bytes(3073 * 2 + 5, 1));
             return folder;
         },
         "cifar10", "3073"},
        {"CIFAR label 11",
         [&] {
             const auto folder = write_tiny_cifar(dir);
             bytes record(3073, 9);
             record[0] = 11;
             write_bytes(folder / "cifar-10-batches-bin" / "test_batch.bin", record);
             return folder;
         },
         "cifar10", "11"},
    };
    // Any valid model of the right architecture: eval reads the data after the model.
    const auto mnist_model = dir.path / "mnist-model.safetensors";
    const auto cifar_model = dir.path / "cifar-model.safetensors";
    {
        auto m = build_architecture<float>("paper-mnist");
        m.initialize(1);
        save_model(m, mnist_model);
        auto c = build_architecture<float>("paper-cifar10");
        c.initialize(1);
        save_model(c, cifar_model);
    }
    for (const auto& c : cases) {
        CAPTURE(c.what);
        std::filesystem::remove_all(dir.path / "mnist");
        std::filesystem::remove_all(dir.path / "cifar");
        const auto folder = c.make();
        const auto& model = c.dataset == "cifar10" ? cifar_model : mnist_model;
        const auto r = nnmark_tool("eval --model " + model.string() + " --dataset " + c.dataset + " --data " +
                                       folder.string(),
                                   dir);
        CHECK(r.exit_code == 2);
        CHECK(r.one_line_error());
        CHECK_MESSAGE(contains(r.err, c.expected), r.err);
    }
}

TEST_CASE("cli: a model file for another architecture gives exit 2") {
    temp_dir dir;
    const auto cifar = write_tiny_cifar(dir);
    auto mnist_net = build_architecture<float>("paper-mnist");
    mnist_net.initialize(1);
    const auto model = dir.path / "mnist.safetensors";
    save_model(mnist_net, model);
    const auto r = nnmark_tool("eval --model " + model.string() + " --dataset cifar10 --data " + cifar.string(), dir);
    CHECK(r.exit_code == 2);
    CHECK(r.one_line_error());
    CHECK_MESSAGE(contains(r.err, "[1, 28, 28]"), r.err);

    // Tensors of one architecture under the metadata of another.
    bytes file = read_file(model);
    const std::string text(file.begin(), file.end());
    const auto at = text.find("\\\"out_channels\\\":32");
    REQUIRE(at != std::string::npos);
    file[at + std::string("\\\"out_channels\\\":").size()] = '4';  // 32 -> 42 filters
    write_bytes(dir.path / "tampered.safetensors", file);
    const auto t = nnmark_tool("eval --model " + (dir.path / "tampered.safetensors").string() +
                                   " --dataset cifar10 --data " + cifar.string(),
                               dir);
    CHECK(t.exit_code == 2);
    CHECK(t.one_line_error());
    CHECK_MESSAGE(contains(t.err, "0.weight"), t.err);
}

TEST_CASE("cli: train and eval on generated CIFAR-10 files, with JSON output") {
    temp_dir dir;
    const auto cifar = write_tiny_cifar(dir);
    const auto model = dir.path / "tiny.safetensors";
    const auto r = nnmark_tool("train --dataset cifar10 --data " + cifar.string() + " --epochs 1 --batch 10 --out " +
                                   model.string() + " --json --quiet",
                               dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const auto report = nlohmann::json::parse(r.out);
    for (const char* field : {"test_accuracy", "epochs", "seconds", "images_per_second"})
        CHECK_MESSAGE(report.contains(field), field);
    CHECK(report["epochs"] == 1);
    CHECK(std::filesystem::exists(model));
    CHECK_FALSE(std::filesystem::exists(model.string() + ".checkpoint"));

    const auto e = nnmark_tool("eval --model " + model.string() + " --dataset cifar10 --data " + cifar.string() + " --json",
                               dir);
    REQUIRE_MESSAGE(e.exit_code == 0, e.err);
    const auto evaluation = nlohmann::json::parse(e.out);
    CHECK(evaluation["images"] == 20);
    CHECK(evaluation["accuracy"].get<double>() == doctest::Approx(report["test_accuracy"].get<double>()));
}

TEST_CASE("cli: the custom network tutorial trains, saves and reloads bit-identically on generated files") {
    temp_dir dir;
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 64, 20, 3);
    const auto model = dir.path / "custom.safetensors";
    const auto r = run_program(std::string(NNMARK_EXAMPLES_DIR) + "/example_custom_network",
                               mnist.string() + " 1 " + model.string(), dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(contains(r.out, "test accuracy"));
    CHECK(contains(r.out, "reloaded model: test logits bit-identical"));
    // The file records the user's layer, and the tool, which does not know it, says so.
    const auto eval = run_program(NNMARK_TOOL_PATH, "eval --model " + model.string() + " --dataset mnist --data " +
                                                        mnist.string(), dir);
    CHECK(eval.exit_code == 2);
    CHECK(contains(eval.err, "unknown layer kind \"prelu\""));
}

TEST_CASE("cli: the CIFAR-10 tutorial example runs on generated files") {
    temp_dir dir;
    const auto cifar = write_tiny_cifar(dir);
    const auto r = run_program(std::string(NNMARK_EXAMPLES_DIR) + "/example_cifar10",
                               cifar.string() + " 1 " + (dir.path / "example.safetensors").string(), dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(contains(r.out, "test accuracy"));
    CHECK(std::filesystem::exists(dir.path / "example.safetensors"));
}
