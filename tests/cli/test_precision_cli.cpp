// nnmark eval --precision: the same model in bf16 and int8 answers (almost) as in fp32,
// int8 calibrated on the training split; bad precisions and misplaced flags are exit 2.
#include "nnmark/data/cifar10.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/model/paper_models.hpp"

#include "../support/files.hpp"
#include "cli_runner.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace nnmark;
using namespace nnmark::testing;

TEST_CASE("cli: eval --precision bf16 and int8 label the images as fp32 does") {
    temp_dir dir;
    const auto cifar = write_synthetic_cifar10(dir.path / "cifar", 50, 40, 5);
    sequential<float> net = build_architecture<float>("paper-cifar10");
    net.initialize(3);
    const auto model = dir.path / "m.safetensors";
    save_model(net, model);
    const std::string common = "eval --model " + model.string() + " --dataset cifar10 --data " + cifar.string() + " --json";
    std::vector<int> fp32_labels;
    for (const char* precision : {"fp32", "bf16", "int8"}) {
        CAPTURE(precision);
        const auto csv = dir.path / (std::string(precision) + ".csv");
        const auto r = nnmark_tool(common + " --precision " + precision + " --calibration-images 30 --predictions " +
                                       csv.string(),
                                   dir);
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        const auto report = nlohmann::json::parse(r.out);
        CHECK(report["precision"] == precision);
        CHECK(report["images"] == 40);
        std::string header;
        std::vector<int> labels;
        for (const auto& row : csv_rows(csv, header)) labels.push_back(std::stoi(row.at(2)));  // index,label,predicted,...
        REQUIRE(labels.size() == 40);
        if (fp32_labels.empty()) {
            fp32_labels = labels;
            continue;
        }
        int same = 0;
        for (std::size_t i = 0; i < labels.size(); ++i) same += labels[i] == fp32_labels[i];
        CHECK(same >= 36);
    }
}

TEST_CASE("cli: a bad --precision, or one for a service, is exit 2") {
    temp_dir dir;
    for (const std::string args : {"eval --model m.safetensors --dataset mnist --precision fp16",
                                   "eval --url http://127.0.0.1:1/v1/models/m:predict --dataset mnist --precision int8",
                                   "eval --model m.safetensors --dataset mnist --precision int8 --calibration-images 0",
                                   "attack transform --model m.safetensors --dataset mnist --quantize fp16",
                                   "attack transform --model m.safetensors --dataset mnist --quantize int8 --out x.safetensors"}) {
        CAPTURE(args);
        const auto r = nnmark_tool(args, dir);
        CHECK(r.exit_code == 2);
    }
}
