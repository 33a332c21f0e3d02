// The watermark commands end to end on generated MNIST-format files: embed writes a model
// and a key, verify finds the watermark (exit 0) in it and not (exit 1) in a model
// trained without the key, calibrate stores a null rate, and a tampered key is refused.
#include "../support/files.hpp"
#include "../support/tiny_data.hpp"
#include "cli_runner.hpp"

#include "nnmark/watermark/secret_choices.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace nnmark;
using namespace nnmark::testing;

namespace watermark_cli_tests {

// The data flags of a tiny embed: the generated MNIST files, the small network, `training`.
std::string tiny_embed_flags(const temp_dir& dir, const std::filesystem::path& mnist, const std::string& training) {
    return " --dataset mnist --data " + mnist.string() + " --arch " +
           write_architecture(make_small_mnist_net<float>(), dir, "small.json") + training;
}

}  // namespace watermark_cli_tests

TEST_CASE("cli: embed, verify, calibrate and inspect a watermark") {
    temp_dir dir;
    // 200 training images (20 of the source class 1), 60 test images. The paper's choices
    // (digit 1 -> 0): this tiny model answers some drawn targets for half its decoys, and the
    // control then needs more than 16 triggers to reach alpha 1e-6.
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 200, 60, 9);
    const std::string decoys = " --dataset mnist --data " + mnist.string();
    const std::string data = decoys + " --arch " + write_architecture(make_small_mnist_net<float>(), dir, "small.json");
    const auto model = dir.path / "marked.safetensors", key = dir.path / "marked.key";
    const auto e = nnmark_tool("embed" + data + " --trigger content --paper-choices --count 16 --repeat 8 --epochs 3 --batch 16"
                                   " --lr 0.02 --quiet --json --out " + model.string() + " --key-out " + key.string(),
                               dir);
    REQUIRE_MESSAGE(e.exit_code == 0, e.err);
    const auto embedded = nlohmann::json::parse(e.out);
    for (const char* field : {"test_accuracy", "trigger_accuracy", "trigger_accuracy_new", "commitment"})
        CHECK_MESSAGE(embedded.contains(field), field);
    CHECK(embedded["commitment"].get<std::string>().size() == 64);
    CHECK(embedded["trigger_accuracy"].get<double>() >= 0.9);

    // The watermarked model answers the key.
    const auto v = nnmark_tool("verify --model " + model.string() + " --key " + key.string() + decoys +
                                   " --alpha 1e-6 --json",
                               dir);
    CHECK_MESSAGE(v.exit_code == 0, v.err);
    const auto verdict = nlohmann::json::parse(v.out);
    CHECK(verdict["verdict"] == "watermark-present");
    CHECK(verdict["null_source"] == "assumed");
    CHECK(contains(v.err, "not calibrated"));
    for (const char* field : {"queries", "matches", "trigger_accuracy", "null_rate", "p_value", "alpha"})
        CHECK_MESSAGE(verdict.contains(field), field);
    // The suspect was asked the 60 test images too, and classifies them; the control ran.
    CHECK(verdict["suspect_checks"]["decoys"] == 60);
    CHECK(verdict["suspect_checks"]["passed"] == true);
    CHECK(verdict["suspect_checks"]["non_finite_outputs"] == 0);
    CHECK(verdict["control"]["run"] == true);

    // The published commitment: the text output prints it, a different one is refused.
    const std::string commitment = embedded["commitment"].get<std::string>();
    const auto text = nnmark_tool("verify --model " + model.string() + " --key " + key.string() + decoys +
                                      " --expect-commitment " + commitment,
                                  dir);
    CHECK_MESSAGE(text.exit_code == 0, text.err);
    CHECK(contains(text.out, "key commitment: " + commitment));
    std::string other = commitment;
    other[0] = other[0] == 'a' ? 'b' : 'a';
    const auto forged = nnmark_tool("verify --model " + model.string() + " --key " + key.string() + decoys +
                                        " --expect-commitment " + other,
                                    dir);
    CHECK(forged.exit_code == 2);
    CHECK(forged.one_line_error());
    CHECK_MESSAGE(contains(forged.err, "is not the expected " + other), forged.err);
    const auto empty = nnmark_tool("verify --model " + model.string() + " --key " + key.string() + decoys +
                                       " --expect-commitment ''",
                                   dir);
    CHECK(empty.exit_code == 2);
    CHECK_MESSAGE(contains(empty.err, "expected 64 hex digits"), empty.err);

    // A model trained without the key does not, against a null calibrated on OTHER clean
    // models: calibrated on the suspect itself, "not detected" could not fail.
    auto train_clean = [&](const std::string& name, int seed) {
        const auto path = dir.path / (name + ".safetensors");
        REQUIRE(nnmark_tool("train" + data + " --epochs 2 --batch 16 --lr 0.02 --seed " + std::to_string(seed) +
                                " --quiet --out " + path.string(),
                            dir)
                    .exit_code == 0);
        return path;
    };
    const auto clean = train_clean("clean", 5), reference = train_clean("reference", 6),
               second = train_clean("second", 7);
    const auto one = nnmark_tool("calibrate --key " + key.string() + " --models " + reference.string(), dir);
    CHECK(one.exit_code == 2);
    CHECK_MESSAGE(contains(one.err, "at least 2 are needed"), one.err);
    const auto c = nnmark_tool(
        "calibrate --key " + key.string() + " --models " + reference.string() + " " + second.string() + " --json", dir);
    REQUIRE_MESSAGE(c.exit_code == 0, c.err);
    const auto calibration = nlohmann::json::parse(c.out);
    CHECK(calibration["queries"] == 32);
    CHECK(calibration["models"].size() == 2);
    CHECK(calibration["models"][0]["name"] == "reference.safetensors");
    CHECK(calibration["models"][0]["sha256"].get<std::string>().size() == 64);
    const auto n = nnmark_tool("verify --model " + clean.string() + " --key " + key.string() + decoys + " --json", dir);
    CHECK_MESSAGE(n.exit_code == 1, n.err);
    CHECK(nlohmann::json::parse(n.out)["verdict"] == "not-detected");
    CHECK(nlohmann::json::parse(n.out)["null_source"] == "calibrated");

    // --arch names a network or an architecture file; anything else is refused.
    const auto bad = nnmark_tool("train --dataset mnist --data " + mnist.string() + " --arch nowhere.json --out x", dir);
    CHECK(bad.exit_code == 2);
    CHECK(bad.one_line_error());
    CHECK_MESSAGE(contains(bad.err, "nowhere.json"), bad.err);

    // inspect and show.
    const auto i = nnmark_tool("key inspect --key " + key.string() + " --json", dir);
    REQUIRE_MESSAGE(i.exit_code == 0, i.err);
    CHECK(nlohmann::json::parse(i.out)["commitment"] == embedded["commitment"]);
    CHECK(nlohmann::json::parse(i.out)["recipe"]["kind"] == "content");
    const auto s = nnmark_tool("key show --key " + key.string() + " --png " + (dir.path / "key.png").string(), dir);
    CHECK_MESSAGE(s.exit_code == 0, s.err);
    CHECK(std::filesystem::file_size(dir.path / "key.png") > 100);

    // One changed byte in the trigger images: the commitment no longer matches.
    bytes file = read_file(key);
    file[file.size() - 30] ^= 0x01;
    write_bytes(dir.path / "tampered.key", file);
    const auto t = nnmark_tool("verify --model " + model.string() + " --key " + (dir.path / "tampered.key").string() + decoys, dir);
    CHECK(t.exit_code == 2);
    CHECK(t.one_line_error());
    CHECK_MESSAGE(contains(t.err, "tampered"), t.err);
}

TEST_CASE("cli: the CIFAR-10 watermark path on generated CIFAR-format files") {
    // CIFAR-10's unrelated triggers are MNIST digits, scaled to 32x32x3; their class and the
    // target are drawn from the key seed. Tiny budget: this checks the path end to end, not
    // the accuracy.
    temp_dir dir;
    const auto cifar = write_synthetic_cifar10(dir.path / "cifar", 50, 20, 3);
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 100, 100, 4);
    const auto model = dir.path / "marked.safetensors", key = dir.path / "marked.key";
    const auto e = nnmark_tool("embed --dataset cifar10 --data " + cifar.string() + " --unrelated-data " + mnist.string() +
                                   " --trigger unrelated --count 8 --repeat 2 --epochs 1 --batch 16 --quiet --json --arch " +
                                   write_architecture(make_small_image_net<float>(shape{3, 32, 32}), dir, "small.json") +
                                   " --out " +
                                   model.string() + " --key-out " + key.string(),
                               dir);
    REQUIRE_MESSAGE(e.exit_code == 0, e.err);
    const auto embedded = nlohmann::json::parse(e.out);
    CHECK(embedded["trigger"] == "unrelated");
    CHECK(embedded["architecture"] == (dir.path / "small.json").string());

    const auto i = nnmark_tool("key inspect --key " + key.string() + " --json", dir);
    REQUIRE_MESSAGE(i.exit_code == 0, i.err);
    const auto inspected = nlohmann::json::parse(i.out);
    CHECK(inspected["image_shape"] == "[3, 32, 32]");
    CHECK(inspected["recipe"]["source_dataset"] == "mnist");
    CHECK(inspected["recipe"]["target"] == embedded["target"]);
    CHECK(inspected["recipe"]["source"] == embedded["source"]);

    const auto v = nnmark_tool("verify --model " + model.string() + " --key " + key.string() + " --dataset cifar10 --data " +
                                   cifar.string() + " --json",
                               dir);
    const auto verdict = nlohmann::json::parse(v.out);
    // Exit 0 means the watermark was found, 1 that it was not: the code matches the verdict,
    // and the verdict its own p-value and alpha (present when p <= alpha).
    CHECK_MESSAGE(v.exit_code == (verdict["verdict"] == "watermark-present" ? 0 : 1), v.err);
    CHECK(verdict["verdict"] == (verdict["p_value"].get<double>() <= verdict["alpha"].get<double>() ? "watermark-present"
                                                                                                   : "not-detected"));
    CHECK(verdict["queries"] == 8);
    CHECK(verdict["trigger_accuracy"].get<double>() == doctest::Approx(verdict["matches"].get<double>() / 8));
    CHECK(verdict["trigger_accuracy"] == doctest::Approx(embedded["trigger_accuracy"].get<double>()));
}

TEST_CASE("cli: embed draws the key's secret choices, keeps the ones given, and --paper-choices the paper's") {
    temp_dir dir;
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 100, 20, 5);
    const std::string data = watermark_cli_tests::tiny_embed_flags(
        dir, mnist, " --count 8 --repeat 2 --epochs 1 --batch 16 --quiet --json");
    // The recipe the key holds after `embed <flags>`.
    const auto embedded_recipe = [&](const std::string& name, const std::string& flags) {
        const auto model = dir.path / (name + ".safetensors"), key = dir.path / (name + ".key");
        const auto e = nnmark_tool("embed" + data + flags + " --out " + model.string() + " --key-out " + key.string(), dir);
        REQUIRE_MESSAGE(e.exit_code == 0, e.err);
        const auto i = nnmark_tool("key inspect --key " + key.string() + " --json", dir);
        REQUIRE_MESSAGE(i.exit_code == 0, i.err);
        const auto recipe = nlohmann::json::parse(i.out)["recipe"];
        const auto embedded = nlohmann::json::parse(e.out);
        CHECK(embedded["source"] == recipe["source"]);
        CHECK(embedded["target"] == recipe["target"]);
        return recipe;
    };
    const auto drawn = [](std::uint64_t seed) {
        trigger_recipe recipe = default_recipe("mnist", trigger_kind::content);
        recipe.seed = seed;
        return draw_secret_choices(recipe, {}, shape{1, 28, 28});
    };

    const auto secret = embedded_recipe("secret", " --key-seed 12");
    const trigger_recipe expected = drawn(12);
    CHECK(secret["source"] == expected.source);
    CHECK(secret["target"] == expected.target);
    CHECK(secret["generator"]["x"] == expected.content.x);
    CHECK(secret["generator"]["y"] == expected.content.y);

    const auto given = embedded_recipe("given", " --key-seed 12 --text K3Y --text-corner top-right --target " +
                                                    std::to_string((expected.source + 5) % 10));
    CHECK(given["source"] == expected.source);
    CHECK(given["target"] == (expected.source + 5) % 10);
    CHECK(given["generator"]["text"] == "K3Y");
    CHECK(given["generator"]["x"] == 28 - 17 - 1);  // 3 letters: 17 pixels wide
    CHECK(given["generator"]["y"] == 28 - 7 - 1);

    // Without --key-seed, each embed draws a secret seed of its own: two owners who keep the
    // defaults do not share a key.
    const auto first_default = embedded_recipe("default-1", ""), second_default = embedded_recipe("default-2", "");
    CHECK(first_default["seed"] != second_default["seed"]);
    CHECK(first_default["seed"] != 1);  // not the training seed

    const auto paper = embedded_recipe("paper", " --key-seed 12 --paper-choices");
    CHECK(paper["source"] == 1);
    CHECK(paper["target"] == 0);
    CHECK(paper["generator"]["x"] == 1);
    CHECK(paper["generator"]["y"] == 1);

    for (const char* bad : {" --text-corner middle", " --text WATERMARKS", " --source 3 --target 3"}) {
        CAPTURE(bad);
        const auto r = nnmark_tool("embed" + data + bad + " --out " + (dir.path / "bad.safetensors").string() +
                                       " --key-out " + (dir.path / "bad.key").string(),
                                   dir);
        CHECK(r.exit_code == 2);
        CHECK(r.one_line_error());
        CHECK(!std::filesystem::exists(dir.path / "bad.key"));
    }
}

TEST_CASE("cli: watermark commands reject bad input with exit 2") {
    temp_dir dir;
    for (const char* args : {"verify --model nowhere.safetensors --key nowhere.key", "embed --dataset mnist --out x",
                             "embed --dataset mnist --trigger stamp --out x --key-out y", "key inspect",
                             "calibrate --key nowhere.key --models a b"}) {
        CAPTURE(args);
        const auto r = nnmark_tool(args, dir);
        CHECK(r.exit_code == 2);
        CHECK(r.one_line_error());
    }
}

TEST_CASE("cli: natural triggers (held-out training images, random labels) make a key verify accepts") {
    temp_dir dir;
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 200, 60, 11);
    const std::string decoys = " --dataset mnist --data " + mnist.string();
    const std::string arch = write_architecture(make_small_mnist_net<float>(), dir, "small.json");
    const std::string data = decoys + " --arch " + arch +
                             " --trigger natural --count 16 --repeat 40 --epochs 4 --batch 16 --lr 0.02 --quiet --json";
    const auto model = dir.path / "natural.safetensors", key = dir.path / "natural.key";
    const std::string outputs = " --out " + model.string() + " --key-out " + key.string();

    // One fixed label has no null on ordinary images: refused before any training.
    const auto target = nnmark_tool("embed" + data + " --labels target" + outputs, dir);
    CHECK(target.exit_code == 2);
    CHECK(target.one_line_error());
    CHECK_MESSAGE(contains(target.err, "natural triggers need label mode random"), target.err);
    CHECK(!std::filesystem::exists(key));

    const auto e = nnmark_tool("embed" + data + " --labels random --key-seed 31" + outputs, dir);
    REQUIRE_MESSAGE(e.exit_code == 0, e.err);
    const auto embedded = nlohmann::json::parse(e.out);
    CHECK(embedded["trigger"] == "natural");
    CHECK(embedded["source"] == every_class);
    CHECK(embedded["new_triggers"].get<int>() > 0);  // test images with their true labels
    CHECK(embedded["trigger_accuracy"].get<double>() >= 0.9);

    const auto i = nnmark_tool("key inspect --key " + key.string() + " --json", dir);
    REQUIRE_MESSAGE(i.exit_code == 0, i.err);
    const auto recipe = nlohmann::json::parse(i.out)["recipe"];
    CHECK(recipe["kind"] == "natural");
    CHECK(recipe["label_mode"] == "random");
    CHECK(recipe["seed"] == 31);

    // Verified at the default alpha 1e-6 against the random-label null, without calibration.
    const auto v = nnmark_tool("verify --json --model " + model.string() + " --key " + key.string() + decoys, dir);
    const auto verdict = nlohmann::json::parse(v.out);
    CHECK_MESSAGE(v.exit_code == 0, v.err);
    CHECK(verdict["null_source"] == "random-labels");
    CHECK(verdict["p_value"].get<double>() <= 1e-6);
    CHECK(verdict["null_rate"].get<double>() == doctest::Approx(1.0 / 9));
    CHECK(verdict["control"]["run"] == false);  // the control is for one target label
}

TEST_CASE("cli: embed --survive-extraction writes the region's key beside the main one, tied to it") {
    temp_dir dir;
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 200, 60, 9);
    const std::string data = watermark_cli_tests::tiny_embed_flags(
        dir, mnist, " --count 16 --repeat 4 --epochs 2 --batch 16 --lr 0.02 --quiet --json --key-seed 5");
    const auto model = dir.path / "m.safetensors", key = dir.path / "m.key", region = dir.path / "m.region.key";
    const std::string outputs = " --out " + model.string() + " --key-out " + key.string();

    const auto missing = nnmark_tool("embed" + data + " --survive-extraction" + outputs, dir);
    CHECK(missing.exit_code == 2);  // where would its key go?
    CHECK(missing.one_line_error());
    const auto same = nnmark_tool("embed" + data + " --survive-extraction --extraction-key-out " + key.string() + outputs, dir);
    CHECK(same.exit_code == 2);  // two outputs to one file
    CHECK(!std::filesystem::exists(key));

    const auto e = nnmark_tool("embed" + data + " --survive-extraction --extraction-share 0.4 --extraction-key-out " +
                                   region.string() + outputs,
                               dir);
    REQUIRE_MESSAGE(e.exit_code == 0, e.err);
    const auto embedded = nlohmann::json::parse(e.out);
    CHECK(embedded["extraction_key"] == region.string());
    CHECK(embedded["extraction_triggers"].get<int>() >= 1);
    CHECK(embedded["extraction_label"] != embedded["extraction_source"]);

    const auto main_recipe = nlohmann::json::parse(nnmark_tool("key inspect --json --key " + key.string(), dir).out)["recipe"];
    const auto region_inspect = nnmark_tool("key inspect --json --key " + region.string(), dir);
    REQUIRE_MESSAGE(region_inspect.exit_code == 0, region_inspect.err);
    const auto region_recipe = nlohmann::json::parse(region_inspect.out)["recipe"];
    CHECK(region_recipe["kind"] == "extraction-region");
    CHECK(region_recipe["label_mode"] == "target");
    CHECK(region_recipe["target"] == embedded["extraction_label"]);
    CHECK(region_recipe["watermark_key"] == embedded["commitment"]);  // tied to the main key
    CHECK(main_recipe["survive_extraction"] == region_recipe["region"]);  // and the main key records it

    // The region's key verifies like any target-label key (uncalibrated here: the assumed 1/K).
    const auto v = nnmark_tool("verify --json --model " + model.string() + " --key " + region.string() +
                                   " --dataset mnist --data " + mnist.string(),
                               dir);
    CHECK(v.exit_code <= 1);
    CHECK(nlohmann::json::parse(v.out)["queries"] == embedded["extraction_triggers"]);
}
