// Model files from outside nnmark, as the tool reads them: weights-only files with
// --arch, and every image's logits with eval --predictions (checked against PyTorch
// on the real MNIST test set when torch and the data are present).
#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/model/paper_models.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/train/trainer.hpp"

#include "../support/errors.hpp"
#include "../support/files.hpp"
#include "../support/skips.hpp"
#include "../support/torch_oracle.hpp"
#include "cli_runner.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

// `model`'s tensors without any metadata: what safetensors.torch.save_file(state_dict)
// writes for a PyTorch user.
void write_weights_only(const sequential<float>& model, const std::filesystem::path& path) {
    safetensors_writer w;
    for (const auto& p : model.named_parameters()) w.add_tensor<float>(p.name, dims_of(p.spec.shape), p.value);
    w.write(path);
}

}  // namespace

TEST_CASE("cli: a weights-only file with --arch evaluates as the full file does; every command reading a model takes --arch") {
    temp_dir dir;
    const auto cifar = write_synthetic_cifar10(dir.path / "cifar", 10, 30, 5);
    sequential<float> net = build_architecture<float>("paper-cifar10");
    net.initialize(5);
    save_model(net, dir.path / "full.safetensors", dataset_class_names("cifar10"));
    write_weights_only(net, dir.path / "weights.safetensors");
    const std::string data = " --dataset cifar10 --data " + cifar.string();

    const auto full = nnmark_tool("eval --model " + (dir.path / "full.safetensors").string() + data +
                                      " --json --predictions " + (dir.path / "full.csv").string(),
                                  dir);
    REQUIRE_MESSAGE(full.exit_code == 0, full.err);
    const auto bare = nnmark_tool("eval --model " + (dir.path / "weights.safetensors").string() + data, dir);
    CHECK(bare.exit_code == 2);
    CHECK(bare.one_line_error());
    CHECK_MESSAGE(contains(bare.err, "--arch"), bare.err);
    const auto weights = nnmark_tool("eval --model " + (dir.path / "weights.safetensors").string() +
                                         " --arch paper-cifar10" + data + " --json --predictions " +
                                         (dir.path / "weights.csv").string(),
                                     dir);
    REQUIRE_MESSAGE(weights.exit_code == 0, weights.err);
    CHECK(nlohmann::json::parse(weights.out)["accuracy"] == nlohmann::json::parse(full.out)["accuracy"]);
    CHECK(slurp(dir.path / "weights.csv") == slurp(dir.path / "full.csv"));  // every logit, to the bit

    // The wrong network for the file: exit 2, one line.
    const auto wrong = nnmark_tool("eval --model " + (dir.path / "weights.safetensors").string() +
                                       " --arch paper-mnist" + data,
                                   dir);
    CHECK(wrong.exit_code == 2);
    CHECK(wrong.one_line_error());

    for (const std::string command : {"eval", "verify", "serve", "calibrate", "attack prune", "attack finetune",
                                      "attack fineprune", "attack distill", "attack transform", "attack evade"}) {
        const auto help = nnmark_tool(command + " --help", dir);
        CHECK_MESSAGE(contains(help.out, "--arch"), command);
    }
}

TEST_CASE("cli: eval --predictions writes one row per image: index, label, predicted, logits") {
    temp_dir dir;
    const auto cifar = write_synthetic_cifar10(dir.path / "cifar", 10, 25, 7);
    sequential<float> net = build_architecture<float>("paper-cifar10");
    net.initialize(2);
    const auto model = dir.path / "m.safetensors";
    save_model(net, model);
    const auto csv = dir.path / "p.csv";
    const std::string data = " --dataset cifar10 --data " + cifar.string();
    const auto r = nnmark_tool("eval --model " + model.string() + data + " --json --predictions " + csv.string(), dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);

    std::string header;
    const auto rows = csv_rows(csv, header);
    CHECK(header == "index,label,predicted,logit_0,logit_1,logit_2,logit_3,logit_4,logit_5,logit_6,logit_7,logit_8,logit_9");
    const dataset test = load_dataset("cifar10", cifar, false);
    REQUIRE(rows.size() == 25);
    std::vector<index_t> all(25);
    std::iota(all.begin(), all.end(), 0);
    tensor<float> images;
    to_float(test, all, images);
    const tensor<float> logits = net.predict(images);
    index_t correct = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        REQUIRE(rows[i].size() == 13);
        CHECK(rows[i][0] == std::to_string(i));
        CHECK(std::stoi(rows[i][1]) == test.labels[i]);
        int best = 0;
        for (int k = 0; k < 10; ++k) {
            // 9 significant digits: the float read back is the float computed.
            CHECK(std::stof(rows[i][3 + static_cast<std::size_t>(k)]) == logits[static_cast<index_t>(i) * 10 + k]);
            if (logits[static_cast<index_t>(i) * 10 + k] > logits[static_cast<index_t>(i) * 10 + best]) best = k;
        }
        CHECK(std::stoi(rows[i][2]) == best);
        correct += best == test.labels[i];
    }
    CHECK(nlohmann::json::parse(r.out)["correct"] == correct);

    // Never over an input; only beside a model file (a service gives no logits).
    const auto over = nnmark_tool("eval --model " + model.string() + data + " --predictions " + model.string(), dir);
    CHECK(over.exit_code == 2);
    CHECK(over.one_line_error());
    const auto url = nnmark_tool("eval --url http://127.0.0.1:9/v1/models/m:predict" + data + " --predictions " +
                                     (dir.path / "u.csv").string(),
                                 dir);
    CHECK(url.exit_code == 2);
    CHECK_FALSE(std::filesystem::exists(dir.path / "u.csv"));
}

TEST_CASE("cli: eval --predictions matches PyTorch on the 10,000 MNIST test images to 1e-4" * NNMARK_EXTERNAL_TEST) {
    const std::filesystem::path mnist = source_dir() / "datasets" / "mnist";
    if (!std::filesystem::exists(mnist / "t10k-images-idx3-ubyte")) return skip_test(mnist.string() + " not present (run datasets/fetch.sh mnist)");
    if (!torch_available()) return skip_test(torch_missing_reason());
    temp_dir dir;
    // paper-mnist trained one epoch on 3,000 training images in batches of 32: mostly
    // right, confident answers, so the labels compared below mean something.
    const dataset train = load_dataset("mnist", mnist, true);
    std::vector<index_t> first(3000);
    std::iota(first.begin(), first.end(), 0);
    sequential<float> net = build_architecture<float>("paper-mnist");
    net.initialize(1);
    training_recipe recipe;
    recipe.epochs = 1;
    recipe.batch = 32;
    trainer<float> t(net, recipe);
    progress_line quiet(stderr, 5.0, true);
    t.fit(train.subset(first), nullptr, quiet);
    const auto model = dir.path / "m.safetensors";
    save_model(net, model, dataset_class_names("mnist"));

    const auto ours = dir.path / "nnmark.csv", theirs = dir.path / "torch.csv";
    const auto r = nnmark_tool("eval --model " + model.string() + " --dataset mnist --data " + mnist.string() +
                                   " --json --predictions " + ours.string(),
                               dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    REQUIRE(run_torch_oracle("--predict " + model.string() + " " + (mnist / "t10k-images-idx3-ubyte").string() + " " +
                             theirs.string()) == 0);
    std::string header, torch_header;
    const auto a = csv_rows(ours, header), b = csv_rows(theirs, torch_header);
    REQUIRE(a.size() == 10000);
    REQUIRE(b.size() == 10000);
    double largest = 0;
    index_t agree = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        REQUIRE(b[i].size() == 11);
        int torch_best = 0;
        for (std::size_t k = 0; k < 10; ++k) {
            largest = std::max(largest, std::abs(std::stod(a[i][3 + k]) - std::stod(b[i][1 + k])));
            if (std::stod(b[i][1 + k]) > std::stod(b[i][1 + static_cast<std::size_t>(torch_best)])) torch_best = static_cast<int>(k);
        }
        agree += std::stoi(a[i][2]) == torch_best;
    }
    MESSAGE("largest logit difference to PyTorch: " << largest << "; labels agree on " << agree << " of 10000; accuracy "
                                                     << nlohmann::json::parse(r.out)["accuracy"]);
    CHECK(largest <= 1e-4);
    CHECK(agree >= 9999);  // a tie within 1e-4 may break either way
    CHECK(nlohmann::json::parse(r.out)["accuracy"].get<double>() > 0.8);
}
